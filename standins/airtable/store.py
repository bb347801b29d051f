"""Records and tables held in memory, with created and last-modified bookkeeping, and the
record changes each write makes (for webhooks)."""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from standins.airtable.dates import format_iso, parse_datetime, to_millis
from standins.airtable.ids import derived_id, new_id

Clock = Callable[[], datetime]

# Who made a change, as webhook payloads name it: the REST API, or a person in the Airtable UI
# (the admin API and the stand-in's Python methods).
PUBLIC_API = "publicApi"
CLIENT = "client"


def is_empty(value: Any) -> bool:
    """Airtable omits empty cells: empty text, an unchecked checkbox, an empty list, null."""
    return value is None or value is False or value == "" or value == [] or value == {}


def _stored(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, list | dict) else value


class Record:
    """One row: id, creation time, non-empty fields and when each changed."""

    __slots__ = ("_field_modified", "created", "created_text", "fields", "id", "modified")

    def __init__(
        self,
        record_id: str,
        created: datetime,
        fields: dict[str, Any],
        created_text: str | None = None,
    ) -> None:
        self.id = record_id
        self.created = created
        self.created_text = created_text or format_iso(created)
        self.fields = fields
        self.modified = created
        # Per-field change times, only for fields changed after creation (saves memory).
        self._field_modified: dict[str, datetime] | None = None

    def modified_at(self, names: Sequence[str]) -> datetime:
        """When any of ``names`` last changed; with no names, when any field last changed."""
        if not names:
            return self.modified
        changed = self._field_modified or {}
        return max(changed.get(name, self.created) for name in names)

    def apply(self, fields: Mapping[str, Any], replace: bool, now: datetime) -> list[str]:
        """Merge (or replace) ``fields``; empty values clear a cell. Returns the names of the
        cells that changed (empty, so false, when nothing did)."""
        changed: list[str] = []
        if replace:
            changed.extend(name for name in self.fields if is_empty(fields.get(name)))
            for name in changed:
                del self.fields[name]
        for name, value in fields.items():
            if is_empty(value):
                if name in self.fields:
                    del self.fields[name]
                    changed.append(name)
            elif self.fields.get(name, _MISSING) != value:
                self.fields[name] = _stored(value)
                changed.append(name)
        if changed:
            self.modified = now
            if self._field_modified is None:
                self._field_modified = {}
            for name in changed:
                self._field_modified[name] = now
        return changed

    def to_dict(self, only: Iterable[str] | None = None) -> dict[str, Any]:
        """The record as the API returns it, optionally with only some fields."""
        if only is None:
            fields = dict(self.fields)
        else:
            fields = {name: self.fields[name] for name in only if name in self.fields}
        return {"id": self.id, "createdTime": self.created_text, "fields": fields}


_MISSING = object()
_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class ChangeSink(Protocol):
    """Where a table reports its record changes (the stand-in's webhooks)."""

    def listening(self, base_id: str) -> bool:
        """Whether any change to ``base_id`` would be recorded now (else nothing is collected)."""
        ...

    def record(self, table: Table, changes: Changes) -> None:
        """Take the changes of one write operation, just made (the table lock is held)."""
        ...


class Changes:
    """The record changes of one write operation on one table: what a webhook payload reports.

    Inactive (nobody listening) it collects nothing, so writes cost nothing extra.
    """

    __slots__ = ("_now", "active", "created", "destroyed", "source", "table", "updated")

    def __init__(self, table: Table, source: str, active: bool) -> None:
        self.table = table
        self.source = source
        self.active = active
        self.created: list[Record] = []
        # record id → (record, its fields before the operation, names of the changed cells)
        self.updated: dict[str, tuple[Record, dict[str, Any], list[str]]] = {}
        self.destroyed: list[str] = []
        self._now: datetime | None = None

    def now(self) -> datetime:
        """The operation's time: one reading of the clock for all its records."""
        if self._now is None:
            self._now = self.table.now()
        return self._now

    def insert(
        self,
        fields: Mapping[str, Any],
        record_id: str | None = None,
        created_time: datetime | str | None = None,
    ) -> Record:
        """Create a record in the table and note it."""
        record = self.table.insert(fields, record_id, created_time)
        if self.active:
            self.created.append(record)
        return record

    def apply(self, record: Record, fields: Mapping[str, Any], replace: bool) -> Record:
        """Update a record of the table (as ``Record.apply``) and note the changed cells."""
        before = dict(record.fields) if self.active else None
        self.table.known_fields.update(fields)
        changed = record.apply(fields, replace, self.now())
        if before is not None and changed:
            noted = self.updated.get(record.id)
            if noted is None:
                self.updated[record.id] = (record, before, changed)
            else:  # the same record twice in one batch: first "before", every changed name
                noted[2].extend(name for name in changed if name not in noted[2])
        return record

    def delete(self, record_id: str) -> bool:
        """Delete a record of the table and note it; False when there was none."""
        if self.table.rows.pop(record_id, None) is None:
            return False
        if self.active:
            self.destroyed.append(record_id)
        return True

    def publish(self) -> None:
        """Report what was noted to the table's sink (once the operation is done)."""
        sink = self.table.sink
        if sink is not None and (self.created or self.updated or self.destroyed):
            sink.record(self.table, self)


DEFAULT_VIEW = "Grid view"


@dataclass(frozen=True)
class View:
    """A saved view: a filter formula and a sort that a listing's ``view`` parameter applies."""

    name: str
    formula: str = ""
    sort: tuple[tuple[str, str], ...] = ()


