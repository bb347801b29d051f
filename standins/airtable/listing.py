"""The list-records operation: filter, sort, page, and the offset iterators between pages."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standins.airtable import errors
from standins.airtable.formula import Env, FormulaSyntaxError, compile_formula
from standins.airtable.ids import new_id
from standins.airtable.store import Record, Table
from standins.airtable.values import sort_key, to_text


@dataclass
class ListParams:
    """List parameters, from the query string (GET) or the JSON body (POST listRecords)."""

    page_size: int = 100
    max_records: int | None = None
    offset: str | None = None
    fields: list[str] | None = None
    formula: str = ""
    sort: list[tuple[str, str]] = field(default_factory=list)
    cell_format: str = "json"
    comment_count: bool = False
    view: str | None = None


@dataclass
class _Cursor:
    ids: list[str]
    expires: float
    issued: dict[str, int] = field(default_factory=dict)  # offset record id → position


class Cursors:
    """Offset iterators: the record ids a listing matched, captured at its first page."""

    def __init__(self, ttl_seconds: float, monotonic: Callable[[], float] = time.monotonic):
        self.ttl_seconds = ttl_seconds
        self._monotonic = monotonic
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._lock = threading.Lock()

    def next_offset(self, token: str, ids: list[str], position: int) -> str:
        """The offset for the page starting at ``position``, opening an iterator if needed."""
        token = token or self._open(ids)
        with self._lock:
            cursor = self._cursors.get(token)
            if cursor is not None:
                cursor.issued[ids[position]] = position
        return f"{token}/{ids[position]}"

    def _open(self, ids: list[str]) -> str:
        now = self._monotonic()
        with self._lock:
            while self._cursors:
                oldest = next(iter(self._cursors.values()))
                if oldest.expires > now:
                    break
                self._cursors.popitem(last=False)
            token = new_id("itr")
            self._cursors[token] = _Cursor(ids, now + self.ttl_seconds)
            return token

    def resume(self, offset: str) -> tuple[str, list[str], int]:
        """The iterator, its ids and the position an offset points at; 422 when gone."""
        token, _, record_id = offset.partition("/")
        if not token.startswith("itr") or not record_id:
            raise errors.invalid_offset(offset)
        with self._lock:
            cursor = self._cursors.get(token)
            if cursor is None or cursor.expires <= self._monotonic():
                self._cursors.pop(token, None)
                raise errors.iterator_not_available()
            position = cursor.issued.get(record_id)
        if position is None:
            try:
                position = cursor.ids.index(record_id)
            except ValueError:
                raise errors.invalid_offset(offset) from None
        return token, cursor.ids, position

    def expire_all(self) -> None:
        """Forget every iterator (as if they had all timed out)."""
        with self._lock:
            self._cursors.clear()


def _check_fields(table: Table, names: list[str]) -> None:
    for name in names:
        if name not in table.known_fields:
            raise errors.unknown_field(name)


def _sort_key(name: str) -> Callable[[Record], tuple[int, Any]]:
    return lambda row: sort_key(row.fields.get(name))


def _filtered(rows: list[Record], table: Table, text: str, env: Env) -> list[Record]:
    if not text.strip():
        return rows
    try:
        formula = compile_formula(text)
    except FormulaSyntaxError as exc:
        raise errors.invalid_formula(str(exc)) from None
    unknown = sorted(formula.fields - table.known_fields)
    if unknown:
        raise errors.invalid_formula(f"Unknown field names: {', '.join(unknown)}")
    matches = formula.matches
    return [row for row in rows if matches(row, env)]


def _matching(table: Table, params: ListParams, env: Env) -> list[str]:
    rows: list[Record] = list(table.rows.values())
    sort = params.sort
    if params.view is not None:
        view = table.views.get(params.view)
        if view is None:
            raise errors.view_not_found(params.view, table.name)
        rows = _filtered(rows, table, view.formula, env)
        sort = sort or list(view.sort)  # a sort parameter overrides the view's order
    rows = _filtered(rows, table, params.formula, env)
    for name, direction in reversed(sort):
        rows.sort(key=_sort_key(name), reverse=direction == "desc")
    if params.max_records is not None:
        rows = rows[: params.max_records]
    return [row.id for row in rows]


def _render(record: Record, params: ListParams) -> dict[str, Any]:
    rendered = record.to_dict(params.fields)
    if params.cell_format == "string":
        rendered["fields"] = {name: to_text(value) for name, value in rendered["fields"].items()}
    if params.comment_count:
        rendered["commentCount"] = 0
    return rendered


def list_records(table: Table, params: ListParams, env: Env, cursors: Cursors) -> dict[str, Any]:
    """One page of a listing, with ``offset`` while more pages remain (hold ``table.lock``)."""
    if params.fields is not None:
        _check_fields(table, params.fields)
    _check_fields(table, [name for name, _ in params.sort])
    if params.offset:
        token, ids, position = cursors.resume(params.offset)
    else:
        ids = _matching(table, params, env)
        token, position = "", 0
    end = position + params.page_size
    page = [table.rows[rid] for rid in ids[position:end] if rid in table.rows]
    body: dict[str, Any] = {"records": [_render(record, params) for record in page]}
    if end < len(ids):
        body["offset"] = cursors.next_offset(token, ids, end)
    return body
