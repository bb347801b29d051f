"""Airtable's records REST API (``/v0/{base}/{table}…``): routing and the record operations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from standins.airtable import errors, params
from standins.airtable.formula import Env
from standins.airtable.listing import Cursors, list_records
from standins.airtable.messages import Request, Response
from standins.airtable.store import PUBLIC_API, Changes, Table

MAX_RECORDS_PER_WRITE = 10
PREFIX = "/v0"


@dataclass(frozen=True)
class Route:
    """What a request is: its kind for the stats, and the base, table and record it names
    (for ``webhook``: the webhook id and what follows it, such as ``payloads``)."""

    kind: str  # list, get, create, update, delete, webhook, other
    base: str = ""
    table: str = ""
    record_id: str = ""
    action: str = ""


def route(request: Request) -> Route:
    """Classify a ``/v0`` request by method and path."""
    parts = request.segments(PREFIX)
    method = request.method
    if len(parts) >= 3 and parts[0] == "bases" and parts[2] == "webhooks":
        # /v0/bases/{base}/webhooks[/{webhook}[/refresh|payloads|enableNotifications]]
        hook = parts[3] if len(parts) > 3 else ""
        return Route("webhook", parts[1], "", hook, "/".join(parts[4:]))
    if len(parts) == 2:
        kind = {"GET": "list", "POST": "create", "PATCH": "update", "PUT": "update"}.get(
            method, "delete" if method == "DELETE" else "other"
        )
        return Route(kind, parts[0], parts[1])
    if len(parts) == 3:
        base, table, last = parts
        if method == "POST" and last == "listRecords":
            return Route("list", base, table)
        kind = {"GET": "get", "PATCH": "update", "PUT": "update", "DELETE": "delete"}.get(
            method, "other"
        )
        return Route(kind, base, table, last)
    return Route("other", parts[0] if parts else "")


def _writable(table: Table, fields: Any) -> dict[str, Any]:
    if not isinstance(fields, dict):
        raise errors.invalid_request("Each record needs a 'fields' object")
    if table.schema:
        for name in fields:
            if name not in table.known_fields:
                raise errors.unknown_field(name)
    return fields


def _record_list(body: dict[str, Any], verb: str) -> list[Any]:
    records = body.get("records")
    if not isinstance(records, list) or not records:
        raise errors.invalid_request("'records' must be a non-empty list")
    if len(records) > MAX_RECORDS_PER_WRITE:
        raise errors.invalid_records(
            f"A maximum of {MAX_RECORDS_PER_WRITE} records can be {verb} per request"
            f" but you have provided {len(records)}."
        )
    if not all(isinstance(record, dict) for record in records):
        raise errors.invalid_request("Each record must be an object")
    return records


def _create(table: Table, body: dict[str, Any], changes: Changes) -> Response:
    if "records" in body:
        items = [_writable(table, r.get("fields")) for r in _record_list(body, "created")]
        return Response(200, {"records": [changes.insert(fields).to_dict() for fields in items]})
    return Response(200, changes.insert(_writable(table, body.get("fields"))).to_dict())


def _merge_match(table: Table, fields: Mapping[str, Any], keys: list[str]) -> str | None:
    if any(key not in fields for key in keys):
        raise errors.invalid_request("Every record must have a value for each fieldsToMergeOn")
    found = [
        row.id for row in table.rows.values() if all(row.fields.get(k) == fields[k] for k in keys)
    ]
    if len(found) > 1:
        raise errors.invalid_request("More than one record matches the fieldsToMergeOn values")
    return found[0] if found else None


def _update_batch(table: Table, body: dict[str, Any], replace: bool, changes: Changes) -> Response:
    records = _record_list(body, "updated")
    upsert = body.get("performUpsert")
    keys: list[str] | None = None
    if upsert is not None:
        keys = upsert.get("fieldsToMergeOn") if isinstance(upsert, dict) else None
        if not isinstance(keys, list) or not keys:
            raise errors.invalid_request("performUpsert needs a fieldsToMergeOn list")
        for key in keys:
            if key not in table.known_fields:
                raise errors.unknown_field(key)
    plan: list[tuple[str | None, dict[str, Any]]] = []
    for record in records:
        fields = _writable(table, record.get("fields"))
        record_id = record.get("id")
        if record_id is None and keys is not None:
            record_id = _merge_match(table, fields, keys)
        elif record_id is None:
            raise errors.invalid_request("Each record to update needs an 'id'")
        elif not isinstance(record_id, str) or record_id not in table.rows:
            raise errors.row_does_not_exist(str(record_id))
        plan.append((record_id, fields))
    out: list[dict[str, Any]] = []
    created: list[str] = []
    updated: list[str] = []
    for record_id, fields in plan:
        if record_id is None:
            row = changes.insert(fields)
            created.append(row.id)
        else:
            row = changes.apply(table.rows[record_id], fields, replace)
            updated.append(row.id)
        out.append(row.to_dict())
    if keys is not None:
        return Response(200, {"records": out, "createdRecords": created, "updatedRecords": updated})
    return Response(200, {"records": out})


def _update_one(
    table: Table, record_id: str, body: dict[str, Any], replace: bool, changes: Changes
) -> Response:
    row = table.rows.get(record_id)
    if row is None:
        raise errors.model_id_not_found(record_id)
    fields = _writable(table, body.get("fields"))
    return Response(200, changes.apply(row, fields, replace).to_dict())


def _delete_batch(table: Table, request: Request, changes: Changes) -> Response:
    ids = request.query.get("records[]", []) + request.query.get("records", [])
    if not ids:
        raise errors.invalid_request("Give the records to delete as records[]=…")
    if len(ids) > MAX_RECORDS_PER_WRITE:
        raise errors.invalid_records(
            f"A maximum of {MAX_RECORDS_PER_WRITE} records can be deleted per request"
            f" but you have provided {len(ids)}."
        )
    for record_id in ids:
        if record_id not in table.rows:
            raise errors.row_does_not_exist(record_id)
    for record_id in ids:
        changes.delete(record_id)
    return Response(200, {"records": [{"id": rid, "deleted": True} for rid in ids]})


def handle(request: Request, where: Route, table: Table, cursors: Cursors, env: Env) -> Response:
    """Answer an authenticated, rate-checked request for ``table`` (holding ``table.lock``)."""
    method = request.method
    if where.kind in ("create", "update", "delete"):
        changes = table.changes(PUBLIC_API)
        try:
            return _write(request, where, table, changes)
        finally:
            changes.publish()  # a failed batch changed nothing, so publishes nothing
    if where.kind == "list":
        if method == "POST":
            list_params = params.from_body(request.json_object(), request.query)
        else:
            list_params = params.from_query(request.query)
        return Response(200, list_records(table, list_params, env, cursors))
    if where.kind == "get":
        row = table.rows.get(where.record_id)
        if row is None:
            raise errors.not_found()
        return Response(200, row.to_dict())
    raise errors.not_found()


def _write(request: Request, where: Route, table: Table, changes: Changes) -> Response:
    """Create, update or delete records, noting the changes (one webhook payload per request)."""
    record_id = where.record_id
    if where.kind == "create":
        return _create(table, request.json_object(), changes)
    if where.kind == "update":
        replace = request.method == "PUT"
        if record_id:
            return _update_one(table, record_id, request.json_object(), replace, changes)
        return _update_batch(table, request.json_object(), replace, changes)
    if record_id:
        if not changes.delete(record_id):
            raise errors.model_id_not_found(record_id)
        return Response(200, {"id": record_id, "deleted": True})
    return _delete_batch(table, request, changes)