class Table:
    """A table of a base: records in creation order and the field names it knows.

    Methods here are edits "in the Airtable UI": never counted nor rate limited, reported to
    webhooks with the source ``client``.

    ``id`` (``tbl…``) and the field ids (``fld…``) are derived from the base id, table name and
    field name, so they are the same in every run.
    """

    def __init__(
        self,
        base_id: str,
        name: str,
        lock: threading.RLock,
        clock: Clock,
        schema: Iterable[str] = (),
        sink: ChangeSink | None = None,
    ) -> None:
        self.base_id = base_id
        self.name = name
        self.id = derived_id("tbl", base_id, name)
        self.lock = lock
        self._clock = clock
        self.sink = sink
        self.schema: list[str] = list(schema)
        self.known_fields: set[str] = set(self.schema)
        self.rows: dict[str, Record] = {}
        self._field_ids: dict[str, str] = {}
        self.views: dict[str, View] = {DEFAULT_VIEW: View(DEFAULT_VIEW)}

    def field_id(self, name: str) -> str:
        """The ``fld…`` id of the column ``name`` (stable: derived from the table id and name)."""
        field_id = self._field_ids.get(name)
        if field_id is None:
            field_id = self._field_ids[name] = derived_id("fld", self.id, name)
        return field_id

    def field_ids(self) -> dict[str, str]:
        """Ids of the columns the table knows, by name (declared ones first)."""
        with self.lock:
            names = [*self.schema, *sorted(self.known_fields - set(self.schema))]
            return {name: self.field_id(name) for name in names}

    def changes(self, source: str) -> Changes:
        """A collector for one write operation (hold the lock; call ``publish`` at the end)."""
        sink = self.sink
        return Changes(self, source, sink is not None and sink.listening(self.base_id))

    def now(self) -> datetime:
        """The stand-in's clock, in UTC milliseconds."""
        return to_millis(self._clock())

    def add_view(self, name: str, formula: str = "", sort: Iterable[tuple[str, str]] = ()) -> View:
        """Define a view: the records `formula` keeps, in `sort` order (else table order)."""
        with self.lock:
            view = self.views[name] = View(name, formula, tuple(sort))
            return view

    def add_fields(self, names: Iterable[str]) -> None:
        """Declare columns (a schema); formulas and ``fields[]`` may then name them."""
        with self.lock:
            for name in names:
                if name not in self.known_fields:
                    self.schema.append(name)
                    self.known_fields.add(name)

    def insert(
        self,
        fields: Mapping[str, Any],
        record_id: str | None = None,
        created_time: datetime | str | None = None,
    ) -> Record:
        """Add a record and return it (the caller holds the lock or does not need it)."""
        if record_id is None:
            record_id = new_id("rec")
            while record_id in self.rows:
                record_id = new_id("rec")
        elif record_id in self.rows:
            raise ValueError(f"record {record_id} already exists in {self.name}")
        created_text = None
        if isinstance(created_time, str):
            if _CANONICAL_TIME.fullmatch(created_time):
                created_text = created_time  # already Airtable's form: skip re-rendering it
            parsed = parse_datetime(created_time)
            if parsed is None:
                raise ValueError(f"bad createdTime {created_time!r}")
            created_time = parsed
        created = to_millis(created_time) if created_time is not None else self.now()
        stored = {name: _stored(value) for name, value in fields.items() if not is_empty(value)}
        self.known_fields.update(fields)
        record = Record(record_id, created, stored, created_text)
        self.rows[record_id] = record
        return record

    def create(
        self,
        fields: Mapping[str, Any],
        record_id: str | None = None,
        created_time: datetime | str | None = None,
    ) -> dict[str, Any]:
        """Create a record; returns ``{"id", "createdTime", "fields"}``."""
        with self.lock:
            changes = self.changes(CLIENT)
            record = changes.insert(fields, record_id, created_time)
            changes.publish()
            return record.to_dict()

    def update(
        self, record_id: str, fields: Mapping[str, Any], replace: bool = False
    ) -> dict[str, Any]:
        """Merge ``fields`` into a record (None, "" or False clears a cell); KeyError if absent."""
        with self.lock:
            record = self.rows[record_id]
            changes = self.changes(CLIENT)
            changes.apply(record, fields, replace)
            changes.publish()
            return record.to_dict()

    def delete(self, record_id: str) -> bool:
        """Delete a record; False when there was none."""
        with self.lock:
            changes = self.changes(CLIENT)
            deleted = changes.delete(record_id)
            changes.publish()
            return deleted

    def get(self, record_id: str) -> dict[str, Any] | None:
        """The record, or None."""
        with self.lock:
            record = self.rows.get(record_id)
            return record.to_dict() if record else None

    def records(self) -> list[dict[str, Any]]:
        """Every record in creation order."""
        with self.lock:
            return [record.to_dict() for record in self.rows.values()]

    def last_modified(self, record_id: str) -> datetime:
        """When any field of the record last changed (its creation time if never)."""
        with self.lock:
            return self.rows[record_id].modified

    def clear(self) -> None:
        """Delete every record (the known field names stay)."""
        with self.lock:
            changes = self.changes(CLIENT)
            if changes.active:
                changes.destroyed.extend(self.rows)
            self.rows.clear()
            changes.publish()

    def __len__(self) -> int:
        return len(self.rows)
