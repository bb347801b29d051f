"""The contact directory: what the handlers ask about customers, answered from Firestore.

Reads never wait on a full Airtable pull. When Firestore fails, whatever can be answered with at
most two Airtable requests is, directly; the rest is a 503 with Retry-After.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from cache.guard import CacheUnavailable
from cache.layout import worker_key
from cache.records import CustomerRecords, NumberOwner
from cache.refresh import Refresher
from cache.snapshots import SnapshotHeader, StaleHeader, WorkerSnapshots
from cache.sync_state import SyncStateStore
from cache.templates import TemplateStore
from contacts.model import Customer, ListEntry, NewCustomer, SortKey, Template
from contacts.phones import to_e164
from contacts.source import CustomerSource
from integrations.rate_limit import Pace, paced
from service.clock import Clock
from service.errors import DependencyUnavailable, NotFound
from service.logs import log_fields

_log = logging.getLogger(__name__)
_READ_ATTEMPTS = 3
KNOWN_WORKERS_SECONDS = 300.0
# Customers in one Airtable page: what a list can show while the cache is unavailable.
SOURCE_PAGE = 100
T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    """One page of a worker's list, and whether more follow."""

    entries: list[ListEntry]
    has_more: bool


class ContactDirectory:
    """Customers, templates and number owners, from the shared cache."""

    def __init__(
        self,
        *,
        source: CustomerSource,
        snapshots: WorkerSnapshots,
        records: CustomerRecords,
        templates: TemplateStore,
        state: SyncStateStore,
        refresher: Refresher,
        clock: Clock,
        phone_region: str,
    ) -> None:
        self._source = source
        self._snapshots = snapshots
        self._records = records
        self._templates = templates
        self._state = state
        self.refresher = refresher
        self._clock = clock
        self._region = phone_region
        self._known_workers: tuple[float, list[str]] | None = None

    def refresh_if_due(self) -> None:
        """Catch up with the table if the cache is older than its TTL (bounded; never fails)."""
        try:
            self.refresher.refresh_if_due()
        except CacheUnavailable as error:
            log_fields(_log, logging.WARNING, "cache unavailable for refresh", error=error.message)

    # Lists

    def customers_page(
        self, worker: str, *, after: SortKey | None, limit: int, query: str | None = None
    ) -> Page:
        """The worker's customers ordered by name then id, after `after`, optionally searched."""
        return self._with_fallback(
            lambda: self._page_from_cache(worker, after, limit, query),
            lambda: self._page_from_source(worker, after, limit, query),
            "list customers",
        )

    def position_of(self, worker: str, customer_id: str) -> SortKey | None:
        """The sort key of `customer_id` in the worker's list (for Anchor pagination)."""

        def from_cache() -> SortKey | None:
            header = self._header(worker)
            if header is None:
                return None
            for entry in self._snapshots.entries(header):
                if entry.customer_id == customer_id:
                    return entry.sort_key
            # Removed or reassigned since the rep's last page: continue from where it stood.
            return header.departed_position(customer_id)

        def from_source() -> SortKey | None:
            found = self._source.customer_by_id(customer_id)
            if found is None or worker_key(found.owner) != worker_key(worker):
                return None
            return found.list_entry().sort_key

        return self._with_fallback(from_cache, from_source, "find a customer in a list")

    def _page_from_cache(
        self, worker: str, after: SortKey | None, limit: int, query: str | None
    ) -> Page:
        for _ in range(_READ_ATTEMPTS):
            header = self._header(worker)
            if header is None:
                return Page([], False)
            try:
                return _take(self._snapshots.entries(header, start_after=after), limit, query)
            except StaleHeader:
                continue
        raise CacheUnavailable("the worker's snapshot changed too often to read", retry_after=1)

    def _header(self, worker: str) -> SnapshotHeader | None:
        header = self._snapshots.header(worker)
        if header is not None or self._state.get().synced_at is not None:
            return header
        header = self.refresher.pull_worker(worker)
        if header is None:
            raise DependencyUnavailable("this rep's contacts are being loaded", retry_after=2)
        return header

    def _page_from_source(
        self, worker: str, after: SortKey | None, limit: int, query: str | None
    ) -> Page:
        # One Airtable page: the first SOURCE_PAGE customers by name. Pages further down the
        # list need the cache, so they wait for it rather than end the list early.
        if query:
            customers = self._source.search_customers(worker, query, SOURCE_PAGE)
            complete = len(customers) < SOURCE_PAGE
        else:
            customers, complete = self._source.worker_customers(worker, 1)
        mine = sorted(
            (c.list_entry() for c in customers if worker_key(c.owner) == worker_key(worker)),
            key=lambda e: e.sort_key,
        )
        later = [e for e in mine if after is None or e.sort_key > after]
        if not later and not complete:
            raise DependencyUnavailable(
                "the rest of this list is served from the cache, which is unavailable; "
                "try again shortly",
                retry_after=5,
            )
        page = _take(iter(later), limit, None)
        return Page(page.entries, page.has_more or not complete)

    # Single customers

    def customer(self, customer_id: str) -> Customer:
        """The customer with this id, whoever owns it; NotFound if there is none."""

        def from_cache() -> Customer | None:
            found = self._records.by_customer_id(customer_id)
            if found is None and self._state.get().synced_at is None:
                found = self._source.customer_by_id(customer_id)
                if found is not None:
                    self._records.write({}, [found])
            return found

        customer = self._with_fallback(
            from_cache, lambda: self._source.customer_by_id(customer_id), "read a customer"
        )
        if customer is None:
            raise NotFound(f"no customer with id {customer_id!r}", field="CustomerId")
        return customer

    def owners_of_address(self, address: str) -> list[NumberOwner]:
        """Who owns the customer at `address` (sms or whatsapp:, any formatting)."""
        e164 = to_e164(address, self._region)
        if e164 is None:
            return []

        def from_source() -> list[NumberOwner]:
            found = self._source.customers_by_number(e164)
            return [NumberOwner(c.record_id, c.customer_id, c.owner) for c in found]

        def from_cache() -> list[NumberOwner]:
            owners = self._records.owners_of(e164)
            if not owners and self._state.get().synced_at is None:
                found = self._source.customers_by_number(e164)
                if found:
                    self._records.write(self._records.listings(c.record_id for c in found), found)
                return [NumberOwner(c.record_id, c.customer_id, c.owner) for c in found]
            return owners

        return self._with_fallback(from_cache, from_source, "look up a number")

    def customer_at_address(self, address: str) -> Customer | None:
        """The customer reached at `address`: the first known owner's record."""
        owners = self.owners_of_address(address)
        if not owners:
            return None
        try:
            return self.customer(owners[0].customer_id)
        except NotFound:
            return None

    def templates(self) -> list[Template]:
        """Every template, in table order."""

        def from_cache() -> list[Template]:
            cached = self._templates.get()
            if cached is None:
                cached = self._source.templates()
                self._templates.put(cached, self._clock.now())
            return cached

        return self._with_fallback(from_cache, self._source.templates, "read templates")

    def known_workers(self) -> list[str]:
        """Every worker who has a snapshot with at least one customer, sorted.

        It reads every header, so an instance reuses the answer for a few minutes: an
        unknown number arriving every second must not cost a read per rep each time.
        """
        cached = self._known_workers
        if cached is not None and time.monotonic() - cached[0] < KNOWN_WORKERS_SECONDS:
            return cached[1]
        no_headers: Callable[[], list[SnapshotHeader]] = list
        headers = self._with_fallback(self._snapshots.headers, no_headers, "list workers")
        workers = sorted({h.worker for h in headers if h.count > 0 and h.worker.strip()})
        self._known_workers = (time.monotonic(), workers)
        return workers

    # Changes made through Frontline

    def create_customer(self, new: NewCustomer) -> Customer:
        """Create the customer in the table and in the cache at once."""
        customer = self._source.create_customer(new)
        self._write_through("add a new customer", lambda: self.refresher.apply_changes([customer]))
        return customer

    def delete_customer(self, customer: Customer) -> None:
        """Delete the customer in the table and in the cache."""
        self._source.delete_customer(customer.record_id)
        self._write_through(
            "remove a deleted customer",
            lambda: self.refresher.apply_changes([], [customer.record_id]),
        )

    def set_opt_out(self, customer: Customer, opted_out: bool) -> Customer:
        """Set or clear the customer's opt-out in the table and in the cache."""
        updated = self._source.set_opt_out(customer.record_id, opted_out)
        self._write_through(
            "record an opt-out", lambda: self._records.set_opt_out(customer.customer_id, opted_out)
        )
        return updated

    # Helpers

    def _write_through(self, action: str, write: Callable[[], None]) -> None:
        # The table is the truth and already has the change; a failed cache write is repaired
        # by the next refresh, so it must not fail the callback.
        try:
            write()
        except CacheUnavailable as error:
            log_fields(
                _log, logging.WARNING, f"could not {action} in the cache", error=error.message
            )

    def _with_fallback(self, cached: Callable[[], T], direct: Callable[[], T], action: str) -> T:
        try:
            return cached()
        except CacheUnavailable as error:
            log_fields(
                _log,
                logging.WARNING,
                "cache unavailable; asking Airtable directly",
                action=action,
                error=error.message,
            )
            with paced(Pace.FALLBACK):
                return direct()


def _take(entries: Iterator[ListEntry], limit: int, query: str | None) -> Page:
    """The first `limit` entries (matching `query`), and whether one more exists."""
    page: list[ListEntry] = []
    for entry in entries:
        if query and not entry.matches(query):
            continue
        if len(page) == limit:
            return Page(page, True)
        page.append(entry)
    return Page(page, False)
