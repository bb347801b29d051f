"""Per-customer documents (details, templates) and the number index (routing, webhooks)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from google.cloud import firestore

from cache.layout import Layout
from contacts.model import Customer

MAX_BATCH_WRITES = 400
# Firestore refuses a commit over 10 MiB; a customer document can reach about 120 KiB.
MAX_BATCH_BYTES = 2 * 1024 * 1024
MAX_GET_ALL = 100
PARALLEL_COMMITS = 4


@dataclass(frozen=True)
class NumberOwner:
    """Who a phone number belongs to, according to the number index."""

    record_id: str
    customer_id: str
    owner: str


@dataclass(frozen=True)
class Listing:
    """Where a record is in the cache: its customer document, owner and indexed numbers.

    A refresh reads it to know what to undo (the snapshot, the index entries, the document
    under an old customer id) before it applies a record's new state.
    """

    record_id: str
    customer_id: str
    owner: str
    numbers: tuple[str, ...]


def encode_customer(customer: Customer, region: str) -> dict[str, Any]:
    """A customer as stored in its document."""
    data = asdict(customer)
    # Firestore has no arrays of arrays, and column names may be anything: a list of maps.
    data["columns"] = [{"name": name, "value": value} for name, value in customer.columns.items()]
    data["numbers"] = customer.numbers(region)
    return data


def decode_customer(data: Mapping[str, Any]) -> Customer:
    """A customer read back from its document."""
    return Customer(
        customer_id=data["customer_id"],
        record_id=data["record_id"],
        display_name=data["display_name"],
        owner=data.get("owner") or "",
        sms=data.get("sms"),
        whatsapp=data.get("whatsapp"),
        email=data.get("email"),
        linkedin=data.get("linkedin"),
        notes=data.get("notes"),
        avatar=data.get("avatar"),
        opt_out=bool(data.get("opt_out")),
        columns={str(c["name"]): str(c["value"]) for c in data.get("columns", [])},
        created_at=data.get("created_at"),
    )


class CustomerRecords:
    """Customer documents (by customer id), the listing of each record (by record id) and the
    number index, kept in step with each other."""

    def __init__(self, layout: Layout, region: str) -> None:
        self._layout = layout
        self._region = region

    def by_customer_id(self, customer_id: str) -> Customer | None:
        """The customer with this customer id (one document read, no query)."""
        with self._layout.guard.calling("read a customer"):
            snapshot = self._layout.customer(customer_id).get(**self._layout.guard.options())
        self._layout.meter.read()
        return decode_customer(snapshot.to_dict() or {}) if snapshot.exists else None

    def listings(self, record_ids: Iterable[str]) -> dict[str, Listing]:
        """Where each of `record_ids` is in the cache, for those it holds."""
        ids = list(dict.fromkeys(record_ids))
        found: dict[str, Listing] = {}
        with self._layout.guard.calling("read record listings"):
            for start in range(0, len(ids), MAX_GET_ALL):
                references = [self._layout.record(i) for i in ids[start : start + MAX_GET_ALL]]
                self._layout.meter.read(len(references))
                options = self._layout.guard.options(30)
                for snapshot in self._layout.db.get_all(references, **options):
                    if snapshot.exists:
                        data = snapshot.to_dict() or {}
                        found[data["record_id"]] = Listing(
                            data["record_id"],
                            data["customer_id"],
                            data.get("owner", ""),
                            tuple(data.get("numbers", [])),
                        )
        return found

    def owners_of(self, e164: str) -> list[NumberOwner]:
        """Everyone the number index knows at `e164`, ordered by record id."""
        with self._layout.guard.calling("read the number index"):
            snapshot = self._layout.number(e164).get(**self._layout.guard.options())
        self._layout.meter.read()
        records = (snapshot.to_dict() or {}).get("records", {}) if snapshot.exists else {}
        return [
            NumberOwner(record_id, entry["customer_id"], entry.get("owner", ""))
            for record_id, entry in sorted(records.items())
        ]

    def write(
        self,
        old: Mapping[str, Listing],
        changed: Sequence[Customer],
        deleted: Iterable[str] = (),
    ) -> None:
        """Store `changed`, delete `deleted`, and undo what the `old` listings said.

        Three phases, each committed before the next: the number index, the customer
        documents, the listings. If this stops midway, the old listings still tell the next
        attempt what to undo, and redoing any phase is harmless.
        """
        writes = _Writes(self._layout)
        new_by_id = {c.record_id: c for c in changed}
        for record_id in [*new_by_id, *deleted]:
            before = old.get(record_id)
            after = new_by_id.get(record_id)
            old_numbers = set(before.numbers) if before else set()
            new_numbers = set(after.numbers(self._region)) if after else set()
            for number in old_numbers - new_numbers:
                writes.set(
                    self._layout.number(number),
                    {"records": {record_id: firestore.DELETE_FIELD}},
                    merge=True,
                )
            if after is not None and (
                before is None
                or before.customer_id != after.customer_id
                or before.owner != after.owner
                or new_numbers != old_numbers
            ):
                for number in new_numbers:
                    entry = {"customer_id": after.customer_id, "owner": after.owner}
                    writes.set(
                        self._layout.number(number),
                        {"number": number, "records": {record_id: entry}},
                        merge=True,
                    )
        writes.flush()
        for customer in changed:
            before = old.get(customer.record_id)
            if before is not None and before.customer_id != customer.customer_id:
                writes.delete(self._layout.customer(before.customer_id))
            writes.set(
                self._layout.customer(customer.customer_id),
                encode_customer(customer, self._region),
            )
        for record_id in deleted:
            if record_id in old:
                writes.delete(self._layout.customer(old[record_id].customer_id))
        writes.flush()
        for customer in changed:
            listing = {
                "record_id": customer.record_id,
                "customer_id": customer.customer_id,
                "owner": customer.owner,
                "numbers": customer.numbers(self._region),
            }
            writes.set(self._layout.record(customer.record_id), listing)
        for record_id in deleted:
            writes.delete(self._layout.record(record_id))
        writes.flush()

    def set_opt_out(self, customer_id: str, opted_out: bool) -> None:
        """Change only the opt-out flag of a stored customer."""
        self._layout.meter.wrote()
        with self._layout.guard.calling("update a customer"):
            self._layout.customer(customer_id).set(
                {"opt_out": opted_out}, merge=True, **self._layout.guard.options()
            )


class _Writes:
    """Batched writes (Firestore allows 500 per batch and 10 MiB per commit); `flush` commits the
    batches in parallel."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self._db = layout.db
        self._meter = layout.meter
        self._batches: list[Any] = []
        self._pending = MAX_BATCH_WRITES
        self._bytes = 0

    def set(
        self, reference: firestore.DocumentReference, data: dict[str, Any], merge: bool = False
    ) -> None:
        self._batch(len(json.dumps(data, default=str))).set(reference, data, merge=merge)

    def delete(self, reference: firestore.DocumentReference) -> None:
        self._batch(0).delete(reference)

    def _batch(self, size: int) -> Any:
        self._meter.wrote()
        if self._pending >= MAX_BATCH_WRITES or self._bytes + size > MAX_BATCH_BYTES:
            self._batches.append(self._db.batch())
            self._pending = 0
            self._bytes = 0
        self._pending += 1
        self._bytes += size
        return self._batches[-1]

    def flush(self) -> None:
        batches, self._batches, self._pending = self._batches, [], MAX_BATCH_WRITES
        if not batches:
            return
        options = self._layout.guard.options(30)
        with self._layout.guard.calling("write customers"):
            if len(batches) == 1:
                batches[0].commit(**options)
                return
            with ThreadPoolExecutor(max_workers=PARALLEL_COMMITS) as pool:
                for future in [pool.submit(b.commit, **options) for b in batches]:
                    future.result()
