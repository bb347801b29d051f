"""The generated base, written to a file for the stand-in, and the facts the workload needs."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contacts.phones import to_e164
from demo.generate import generate_base


@dataclass(frozen=True)
class Contact:
    """One customer as the workload knows it."""

    record_id: str
    customer_id: str
    name: str
    owner: str
    e164: str | None


@dataclass
class Book:
    """Every contact, grouped by owner."""

    contacts: list[Contact]
    by_owner: dict[str, list[Contact]] = field(default_factory=dict)

    @property
    def workers(self) -> list[str]:
        return sorted(self.by_owner)


def contact_of(record: dict[str, Any]) -> Contact:
    """A generated record as a Contact (customer id falls back to the record id, as served)."""
    fields = record["fields"]
    sms = str(fields.get("sms") or "")
    return Contact(
        record_id=record["id"],
        customer_id=str(fields.get("id") or record["id"]),
        name=str(fields.get("name") or ""),
        owner=str(fields.get("owner") or ""),
        e164=to_e164(sms, "US") if sms else None,
    )


def build(customers: int, workers: int, seed: int, path: Path) -> Book:
    """Generate the base, write it to `path`, and return its contacts."""
    data = generate_base(customers=customers, workers=workers, seed=seed)
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    contacts = [contact_of(record) for record in data["tables"]["Customers"]]
    grouped: dict[str, list[Contact]] = defaultdict(list)
    for contact in contacts:
        grouped[contact.owner].append(contact)
    return Book(contacts, dict(grouped))
