"""Airtable's webhooks API (``/v0/bases/{base}/webhooks…``): the webhooks of each base, the
payloads they record for each write, and the endpoints that manage and read them.

As https://airtable.com/developers/web/api/webhooks-overview describes it:

- a webhook lives 7 days from its creation, its last refresh or its last payloads listing;
  then it is disabled (``isHookEnabled`` false, no new payloads, no refresh) but it and its
  payloads stay readable for 7 more days; after that it is gone (404);
- payloads are kept 7 days, seen or not, and the cursor keeps counting past dropped ones;
- a base has at most 10 webhooks;
- each write operation (one API request, one admin or Python-side edit) makes one payload on
  every enabled webhook whose specification it matches, naming tables, fields and records by id.

No notification pings are sent: clients poll the payloads. Only ``tableData`` changes exist here
(the stand-in has no field or table-metadata edits), and ``recordChangeScope`` takes table ids
(the stand-in has no views).
"""

from __future__ import annotations

import base64
import copy
import itertools
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from standins.airtable import errors
from standins.airtable.dates import format_iso
from standins.airtable.ids import derived_id, new_id
from standins.airtable.messages import Request, Response
from standins.airtable.store import CLIENT, PUBLIC_API, Changes, Record, Table

LIFETIME = timedelta(days=7)  # from creation, refresh or payloads listing
DISABLED_KEPT = timedelta(days=7)  # an expired webhook stays readable this long
PAYLOADS_KEPT = timedelta(days=7)
MAX_PER_BASE = 10
MAX_PAGE = 50

DATA_TYPES = frozenset({"tableData", "tableFields", "tableMetadata"})
CHANGE_TYPES = frozenset({"add", "remove", "update"})
SOURCES = frozenset(
    {
        "client",
        "publicApi",
        "formSubmission",
        "formPageSubmission",
        "automation",
        "system",
        "sync",
        "anonymousUser",
    }
)
_FILTER_KEYS = frozenset(
    {
        "dataTypes",
        "recordChangeScope",
        "changeTypes",
        "fromSources",
        "sourceOptions",
        "watchDataInFieldIds",
        "watchSchemasOfFieldIds",
    }
)
_INCLUDE_KEYS = frozenset(
    {"includeCellValuesInFieldIds", "includePreviousCellValues", "includePreviousFieldDefinitions"}
)


def _user(name: str, email: str) -> dict[str, Any]:
    return {
        "id": derived_id("usr", email),
        "email": email,
        "permissionLevel": "create",
        "name": name,
    }


# actionMetadata by source: the token's owner for API writes, a base editor for the rest.
_ACTIONS: dict[str, dict[str, Any]] = {
    PUBLIC_API: {
        "source": PUBLIC_API,
        "sourceMetadata": {"user": _user("Token Owner", "token-owner@example.com")},
    },
    CLIENT: {
        "source": CLIENT,
        "sourceMetadata": {"user": _user("Base Editor", "base-editor@example.com")},
    },
}


# --- specification ---------------------------------------------------------------------------


def _invalid(message: str) -> errors.ApiError:
    return errors.invalid_request(f"Invalid webhook specification: {message}")


