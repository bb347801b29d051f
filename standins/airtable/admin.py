"""The admin API under ``/_standin/``: what a person does in the Airtable UI, plus controls.

Nothing here is authenticated, counted or rate limited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from standins.airtable import errors
from standins.airtable.messages import Request, Response

if TYPE_CHECKING:
    from standins.airtable.standin import AirtableStandIn

PREFIX = "/_standin"


def _number(body: dict[str, Any], key: str, default: float | None) -> float | None:
    value = body.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise errors.invalid_request(f"'{key}' must be a number")
    return value


def _records(standin: AirtableStandIn, request: Request, parts: list[str]) -> Response:
    # parts: bases/{base}/tables/{table}/records[/{id}]
    base_id, table_name = parts[1], parts[3]
    table = standin.tables(base_id).get(table_name)
    method = request.method
    if len(parts) == 5:
        if method == "GET":
            if table is None:
                raise errors.table_not_found(table_name, base_id)
            return Response(200, {"records": table.records()})
        if method == "POST":
            body = request.json_object()
            table = table or standin.table(base_id, table_name)
            try:
                record = table.create(
                    body.get("fields") or {}, body.get("id"), body.get("createdTime")
                )
            except ValueError as exc:
                raise errors.invalid_request(str(exc)) from None
            return Response(200, record)
        raise errors.not_found()
    record_id = parts[5]
    if table is None or table.get(record_id) is None:
        raise errors.not_found()
    if method == "PATCH":
        return Response(200, table.update(record_id, request.json_object().get("fields") or {}))
    if method == "PUT":
        fields = request.json_object().get("fields") or {}
        return Response(200, table.update(record_id, fields, replace=True))
    if method == "DELETE":
        table.delete(record_id)
        return Response(200, {"id": record_id, "deleted": True})
    if method == "GET":
        return Response(200, table.get(record_id))
    raise errors.not_found()


def _tables(standin: AirtableStandIn, base_id: str) -> list[dict[str, Any]]:
    # Like Airtable's base schema (GET /v0/meta/bases/{base}/tables), ids and names only.
    return [
        {
            "id": table.id,
            "name": name,
            "fields": [{"id": fid, "name": field} for field, fid in table.field_ids().items()],
        }
        for name, table in standin.tables(base_id).items()
    ]


def handle(standin: AirtableStandIn, request: Request) -> Response:
    """Route one admin request."""
    parts = request.segments(PREFIX)
    method = request.method
    if parts == ["health"]:
        return Response(200, {"ok": True})
    if parts == ["stats"] and method == "GET":
        return Response(200, standin.stats_dict())
    if parts == ["stats", "reset"] and method == "POST":
        standin.stats.reset()
        return Response(200, {"ok": True})
    if parts == ["load"] and method == "POST":
        try:
            loaded = standin.load(request.json_object())
        except (ValueError, TypeError, AttributeError) as exc:
            raise errors.invalid_request(f"Cannot load data: {exc}") from None
        return Response(200, {"loaded": loaded})
    if parts == ["faults"] and method == "POST":
        body = request.json_object()
        status, count = body.get("status", 503), body.get("count")
        if status is not None and not isinstance(status, int):
            raise errors.invalid_request("'status' must be an integer or null")
        if count is not None and not isinstance(count, int):
            raise errors.invalid_request("'count' must be an integer or null")
        after = body.get("after", 0)
        if not isinstance(after, int) or after < 0:
            raise errors.invalid_request("'after' must be a whole number")
        standin.set_fault(status, count, _number(body, "delay_seconds", 0.0) or 0.0, after)
        return Response(200, {"ok": True})
    if parts == ["faults"] and method == "DELETE":
        standin.clear_faults()
        return Response(200, {"ok": True})
    if parts == ["latency"] and method == "PUT":
        standin.latency_seconds = _number(request.json_object(), "seconds", 0.0) or 0.0
        return Response(200, {"seconds": standin.latency_seconds})
    if parts == ["iterators"] and method == "DELETE":
        standin.expire_iterators()
        return Response(200, {"ok": True})
    if parts == ["webhooks-allowed"] and method == "PUT":
        allowed = request.json_object().get("allowed")
        if not isinstance(allowed, bool):
            raise errors.invalid_request("'allowed' must be true or false")
        standin.webhooks_allowed = allowed
        return Response(200, {"allowed": allowed})
    if len(parts) == 3 and (parts[0], parts[2]) == ("bases", "tables") and method == "GET":
        return Response(200, {"tables": _tables(standin, parts[1])})
    if len(parts) in (5, 6) and (parts[0], parts[2], parts[4]) == ("bases", "tables", "records"):
        return _records(standin, request, parts)
    raise errors.not_found()
