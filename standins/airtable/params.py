"""Read list-records parameters from a query string (GET) or a JSON body (POST listRecords)."""

from __future__ import annotations

import re
from typing import Any

from standins.airtable import errors
from standins.airtable.listing import ListParams

_SORT_KEY = re.compile(r"sort\[(\d+)\]\[(field|direction)\]")


def _int(value: Any, low: int, high: int | None) -> int:
    if isinstance(value, bool):
        raise errors.invalid_request()
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise errors.invalid_request() from None
    if number < low or (high is not None and number > high):
        raise errors.invalid_request()
    return number


def _sort(specs: list[tuple[Any, Any]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, direction in specs:
        direction = direction or "asc"
        if not isinstance(name, str) or direction not in ("asc", "desc"):
            raise errors.invalid_request()
        out.append((name, direction))
    return out


def _cell_format(value: Any, time_zone: Any, locale: Any) -> str:
    if value in (None, "", "json"):
        return "json"
    if value == "string":
        if not time_zone or not locale:
            raise errors.invalid_request(
                "The cellFormat 'string' requires the timeZone and userLocale parameters"
            )
        return "string"
    raise errors.invalid_request()


def _reject_field_ids(value: Any) -> None:
    if value in (True, "1", "true"):
        raise errors.invalid_request("returnFieldsByFieldId is not supported by this stand-in")


def from_query(query: dict[str, list[str]]) -> ListParams:
    """Parameters of ``GET /v0/{base}/{table}``."""

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None

    params = ListParams()
    if (page_size := one("pageSize")) is not None:
        params.page_size = _int(page_size, 1, 100)
    if (max_records := one("maxRecords")) is not None:
        params.max_records = _int(max_records, 0, None)
    params.offset = one("offset") or None
    if "fields[]" in query or "fields" in query:
        params.fields = query.get("fields[]", []) + query.get("fields", [])
    params.formula = one("filterByFormula") or ""
    params.view = one("view")
    sorts: dict[int, dict[str, str]] = {}
    for key, values in query.items():
        if match := _SORT_KEY.fullmatch(key):
            sorts.setdefault(int(match.group(1)), {})[match.group(2)] = values[-1]
    params.sort = _sort([(s.get("field"), s.get("direction")) for _, s in sorted(sorts.items())])
    params.cell_format = _cell_format(one("cellFormat"), one("timeZone"), one("userLocale"))
    _reject_field_ids(one("returnFieldsByFieldId"))
    metadata = query.get("recordMetadata[]", []) + query.get("recordMetadata", [])
    params.comment_count = "commentCount" in metadata
    return params


def from_body(body: dict[str, Any], query: dict[str, list[str]]) -> ListParams:
    """Parameters of ``POST /v0/{base}/{table}/listRecords`` (timeZone/userLocale stay in the
    query string, as pyairtable sends them)."""
    params = ListParams()
    if "pageSize" in body:
        params.page_size = _int(body["pageSize"], 1, 100)
    if body.get("maxRecords") is not None:
        params.max_records = _int(body["maxRecords"], 0, None)
    offset = body.get("offset")
    if offset is not None and not isinstance(offset, str):
        raise errors.invalid_request()
    params.offset = offset or None
    if "fields" in body:
        fields = body["fields"]
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise errors.invalid_request()
        params.fields = fields
    formula = body.get("filterByFormula") or ""
    if not isinstance(formula, str):
        raise errors.invalid_request()
    params.formula = formula
    view = body.get("view")
    if view is not None and not isinstance(view, str):
        raise errors.invalid_request()
    params.view = view
    sort = body.get("sort") or []
    if not isinstance(sort, list) or not all(isinstance(s, dict) for s in sort):
        raise errors.invalid_request()
    params.sort = _sort([(s.get("field"), s.get("direction")) for s in sort])

    def from_query_or_body(name: str) -> Any:
        values = query.get(name)
        return values[-1] if values else body.get(name)

    params.cell_format = _cell_format(
        body.get("cellFormat"), from_query_or_body("timeZone"), from_query_or_body("userLocale")
    )
    _reject_field_ids(body.get("returnFieldsByFieldId"))
    metadata = body.get("recordMetadata") or []
    params.comment_count = isinstance(metadata, list) and "commentCount" in metadata
    return params