def _object(value: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _invalid(f"{where} has unknown keys: {', '.join(unknown)}")
    return value


def _strings(value: Any, where: str, allowed: frozenset[str] | None = None) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(f"{where} must be a list of strings")
    if allowed is not None and not set(value) <= allowed:
        raise _invalid(f"{where} may only hold {', '.join(sorted(allowed))}")
    return frozenset(value)


def _flag(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _invalid(f"{where} must be true or false")
    return value


@dataclass(frozen=True)
class Filters:
    """What a webhook's specification asks for, parsed."""

    data_types: frozenset[str]
    scope: str | None = None  # a table id
    change_types: frozenset[str] | None = None
    from_sources: frozenset[str] | None = None
    watch_fields: frozenset[str] | None = None
    include_fields: frozenset[str] | None = None  # field ids whose unchanged values to add
    include_all_fields: bool = False
    include_previous: bool = False

    def wants(self, table: Table, source: str) -> bool:
        """Whether a record change to ``table`` from ``source`` concerns this webhook."""
        return (
            "tableData" in self.data_types
            and (self.scope is None or self.scope == table.id)
            and (self.from_sources is None or source in self.from_sources)
        )


def parse_specification(spec: Any, tables: Iterable[Table]) -> Filters:
    """Check a specification as Airtable would (422 when invalid) and parse it."""
    spec = _object(spec, "specification", frozenset({"options"}))
    options = _object(
        spec.get("options"), "specification.options", frozenset({"filters", "includes"})
    )
    filters = _object(options.get("filters"), "options.filters", _FILTER_KEYS)
    if filters.get("dataTypes") is None:
        raise _invalid("options.filters.dataTypes is required")
    data_types = _strings(filters["dataTypes"], "dataTypes", DATA_TYPES)
    if not data_types:
        raise _invalid("dataTypes must not be empty")
    scope = filters.get("recordChangeScope")
    if scope is not None:
        if not isinstance(scope, str):
            raise _invalid("recordChangeScope must be a table id")
        if scope not in {table.id for table in tables}:
            raise _invalid(f"recordChangeScope {scope} is not a table of this base")

    def optional(key: str, allowed: frozenset[str] | None = None) -> frozenset[str] | None:
        value = filters.get(key)
        return None if value is None else _strings(value, key, allowed) or None  # []: absent

    change_types = optional("changeTypes", CHANGE_TYPES)
    from_sources = optional("fromSources", SOURCES)
    watch_fields = optional("watchDataInFieldIds")
    optional("watchSchemasOfFieldIds")
    if filters.get("sourceOptions") is not None and not isinstance(filters["sourceOptions"], dict):
        raise _invalid("sourceOptions must be an object")
    include_fields: frozenset[str] | None = None
    include_all = include_previous = False
    if options.get("includes") is not None:
        includes = _object(options["includes"], "options.includes", _INCLUDE_KEYS)
        cells = includes.get("includeCellValuesInFieldIds")
        if cells == "all":
            include_all = True
        elif cells is not None:
            include_fields = _strings(cells, "includeCellValuesInFieldIds")
        include_previous = _flag(
            includes.get("includePreviousCellValues"), "includePreviousCellValues"
        )
        _flag(includes.get("includePreviousFieldDefinitions"), "includePreviousFieldDefinitions")
    return Filters(
        data_types,
        scope,
        change_types,
        from_sources,
        watch_fields,
        include_fields,
        include_all,
        include_previous,
    )


# --- payloads --------------------------------------------------------------------------------


def _copy(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, list | dict) else value


class _Snapshot:
    """The cell values of one operation's changes, copied once for every webhook's payload."""

    def __init__(self, table: Table, changes: Changes) -> None:
        field_id = table.field_id
        self.created = {
            record.id: {
                "createdTime": record.created_text,
                "cellValuesByFieldId": {
                    field_id(name): _copy(value) for name, value in record.fields.items()
                },
            }
            for record in changes.created
        }
        self.updated: list[tuple[Record, list[str], dict[str, Any], dict[str, Any]]] = []
        for record, before, names in changes.updated.values():
            current = {field_id(name): _copy(record.fields.get(name)) for name in names}
            previous = {field_id(name): _copy(before.get(name)) for name in names}
            self.updated.append((record, names, current, previous))
        self.destroyed = list(changes.destroyed)
        self._field_id = field_id

    def _unchanged(self, record: Record, names: list[str], filters: Filters) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in record.fields.items():
            fid = self._field_id(name)
            if name not in names and (
                filters.include_all_fields
                or (filters.include_fields is not None and fid in filters.include_fields)
            ):
                out[fid] = _copy(value)
        return out

    def table_changes(self, filters: Filters) -> dict[str, Any]:
        """The ``changedTablesById`` entry this webhook gets (empty: no payload). Call it
        while the operation's records are unchanged since (the lock still held)."""
        wanted = filters.change_types
        out: dict[str, Any] = {}
        if self.created and (wanted is None or "add" in wanted):
            out["createdRecordsById"] = self.created
        if self.updated and (wanted is None or "update" in wanted):
            changed: dict[str, Any] = {}
            for record, names, current, previous in self.updated:
                if filters.watch_fields is not None and filters.watch_fields.isdisjoint(current):
                    continue
                entry: dict[str, Any] = {"current": {"cellValuesByFieldId": current}}
                if filters.include_previous:
                    entry["previous"] = {"cellValuesByFieldId": previous}
                if filters.include_all_fields or filters.include_fields:
                    unchanged = self._unchanged(record, names, filters)
                    if unchanged:
                        entry["unchanged"] = {"cellValuesByFieldId": unchanged}
                changed[record.id] = entry
            if changed:
                out["changedRecordsById"] = changed
        if self.destroyed and (wanted is None or "remove" in wanted):
            out["destroyedRecordIds"] = self.destroyed
        return out


@dataclass
class _Payload:
    cursor: int
    timestamp: datetime
    body: dict[str, Any]


@dataclass
class Webhook:
    """One webhook of a base and the payloads it holds."""

    id: str
    base_id: str
    notification_url: str | None
    specification: dict[str, Any]
    filters: Filters
    created: datetime
    expires: datetime
    notifications_enabled: bool
    next_cursor: int = 1
    payloads: deque[_Payload] = field(default_factory=deque)

    def enabled(self, now: datetime) -> bool:
        """Not yet expired: records payloads and can be refreshed."""
        return now < self.expires

    def gone(self, now: datetime) -> bool:
        """Expired long enough ago that Airtable has deleted it."""
        return now >= self.expires + DISABLED_KEPT

    def prune(self, now: datetime) -> None:
        """Drop payloads older than Airtable keeps them."""
        while self.payloads and self.payloads[0].timestamp + PAYLOADS_KEPT <= now:
            self.payloads.popleft()

    def add(self, now: datetime, body: dict[str, Any]) -> None:
        """Record a payload under the next cursor."""
        self.prune(now)
        self.payloads.append(_Payload(self.next_cursor, now, body))
        self.next_cursor += 1

    def page(self, cursor: int, limit: int) -> tuple[list[_Payload], bool]:
        """Up to ``limit`` payloads from ``cursor`` on, and whether more follow them."""
        if not self.payloads:
            return [], False
        start = max(0, cursor - self.payloads[0].cursor)
        page = list(itertools.islice(self.payloads, start, start + limit + 1))
        return page[:limit], len(page) > limit

    def to_dict(self, now: datetime) -> dict[str, Any]:
        """The webhook as ``GET /v0/bases/{base}/webhooks`` lists it."""
        return {
            "id": self.id,
            "areNotificationsEnabled": self.notifications_enabled,
            "cursorForNextPayload": self.next_cursor,
            "isHookEnabled": self.enabled(now),
            "lastNotificationResult": None,
            "lastSuccessfulNotificationTime": None,
            "notificationUrl": self.notification_url,
            "expirationTime": format_iso(self.expires),
            "specification": copy.deepcopy(self.specification),
        }


# --- the registry and its endpoints ----------------------------------------------------------


def _int_param(query: Mapping[str, list[str]], name: str, default: int, high: int | None) -> int:
    values = query.get(name)
    if not values or values[-1] == "":
        return default
    try:
        number = int(values[-1])
    except ValueError:
        raise errors.invalid_request(f"'{name}' must be a whole number") from None
    if number < 1 or (high is not None and number > high):
        bounds = f"between 1 and {high}" if high is not None else "at least 1"
        raise errors.invalid_request(f"'{name}' must be {bounds}")
    return number


class Webhooks:
    """Every base's webhooks. Tables report their changes here (``store.ChangeSink``)."""

    def __init__(self, lock: threading.RLock, clock: Callable[[], datetime]) -> None:
        self._lock = lock  # the stand-in's lock, which table edits hold too
        self._clock = clock
        self._by_base: dict[str, dict[str, Webhook]] = {}
        self._transactions: dict[str, int] = {}

    # --- as a change sink ---

    def listening(self, base_id: str) -> bool:
        """Whether ``base_id`` has an enabled webhook (else writes collect nothing)."""
        hooks = self._by_base.get(base_id)
        if not hooks:
            return False
        now = self._clock()
        return any(hook.enabled(now) for hook in hooks.values())

    def record(self, table: Table, changes: Changes) -> None:
        """Add one payload for an operation's changes to each webhook they concern."""
        with self._lock:
            now = self._clock()
            hooks = [
                hook
                for hook in self._by_base.get(table.base_id, {}).values()
                if hook.enabled(now) and hook.filters.wants(table, changes.source)
            ]
            if not hooks:
                return
            number = self._transactions.get(table.base_id, 0) + 1
            self._transactions[table.base_id] = number
            snapshot = _Snapshot(table, changes)
            for hook in hooks:
                changed = snapshot.table_changes(hook.filters)
                if changed:
                    hook.add(
                        now,
                        {
                            "timestamp": format_iso(now),
                            "baseTransactionNumber": number,
                            "payloadFormat": "v0",
                            "actionMetadata": copy.deepcopy(_ACTIONS[changes.source]),
                            "changedTablesById": {table.id: changed},
                        },
                    )

    # --- reading ---

    def _live(self, base_id: str, now: datetime) -> dict[str, Webhook]:
        hooks = self._by_base.get(base_id, {})
        for hook_id in [hook.id for hook in hooks.values() if hook.gone(now)]:
            del hooks[hook_id]
        return hooks

    def list(self, base_id: str) -> list[dict[str, Any]]:
        """The base's webhooks as the list endpoint shows them."""
        with self._lock:
            now = self._clock()
            return [hook.to_dict(now) for hook in self._live(base_id, now).values()]

    def _find(self, base_id: str, hook_id: str, now: datetime) -> Webhook:
        hook = self._live(base_id, now).get(hook_id)
        if hook is None:
            raise errors.not_found()
        return hook

    # --- the endpoints ---

    def handle(
        self, request: Request, base_id: str, hook_id: str, action: str, tables: Iterable[Table]
    ) -> Response:
        """Answer an authenticated, permitted, rate-checked webhooks request."""
        method = request.method
        with self._lock:
            now = self._clock()
            if not hook_id:
                if method == "GET":
                    return Response(200, {"webhooks": self.list(base_id)})
                if method == "POST":
                    return Response(200, self._create(base_id, request, tables, now))
                raise errors.not_found()
            hook = self._find(base_id, hook_id, now)
            if not action and method == "DELETE":
                del self._by_base[base_id][hook.id]
                return Response(200, {})
            if action == "payloads" and method == "GET":
                return Response(200, self._payloads(hook, request, now))
            if action == "refresh" and method == "POST":
                if not hook.enabled(now):
                    raise errors.invalid_request("This webhook has expired and cannot be refreshed")
                hook.expires = now + LIFETIME
                return Response(200, {"expirationTime": format_iso(hook.expires)})
            if action == "enableNotifications" and method == "POST":
                enable = request.json_object().get("enable")
                if not isinstance(enable, bool):
                    raise errors.invalid_request("'enable' must be true or false")
                hook.notifications_enabled = enable
                return Response(200, {})
            raise errors.not_found()

    def _create(
        self, base_id: str, request: Request, tables: Iterable[Table], now: datetime
    ) -> dict[str, Any]:
        body = request.json_object()
        unknown = sorted(set(body) - {"notificationUrl", "specification"})
        if unknown:
            raise errors.invalid_request(f"Unknown webhook properties: {', '.join(unknown)}")
        url = body.get("notificationUrl")
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("https://", "http://"))
        ):
            raise errors.invalid_request("'notificationUrl' must be an http(s) URL or null")
        filters = parse_specification(body.get("specification"), tables)
        hooks = self._live(base_id, now)
        if len(hooks) >= MAX_PER_BASE:
            raise errors.too_many_webhooks(MAX_PER_BASE)
        hook_id = new_id("ach")
        while any(hook_id in other for other in self._by_base.values()):
            hook_id = new_id("ach")
        hook = Webhook(
            hook_id,
            base_id,
            url,
            copy.deepcopy(body["specification"]),
            filters,
            now,
            now + LIFETIME,
            notifications_enabled=url is not None,
        )
        self._by_base.setdefault(base_id, {})[hook_id] = hook
        secret = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        return {
            "id": hook_id,
            "macSecretBase64": secret,
            "expirationTime": format_iso(hook.expires),
        }

    def _payloads(self, hook: Webhook, request: Request, now: datetime) -> dict[str, Any]:
        cursor = _int_param(request.query, "cursor", 1, None)
        limit = _int_param(request.query, "limit", MAX_PAGE, MAX_PAGE)
        hook.prune(now)
        if hook.enabled(now):
            hook.expires = now + LIFETIME  # listing payloads extends an active webhook's life
        page, more = hook.page(cursor, limit)
        return {
            "payloads": [payload.body for payload in page],
            "cursor": page[-1].cursor + 1 if page else cursor,
            "mightHaveMore": more,
        }
