"""The table-level sync state: how far the cache has caught up with the table, and any full sync
in progress with its checkpoint."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cache.layout import Layout

# Each instance re-reads the state at most this often; it only decides whether to refresh.
STATE_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class FullSyncRun:
    """A full sync in progress: where to resume and when it started."""

    run_id: str
    started_at: datetime
    offset: str | None
    pages: int
    customers: int
    pulled_all: bool = False


@dataclass(frozen=True)
class SyncState:
    """How current the cache is.

    `watermark` is the start of the last complete incremental pull (or full sync): every change
    made in the table before it is in the cache. `synced_at` is None until the first full sync
    (or a complete pull) has finished: until then the cache is cold.
    """

    watermark: datetime | None = None
    last_refresh: datetime | None = None
    last_sweep: datetime | None = None
    synced_at: datetime | None = None
    full_sync: FullSyncRun | None = None
    templates_digest: str | None = None
    # The Airtable webhook whose payloads report deletions, and how far they have been read.
    deletion_feed: str | None = None
    feed_cursor: int = 1
    feed_kept_at: datetime | None = None
    feed_refused_at: datetime | None = None

    def with_changes(self, **changes: Any) -> SyncState:
        return replace(self, **changes)


def _encode(state: SyncState) -> dict[str, Any]:
    run = state.full_sync
    return {
        "watermark": state.watermark,
        "last_refresh": state.last_refresh,
        "last_sweep": state.last_sweep,
        "synced_at": state.synced_at,
        "templates_digest": state.templates_digest,
        "deletion_feed": state.deletion_feed,
        "feed_cursor": state.feed_cursor,
        "feed_kept_at": state.feed_kept_at,
        "feed_refused_at": state.feed_refused_at,
        "full_sync": None
        if run is None
        else {
            "run_id": run.run_id,
            "started_at": run.started_at,
            "offset": run.offset,
            "pages": run.pages,
            "customers": run.customers,
            "pulled_all": run.pulled_all,
        },
    }


def _decode(data: dict[str, Any]) -> SyncState:
    run = data.get("full_sync")
    return SyncState(
        watermark=data.get("watermark"),
        last_refresh=data.get("last_refresh"),
        last_sweep=data.get("last_sweep"),
        synced_at=data.get("synced_at"),
        templates_digest=data.get("templates_digest"),
        deletion_feed=data.get("deletion_feed"),
        feed_cursor=int(data.get("feed_cursor") or 1),
        feed_kept_at=data.get("feed_kept_at"),
        feed_refused_at=data.get("feed_refused_at"),
        full_sync=None
        if not run
        else FullSyncRun(
            run_id=run["run_id"],
            started_at=run["started_at"],
            offset=run.get("offset"),
            pages=int(run.get("pages", 0)),
            customers=int(run.get("customers", 0)),
            pulled_all=bool(run.get("pulled_all", False)),
        ),
    )


class SyncStateStore:
    """Reads (with a short per-instance cache) and writes the sync state document."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self._cached: tuple[float, SyncState] | None = None
        self._lock = threading.Lock()

    def get(self, fresh: bool = False) -> SyncState:
        """The sync state; `fresh` skips the instance's few-seconds cache."""
        with self._lock:
            if (
                not fresh
                and self._cached
                and time.monotonic() - self._cached[0] < STATE_CACHE_SECONDS
            ):
                return self._cached[1]
        with self._layout.guard.calling("read the sync state"):
            snapshot = self._layout.state("sync").get(**self._layout.guard.options())
        self._layout.meter.read()
        state = _decode(snapshot.to_dict() or {}) if snapshot.exists else SyncState()
        with self._lock:
            self._cached = (time.monotonic(), state)
        return state

    def update(self, **fields: Any) -> None:
        """Change only the given top-level fields, so a sweep and a refresh running at once
        never undo each other."""
        allowed = {
            "watermark",
            "last_refresh",
            "last_sweep",
            "templates_digest",
            "deletion_feed",
            "feed_cursor",
            "feed_kept_at",
            "feed_refused_at",
        }
        if not fields.keys() <= allowed:
            raise ValueError(f"not a plain sync-state field: {sorted(fields.keys() - allowed)}")
        with self._layout.guard.calling("update the sync state"):
            self._layout.state("sync").set(fields, merge=True, **self._layout.guard.options())
        self._layout.meter.wrote()
        with self._lock:
            self._cached = None

    def put(self, state: SyncState) -> None:
        """Replace the sync state."""
        with self._layout.guard.calling("write the sync state"):
            self._layout.state("sync").set(_encode(state), **self._layout.guard.options())
        self._layout.meter.wrote()
        with self._lock:
            self._cached = (time.monotonic(), state)
