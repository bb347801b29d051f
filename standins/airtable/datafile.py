"""Data files: ``{"base_id", "schema": {table: [field…]}, "tables": {table: [record…]}}``."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from standins.airtable.store import CLIENT, Table

DataSource = str | Path | Mapping[str, Any]


def read(source: DataSource) -> Mapping[str, Any]:
    """The data as a mapping, reading a JSON file when given a path."""
    if isinstance(source, Mapping):
        return source
    with Path(source).open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a data file holds a JSON object")
    return data


def load_into(data: Mapping[str, Any], table_for: Callable[[str, str], Table]) -> dict[str, int]:
    """Replace the records of every table the data names; returns records loaded per table.

    Each record is ``{"id"?, "createdTime"?, "fields"}``; ``id`` and ``createdTime`` are
    generated when absent.
    """
    base_id = data.get("base_id")
    if not isinstance(base_id, str) or not base_id:
        raise ValueError("a data file needs a 'base_id'")
    schema: Mapping[str, list[str]] = data.get("schema") or {}
    tables: Mapping[str, list[dict[str, Any]]] = data.get("tables") or {}
    loaded: dict[str, int] = {}
    for name in list(dict.fromkeys([*schema, *tables])):
        table = table_for(base_id, name)
        with table.lock:
            table.add_fields(schema.get(name, []))
            table.clear()  # for webhooks: one operation destroying every record…
            changes = table.changes(CLIENT)  # …then one creating the loaded ones
            try:
                for record in tables.get(name, []):
                    changes.insert(
                        record.get("fields") or {}, record.get("id"), record.get("createdTime")
                    )
            finally:
                changes.publish()  # what was loaded before a bad record, too
            loaded[name] = len(table)
    return loaded
