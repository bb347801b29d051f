"""Keeping the cache in step with the table: incremental refresh, deletion sweep, full sync, and
the cold pull of one worker's first pages. Only the holder of a lease pulls; others keep serving.
"""

from __future__ import annotations

import contextvars
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cache.layout import worker_key
from cache.lease import Leases
from cache.records import CustomerRecords
from cache.snapshots import SnapshotHeader, WorkerSnapshots
from cache.staging import FullSyncStaging
from cache.sync_state import FullSyncRun, SyncState, SyncStateStore
from cache.templates import TemplateStore, templates_digest
from contacts.model import Customer, ListEntry
from contacts.source import CustomerSource, FeedGone, OffsetExpired, SourcePage
from integrations.rate_limit import Pace, paced
from service.clock import Clock
from service.deadline import current_deadline, deadline_scope
from service.errors import DependencyFailed, DependencyUnavailable
from service.logs import log_fields

_log = logging.getLogger(__name__)

# Pull from a little before the watermark: clock skew and same-second edits are not lost.
SKEW_SECONDS = 10.0
REFRESH_LEASE = "refresh"
REFRESH_LEASE_SECONDS = 60.0
SWEEP_LEASE = "sweep"
FEED_KEEP_EVERY = timedelta(days=1)
SWEEP_SPACING_WITH_FEED = 24
WORKER_LEASE_SECONDS = 15.0
# A refresh started by a callback may take this long and this many pages; the task does the rest.
REQUEST_REFRESH_SECONDS = 3.0
REQUEST_REFRESH_PAGES = 2
COLD_PULL_PAGES = 2
# Share of a task's budget a full-sync step keeps for building snapshots after the last page.
BUILD_RESERVE_SHARE = 0.25
UNLIMITED_PAGES = 1_000_000


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did (the /tasks/refresh reply and the logs)."""

    kind: str
    changed: int = 0
    deleted: int = 0
    complete: bool = True
    pages: int = 0
    customers: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.complete else "in_progress",
            "kind": self.kind,
            "changed": self.changed,
            "deleted": self.deleted,
            "pages": self.pages,
            "customers": self.customers,
        }


class Refresher:
    """Pulls changes from the source into Firestore."""

    def __init__(
        self,
        *,
        source: CustomerSource,
        snapshots: WorkerSnapshots,
        records: CustomerRecords,
        templates: TemplateStore,
        state: SyncStateStore,
        staging: FullSyncStaging,
        leases: Leases,
        clock: Clock,
        ttl_seconds: float,
        sweep_seconds: float,
    ) -> None:
        self._source = source
        self._snapshots = snapshots
        self._records = records
        self._templates = templates
        self._state = state
        self._staging = staging
        self._leases = leases
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._sweep_every = timedelta(seconds=sweep_seconds)
        self._retry_after_failure = 0.0

    # Writing changes

    def apply_changes(self, changed: Sequence[Customer], deleted: Iterable[str] = ()) -> None:
        """Put changed customers in the cache and take deleted ones out, everywhere.

        Order matters for a refresh cut off midway: worker snapshots first, then the number
        index and customer documents (which remember where each record was listed), and the
        caller moves the watermark last. Repeating the same changes is harmless.
        """
        deleted_ids = [r for r in deleted if r not in {c.record_id for c in changed}]
        record_ids = [c.record_id for c in changed] + deleted_ids
        if not record_ids:
            return
        old = self._records.listings(record_ids)
        deleted_ids = [r for r in deleted_ids if r in old]  # a deletion feed reports every table
        identities: dict[str, str] = {}
        removals: dict[str, set[str]] = defaultdict(set)
        additions: dict[str, list[ListEntry]] = defaultdict(list)
        for record_id, before in old.items():
            identities.setdefault(worker_key(before.owner), before.owner)
            removals[worker_key(before.owner)].add(record_id)
        for customer in changed:
            identities[worker_key(customer.owner)] = customer.owner
            additions[worker_key(customer.owner)].append(customer.list_entry())
        now = self._clock.now()
        for key in sorted(set(removals) | set(additions)):
            self._snapshots.update(
                identities[key], remove_record_ids=removals[key], add=additions[key], pulled_at=now
            )
        self._records.write(old, changed, deleted_ids)

    # The callbacks' refresh

    def refresh_if_due(self) -> None:
        """Called by callbacks: a short incremental refresh when the cache is older than its TTL.

        Never raises for a failing dependency: the callback goes on with the current snapshot.
        """
        if time.monotonic() < self._retry_after_failure:
            return
        try:
            with deadline_scope(REQUEST_REFRESH_SECONDS):
                state = self._state.get()
                if not self._is_due(state):
                    return
                holder = self._leases.acquire(REFRESH_LEASE, REFRESH_LEASE_SECONDS)
                if holder is None:
                    return
                try:
                    self.incremental(max_pages=REQUEST_REFRESH_PAGES)
                finally:
                    self._leases.release(REFRESH_LEASE, holder)
        except (DependencyUnavailable, DependencyFailed) as error:
            self._retry_after_failure = time.monotonic() + self._ttl.total_seconds()
            log_fields(
                _log,
                logging.WARNING,
                "refresh failed; serving the current snapshot",
                error=error.message,
            )

    def _is_due(self, state: SyncState) -> bool:
        if state.synced_at is None or state.full_sync is not None:
            return False
        return state.last_refresh is None or self._clock.now() - state.last_refresh >= self._ttl

    # Incremental refresh and deletion sweep

    def incremental(self, max_pages: int = UNLIMITED_PAGES) -> RefreshResult:
        """Apply every record changed since the watermark (caller holds the refresh lease)."""
        started = self._clock.now()
        state = self._state.get(fresh=True)
        if state.last_refresh is not None and started - state.last_refresh < self._ttl / 4:
            return RefreshResult("incremental")  # another instance just did it
        since = (state.watermark or started) - timedelta(seconds=SKEW_SECONDS)
        changed, complete = self._source.customers_changed_since(since, max_pages)
        self.apply_changes(changed)
        feed = self._read_deletion_feed(state)
        digest = state.templates_digest
        if complete:
            templates = self._source.templates()
            if templates_digest(templates) != digest:
                self._templates.put(templates, started)
                digest = templates_digest(templates)
        self._state.update(
            last_refresh=started,
            watermark=started if complete else state.watermark,
            templates_digest=digest,
            **feed,
        )
        log_fields(
            _log, logging.INFO, "incremental refresh", changed=len(changed), complete=complete
        )
        return RefreshResult("incremental", changed=len(changed), complete=complete)

    def _read_deletion_feed(self, state: SyncState) -> dict[str, Any]:
        """Apply the deletions the webhook reported; the sync-state fields to update."""
        if state.deletion_feed is None:
            return {}
        try:
            deletions = self._source.deletions_since(state.deletion_feed, state.feed_cursor)
        except FeedGone:
            # Deletions since the feed vanished are unknown: the next task call sweeps.
            log_fields(_log, logging.WARNING, "the deletion webhook is gone; sweeping instead")
            return {"deletion_feed": None, "last_sweep": None}
        self.apply_changes([], deletions.record_ids)
        return {"feed_cursor": deletions.cursor}

    def _keep_deletion_feed(self, state: SyncState) -> SyncState:
        """Open the deletion webhook if there is none (then sweep once, for what came before
        it), or extend it daily; a token without the scope is asked again a day later."""
        now = self._clock.now()
        if state.deletion_feed is not None:
            if state.feed_kept_at is not None and now - state.feed_kept_at < FEED_KEEP_EVERY:
                return state
            try:
                self._source.keep_deletion_feed(state.deletion_feed)
                self._state.update(feed_kept_at=now)
                return state.with_changes(feed_kept_at=now)
            except FeedGone:
                state = state.with_changes(deletion_feed=None, last_sweep=None)
                self._state.update(deletion_feed=None, last_sweep=None)
        if state.feed_refused_at is not None and now - state.feed_refused_at < FEED_KEEP_EVERY:
            return state
        feed = self._source.open_deletion_feed()
        if feed is None:
            self._state.update(feed_refused_at=now)
            return state.with_changes(feed_refused_at=now)
        fields: dict[str, Any] = {"deletion_feed": feed, "feed_cursor": 1, "feed_kept_at": now}
        if state.full_sync is None:
            fields["last_sweep"] = None  # deletions before the feed existed
        self._state.update(**fields)
        return state.with_changes(**fields)

    def sweep(self) -> RefreshResult:
        """Find records deleted from the table (ids-only listing) and take them out of the cache."""
        started = self._clock.now()
        table_ids = self._source.record_ids()
        cutoff = started - timedelta(seconds=SKEW_SECONDS)
        deleted = [
            entry.record_id
            for header in self._snapshots.headers()
            for entry in self._snapshots.all_entries(header)
            if entry.record_id not in table_ids and _created_before(entry.created_at, cutoff)
        ]
        self.apply_changes([], deleted)
        self._state.update(last_sweep=started)
        log_fields(
            _log, logging.INFO, "deletion sweep", deleted=len(deleted), records=len(table_ids)
        )
        return RefreshResult("sweep", deleted=len(deleted))

    # The scheduled task

    def run_task(self, full: bool = False) -> RefreshResult:
        """One call of /tasks/refresh: continue or start a full sync, or refresh; then sweep
        for deletions if one is due. The sweep holds a lease of its own, so the refreshes of
        other calls and callbacks go on while it lists every record id."""
        holder = self._leases.acquire(REFRESH_LEASE, REFRESH_LEASE_SECONDS)
        if holder is None:
            return RefreshResult("busy", complete=False)
        try:
            with paced(Pace.BULK):
                state = self._state.get(fresh=True)
                if full and state.full_sync is None:
                    state = self._start_run(state)
                state = self._keep_deletion_feed(state)
                if state.synced_at is None or state.full_sync is not None:
                    return self._full_sync_step(state, holder)
                result = self.incremental()
                state = self._state.get(fresh=True)
        finally:
            self._leases.release(REFRESH_LEASE, holder)
        # With the webhook reporting deletions, the sweep is only a daily safety net.
        sweep_every = self._sweep_every * (SWEEP_SPACING_WITH_FEED if state.deletion_feed else 1)
        if state.last_sweep is not None and self._clock.now() - state.last_sweep < sweep_every:
            return result
        sweeper = self._leases.acquire(SWEEP_LEASE, current_deadline().remaining() + 60)
        if sweeper is None:
            return result
        try:
            with paced(Pace.BULK):
                swept = self.sweep()
        finally:
            self._leases.release(SWEEP_LEASE, sweeper)
        return RefreshResult("incremental+sweep", result.changed, swept.deleted)

    # Full sync

    def _start_run(self, state: SyncState) -> SyncState:
        run = FullSyncRun(
            run_id=f"{self._clock.now():%Y%m%dT%H%M%S}-{secrets.token_hex(3)}",
            started_at=self._clock.now(),
            offset=None,
            pages=0,
            customers=0,
        )
        state = state.with_changes(full_sync=run)
        self._state.put(state)
        return state

    def _full_sync_step(self, state: SyncState, holder: str) -> RefreshResult:
        """Pull pages until done or out of time, checkpointing after each; then build snapshots."""
        if state.full_sync is None:
            state = self._start_run(state)
        run = state.full_sync
        assert run is not None
        deadline = current_deadline()
        reserve = deadline.remaining() * BUILD_RESERVE_SHARE
        pages_at_start = run.pages
        with ThreadPoolExecutor(max_workers=1) as prefetcher:
            # The next page is fetched while this one is written: Airtable's pace and
            # Firestore's writes overlap instead of adding up.
            upcoming: Future[SourcePage] | None = None
            while not run.pulled_all:
                if not deadline.allows(reserve):
                    return RefreshResult(
                        "full_sync", complete=False, pages=run.pages, customers=run.customers
                    )
                try:
                    page = (
                        upcoming.result() if upcoming else self._source.customers_page(run.offset)
                    )
                except OffsetExpired:
                    log_fields(
                        _log,
                        logging.WARNING,
                        "full sync offset expired; starting over",
                        run=run.run_id,
                    )
                    self._staging.discard(run.run_id)
                    state = self._start_run(state)
                    assert state.full_sync is not None
                    run, upcoming = state.full_sync, None
                    continue
                except DependencyUnavailable:
                    if run.pages == pages_at_start:
                        raise
                    # Progress is checkpointed: the next call resumes from here.
                    return RefreshResult(
                        "full_sync", complete=False, pages=run.pages, customers=run.customers
                    )
                upcoming = None
                if page.offset is not None and deadline.allows(reserve + 1):
                    context = contextvars.copy_context()
                    upcoming = prefetcher.submit(
                        context.run, self._source.customers_page, page.offset
                    )
                run = self._store_page(run, page)
                state = state.with_changes(full_sync=run)
                self._state.put(state)
                if not self._leases.renew(REFRESH_LEASE, holder, REFRESH_LEASE_SECONDS):
                    return RefreshResult(
                        "busy", complete=False, pages=run.pages, customers=run.customers
                    )
                if run.pages % 50 == 0:
                    log_fields(
                        _log,
                        logging.INFO,
                        "full sync progress",
                        pages=run.pages,
                        customers=run.customers,
                    )
        try:
            deleted = self._build_snapshots(run)
            templates = self._source.templates()
        except DependencyUnavailable:
            if run.pages == pages_at_start:
                raise
            # Every page is pulled and checkpointed; the next call builds (again, harmlessly).
            return RefreshResult(
                "full_sync", complete=False, pages=run.pages, customers=run.customers
            )
        self._templates.put(templates, run.started_at)
        now = self._clock.now()
        self._state.put(
            state.with_changes(
                watermark=run.started_at,
                last_refresh=now,
                last_sweep=run.started_at,
                synced_at=now,
                full_sync=None,
                templates_digest=templates_digest(templates),
            )
        )
        self._staging.discard(run.run_id)
        log_fields(
            _log, logging.INFO, "full sync complete", pages=run.pages, customers=run.customers
        )
        return RefreshResult("full_sync", deleted=deleted, pages=run.pages, customers=run.customers)

    def _store_page(self, run: FullSyncRun, page: SourcePage) -> FullSyncRun:
        """Write one pulled page (customer documents, number index, staged entries)."""
        old = self._records.listings(c.record_id for c in page.customers)
        self._records.write(old, page.customers)
        self._staging.put_page(run.run_id, run.pages, page.customers)
        return FullSyncRun(
            run_id=run.run_id,
            started_at=run.started_at,
            offset=page.offset,
            pages=run.pages + 1,
            customers=run.customers + len(page.customers),
            pulled_all=page.offset is None,
        )

    def _build_snapshots(self, run: FullSyncRun) -> int:
        """Replace every worker's snapshot with the staged entries; drop records no longer seen."""
        identities: dict[str, str] = {}
        grouped: dict[str, list[ListEntry]] = defaultdict(list)
        for owner, entry in self._staging.entries(run.run_id):
            key = worker_key(owner)
            identities.setdefault(key, owner)
            grouped[key].append(entry)
        seen = {entry.record_id for entries in grouped.values() for entry in entries}
        old_headers = self._snapshots.headers()
        gone = [
            entry.record_id
            for header in old_headers
            for entry in self._snapshots.all_entries(header)
            if entry.record_id not in seen
        ]
        for key, entries in grouped.items():
            self._snapshots.replace(
                identities[key], entries, complete=True, pulled_at=run.started_at
            )
        for header in old_headers:
            if worker_key(header.worker) not in grouped:
                self._snapshots.replace(header.worker, [], complete=True, pulled_at=run.started_at)
        if gone:
            self._records.write(self._records.listings(gone), [], gone)
        return len(gone)

    # Cold start of one worker

    def pull_worker(self, worker: str) -> SnapshotHeader | None:
        """Before the first full sync: pull a worker's first pages (sorted by name) as a snapshot.

        Only the instance holding the worker's lease pulls; the others wait for its snapshot.
        Returns None when another instance is pulling and its snapshot did not appear in time.
        """
        lease = f"worker:{worker_key(worker)}"
        holder = self._leases.acquire(lease, WORKER_LEASE_SECONDS)
        if holder is not None:
            try:
                existing = self._snapshots.header(worker)
                if existing is not None:
                    return existing
                customers, complete = self._source.worker_customers(worker, COLD_PULL_PAGES)
                mine = [c for c in customers if worker_key(c.owner) == worker_key(worker)]
                old = self._records.listings(c.record_id for c in mine)
                header = self._snapshots.replace(
                    worker,
                    [c.list_entry() for c in mine],
                    complete=complete,
                    pulled_at=self._clock.now(),
                )
                self._records.write(old, mine)
                return header
            finally:
                self._leases.release(lease, holder)
        deadline = current_deadline()
        while deadline.allows(0.5):
            time.sleep(0.1)
            found = self._snapshots.header(worker)
            if found is not None:
                return found
        return None


def _created_before(created_at: str | None, cutoff: datetime) -> bool:
    if not created_at:
        return True
    try:
        return datetime.fromisoformat(created_at.replace("Z", "+00:00")) < cutoff
    except ValueError:
        return True
