"""Per-customer documents (details, templates) and the number index (routing, webhooks)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from cache.layout import Layout, worker_key
from contacts.model import Customer

MAX_BATCH_WRITES = 400
MAX_GET_ALL = 100
PARALLEL_COMMITS = 4


@dataclass(frozen=True)
class NumberOwner:
    """Who a phone number belongs to, according to the number index."""

    record_id: str
    customer_id: str
    owner: str


def encode_customer(customer: Customer, region: str) -> dict[str, Any]:
    """A customer as stored in its document."""
    data = asdict(customer)
    # Firestore has no arrays of arrays, and column names may be anything: a list of maps.
    data["columns"] = [{"name": name, "value": value} for name, value in customer.columns.items()]
    data["numbers"] = customer.numbers(region)
    data["owner_key"] = worker_key(customer.owner)
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
    """Reads and writes customer documents and keeps the number index in step with them."""

    def __init__(self, layout: Layout, region: str) -> None:
        self._layout = layout
        self._region = region

    def by_customer_id(self, customer_id: str) -> Customer | None:
        """The customer with this customer id (if the table repeats it, the lowest record id)."""
        query = (
            self._layout.customers()
            .where(filter=FieldFilter("customer_id", "==", customer_id))
            .limit(5)
        )
        with self._layout.guard.calling("read a customer"):
            found = [
                decode_customer(d.to_dict() or {})
                for d in query.stream(**self._layout.guard.options())
            ]
        self._layout.meter.read(len(found))
        return min(found, key=lambda c: c.record_id) if found else None

    def by_record_ids(self, record_ids: Iterable[str]) -> dict[str, Customer]:
        """The stored customers among `record_ids`, keyed by record id."""
        ids = list(dict.fromkeys(record_ids))
        found: dict[str, Customer] = {}
        with self._layout.guard.calling("read customers"):
            for start in range(0, len(ids), MAX_GET_ALL):
                references = [self._layout.customer(i) for i in ids[start : start + MAX_GET_ALL]]
                self._layout.meter.read(len(references))
                for snapshot in self._layout.db.get_all(
                    references, **self._layout.guard.options(30)
                ):
                    if snapshot.exists:
                        customer = decode_customer(snapshot.to_dict() or {})
                        found[customer.record_id] = customer
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
        old: Mapping[str, Customer],
        changed: Sequence[Customer],
        deleted: Iterable[str] = (),
    ) -> None:
        """Store `changed`, delete `deleted`, and move number-index entries from `old` values.

        The index is written before the documents: if this stops midway, the old documents
        still tell the next attempt which index entries to remove.
        """
        writes = _Writes(self._layout)
        new_by_id = {c.record_id: c for c in changed}
        for record_id in [*new_by_id, *deleted]:
            before = old.get(record_id)
            after = new_by_id.get(record_id)
            old_numbers = set(before.numbers(self._region)) if before else set()
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
            writes.set(
                self._layout.customer(customer.record_id), encode_customer(customer, self._region)
            )
        for record_id in deleted:
            writes.delete(self._layout.customer(record_id))
        writes.flush()

    def set_opt_out(self, record_id: str, opted_out: bool) -> None:
        """Change only the opt-out flag of a stored customer."""
        self._layout.meter.wrote()
        with self._layout.guard.calling("update a customer"):
            self._layout.customer(record_id).set(
                {"opt_out": opted_out}, merge=True, **self._layout.guard.options()
            )


class _Writes:
    """Batched writes (Firestore allows 500 per batch); `flush` commits the batches in parallel."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self._db = layout.db
        self._meter = layout.meter
        self._batches: list[Any] = []
        self._pending = MAX_BATCH_WRITES

    def set(
        self, reference: firestore.DocumentReference, data: dict[str, Any], merge: bool = False
    ) -> None:
        self._batch().set(reference, data, merge=merge)

    def delete(self, reference: firestore.DocumentReference) -> None:
        self._batch().delete(reference)

    def _batch(self) -> Any:
        self._meter.wrote()
        if self._pending >= MAX_BATCH_WRITES:
            self._batches.append(self._db.batch())
            self._pending = 0
        self._pending += 1
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
