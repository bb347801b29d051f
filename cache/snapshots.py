"""Per-worker contact snapshots: a header document and immutable chunk documents of list entries.

A snapshot switches atomically: new chunks are written first, then the header is flipped to the
new version in one conditional write (on the header's update time) that fails if someone else
flipped it meanwhile. Chunks that neither the current nor the previous version uses are deleted
afterwards, so a reader who holds the previous header can still finish its page.
"""

from __future__ import annotations

import bisect
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cache.guard import LOST_RACE, CacheUnavailable
from cache.layout import Layout, worker_key
from contacts.model import ListEntry, SortKey

MAX_CHUNK_ENTRIES = 500
# Firestore's limit is 1 MiB per document; keep chunks far below it whatever the names hold.
MAX_CHUNK_BYTES = 256 * 1024
MAX_DISPLAY_NAME_CHARS = 300
# A commit carries at most this much (Firestore allows 10 MiB; gRPC peers often 4 MiB).
MAX_BATCH_BYTES = 2 * 1024 * 1024
MAX_BATCH_WRITES = 400
# Customers that left a worker's list lately, remembered so an Anchor naming one still places
# the next page where the rep's previous page ended.
MAX_DEPARTED = 100
_FLIP_ATTEMPTS = 5


@dataclass(frozen=True)
class ChunkRef:
    """A chunk of a snapshot: its document id, its first sort key and how many entries it holds."""

    id: str
    first: SortKey
    count: int


@dataclass(frozen=True)
class SnapshotHeader:
    """The current version of one worker's snapshot."""

    worker: str
    version: int
    last_pulled: datetime
    count: int
    complete: bool
    chunks: tuple[ChunkRef, ...]
    previous_chunk_ids: tuple[str, ...] = ()
    # (customer id, sort key it had) of customers that left the list, oldest first.
    departed: tuple[tuple[str, SortKey], ...] = ()

    def departed_position(self, customer_id: str) -> SortKey | None:
        """Where `customer_id` stood before it left this list, if it left lately."""
        for departed_id, key in reversed(self.departed):
            if departed_id == customer_id:
                return key
        return None

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> SnapshotHeader:
        return cls(
            worker=data["worker"],
            version=int(data["version"]),
            last_pulled=data["last_pulled"],
            count=int(data["count"]),
            complete=bool(data.get("complete", True)),
            chunks=tuple(
                ChunkRef(c["id"], (c["first"][0], c["first"][1]), int(c["count"]))
                for c in data.get("chunks", [])
            ),
            previous_chunk_ids=tuple(data.get("previous_chunk_ids", [])),
            departed=tuple((d["id"], (d["key"][0], d["key"][1])) for d in data.get("departed", [])),
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "version": self.version,
            "last_pulled": self.last_pulled,
            "count": self.count,
            "complete": self.complete,
            "chunks": [{"id": c.id, "first": list(c.first), "count": c.count} for c in self.chunks],
            "previous_chunk_ids": list(self.previous_chunk_ids),
            "departed": [{"id": i, "key": list(key)} for i, key in self.departed],
        }


class StaleHeader(Exception):
    """A chunk of the header just read is gone: the snapshot moved on twice meanwhile."""


class _VersionConflict(Exception):
    """Another writer flipped the header first."""


def encode_entry(entry: ListEntry) -> dict[str, Any]:
    """A list entry as stored in a chunk."""
    data: dict[str, Any] = {
        "id": entry.customer_id,
        "name": entry.display_name[:MAX_DISPLAY_NAME_CHARS],
        "record": entry.record_id,
        "search": entry.search_text[: MAX_DISPLAY_NAME_CHARS * 2],
    }
    if entry.avatar:
        data["avatar"] = entry.avatar[:1000]
    if entry.created_at:
        data["created"] = entry.created_at
    return data


def decode_entry(data: dict[str, Any]) -> ListEntry:
    """A list entry read back from a chunk."""
    return ListEntry(
        customer_id=data["id"],
        display_name=data["name"],
        avatar=data.get("avatar"),
        record_id=data["record"],
        search_text=data.get("search", ""),
        created_at=data.get("created"),
    )


def _entry_bytes(entry: ListEntry) -> int:
    return 64 + sum(
        len(v.encode("utf-8"))
        for v in (
            entry.customer_id,
            entry.display_name,
            entry.record_id,
            entry.search_text,
            entry.avatar or "",
            entry.created_at or "",
        )
    )


def split_into_chunks(entries: Sequence[ListEntry]) -> list[list[ListEntry]]:
    """Cut sorted entries into chunks bounded in count and in bytes."""
    chunks: list[list[ListEntry]] = []
    current: list[ListEntry] = []
    size = 0
    for entry in entries:
        entry_size = _entry_bytes(entry)
        if current and (len(current) >= MAX_CHUNK_ENTRIES or size + entry_size > MAX_CHUNK_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry_size
    if current:
        chunks.append(current)
    return chunks


class ChunkCache:
    """Chunks are immutable, so an instance may keep recently read ones in memory (bounded)."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self._max_entries = max_entries
        self._entries = 0
        self._chunks: OrderedDict[str, tuple[ListEntry, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str) -> tuple[ListEntry, ...] | None:
        with self._lock:
            chunk = self._chunks.get(path)
            if chunk is not None:
                self._chunks.move_to_end(path)
            return chunk

    def put(self, path: str, chunk: tuple[ListEntry, ...]) -> None:
        with self._lock:
            if path in self._chunks or len(chunk) > self._max_entries:
                return
            self._chunks[path] = chunk
            self._entries += len(chunk)
            while self._entries > self._max_entries:
                _, evicted = self._chunks.popitem(last=False)
                self._entries -= len(evicted)


class WorkerSnapshots:
    """Reads and writes the per-worker snapshots."""

    def __init__(self, layout: Layout, chunk_cache: ChunkCache | None = None) -> None:
        self._layout = layout
        self._cache = chunk_cache or ChunkCache()

    # Reading

    def header(self, worker: str) -> SnapshotHeader | None:
        """The worker's current header, or None when the worker has no snapshot yet."""
        with self._layout.guard.calling("read a snapshot header"):
            snapshot = self._layout.worker(worker).get(**self._layout.guard.options())
        self._layout.meter.read()
        return SnapshotHeader.from_document(snapshot.to_dict() or {}) if snapshot.exists else None

    def headers(self) -> list[SnapshotHeader]:
        """Every worker's header."""
        with self._layout.guard.calling("list snapshot headers"):
            documents = list(self._layout.workers().stream(**self._layout.guard.options(60)))
        self._layout.meter.read(len(documents))
        return [SnapshotHeader.from_document(d.to_dict() or {}) for d in documents]

    def entries(
        self, header: SnapshotHeader, start_after: SortKey | None = None
    ) -> Iterator[ListEntry]:
        """The header's entries in order, reading only chunks at or after `start_after`.

        Raises StaleHeader when a chunk has been cleaned up; read the header again then.
        """
        first_index = 0
        if start_after is not None and header.chunks:
            firsts = [c.first for c in header.chunks]
            first_index = max(0, bisect.bisect_right(firsts, start_after) - 1)
        for ref in header.chunks[first_index:]:
            for entry in self._chunk(header.worker, ref.id):
                if start_after is None or entry.sort_key > start_after:
                    yield entry

    def all_entries(self, header: SnapshotHeader) -> list[ListEntry]:
        """Every entry of the snapshot."""
        return list(self.entries(header))

    def _chunk(self, worker: str, chunk_id: str) -> tuple[ListEntry, ...]:
        reference = self._layout.chunk(worker, chunk_id)
        cached = self._cache.get(reference.path)
        if cached is not None:
            return cached
        with self._layout.guard.calling("read a snapshot chunk"):
            snapshot = reference.get(**self._layout.guard.options())
        self._layout.meter.read()
        if not snapshot.exists:
            raise StaleHeader(chunk_id)
        chunk = tuple(decode_entry(e) for e in (snapshot.to_dict() or {}).get("entries", []))
        self._cache.put(reference.path, chunk)
        return chunk

    # Writing

    def replace(
        self, worker: str, entries: Iterable[ListEntry], *, complete: bool, pulled_at: datetime
    ) -> SnapshotHeader:
        """Make `entries` the worker's whole snapshot."""
        ordered = sorted(entries, key=lambda e: e.sort_key)
        for _ in range(_FLIP_ATTEMPTS):
            current = self.header(worker)
            try:
                return self._write(
                    worker, current, split_into_chunks(ordered), None, complete, pulled_at
                )
            except _VersionConflict:
                continue
        raise _conflict_error(worker)

    def update(
        self,
        worker: str,
        *,
        remove_record_ids: set[str],
        add: Sequence[ListEntry],
        pulled_at: datetime,
        complete: bool | None = None,
    ) -> SnapshotHeader:
        """Remove records from and add entries to the worker's snapshot (creating it if needed).

        Only the chunks that change are rewritten; the others are shared with the new version.
        """
        for _ in range(_FLIP_ATTEMPTS):
            current = self.header(worker)
            try:
                chunks, reused, departed = self._patched_chunks(current, remove_record_ids, add)
                is_complete = (
                    complete if complete is not None else (current.complete if current else True)
                )
                return self._write(
                    worker, current, chunks, reused, is_complete, pulled_at, departed
                )
            except (_VersionConflict, StaleHeader):
                continue
        raise _conflict_error(worker)

    def _patched_chunks(
        self,
        current: SnapshotHeader | None,
        remove_record_ids: set[str],
        add: Sequence[ListEntry],
    ) -> tuple[list[list[ListEntry]], dict[int, str], list[tuple[str, SortKey]]]:
        """The new chunk contents, for unchanged chunks (by new index) their existing id, and the
        customers that leave the list with the sort key they had."""
        adding = {e.record_id for e in add}
        removing = remove_record_ids | adding
        leaving = remove_record_ids - adding
        departed: list[tuple[str, SortKey]] = []
        old_chunks: list[list[ListEntry]] = []
        old_ids: list[str] = []
        if current is not None:
            for ref in current.chunks:
                old_chunks.append(list(self._chunk(current.worker, ref.id)))
                old_ids.append(ref.id)
        dirty: set[int] = set()
        for index, chunk in enumerate(old_chunks):
            kept = [e for e in chunk if e.record_id not in removing]
            departed += [(e.customer_id, e.sort_key) for e in chunk if e.record_id in leaving]
            if len(kept) != len(chunk):
                old_chunks[index] = kept
                dirty.add(index)
        if not old_chunks and add:
            old_chunks.append([])
            old_ids.append("")
        firsts = [chunk[0].sort_key if chunk else ("", "") for chunk in old_chunks]
        for entry in sorted(add, key=lambda e: e.sort_key):
            index = max(0, bisect.bisect_right(firsts, entry.sort_key) - 1)
            bisect.insort(old_chunks[index], entry, key=lambda e: e.sort_key)
            dirty.add(index)
        chunks: list[list[ListEntry]] = []
        reused: dict[int, str] = {}
        for index, chunk in enumerate(old_chunks):
            if index not in dirty:
                reused[len(chunks)] = old_ids[index]
                chunks.append(chunk)
            elif chunk:
                chunks.extend(split_into_chunks(chunk))
        return chunks, reused, departed

    def _write(
        self,
        worker: str,
        current: SnapshotHeader | None,
        chunks: list[list[ListEntry]],
        reused: dict[int, str] | None,
        complete: bool,
        pulled_at: datetime,
        departed: Sequence[tuple[str, SortKey]] = (),
    ) -> SnapshotHeader:
        version = (current.version + 1) if current else 1
        nonce = secrets.token_hex(3)
        refs: list[ChunkRef] = []
        to_write: list[tuple[str, list[ListEntry]]] = []
        for index, chunk in enumerate(chunks):
            existing = (reused or {}).get(index)
            chunk_id = existing or f"v{version}-{index}-{nonce}"
            if existing is None:
                to_write.append((chunk_id, chunk))
            refs.append(ChunkRef(chunk_id, chunk[0].sort_key, len(chunk)))
        identity = current.worker if current else worker.strip()
        header = SnapshotHeader(
            worker=identity,
            version=version,
            last_pulled=pulled_at,
            count=sum(r.count for r in refs),
            complete=complete,
            chunks=tuple(refs),
            previous_chunk_ids=tuple(c.id for c in current.chunks) if current else (),
            departed=((*current.departed, *departed) if current else tuple(departed))[
                -MAX_DEPARTED:
            ],
        )
        self._write_chunks(worker, to_write)
        try:
            self._flip(worker, current.version if current else None, header)
        except _VersionConflict:
            self._delete_chunks(worker, [chunk_id for chunk_id, _ in to_write])
            raise
        if current is not None:
            keep = {r.id for r in refs} | set(header.previous_chunk_ids)
            self._delete_chunks(worker, [i for i in current.previous_chunk_ids if i not in keep])
        return header

    def _write_chunks(self, worker: str, chunks: list[tuple[str, list[ListEntry]]]) -> None:
        batch = self._layout.db.batch()
        pending = 0
        size = 0
        with self._layout.guard.calling("write snapshot chunks"):
            for chunk_id, entries in chunks:
                encoded = [encode_entry(e) for e in entries]
                chunk_size = sum(_entry_bytes(e) for e in entries)
                if pending and (size + chunk_size > MAX_BATCH_BYTES or pending >= MAX_BATCH_WRITES):
                    batch.commit(**self._layout.guard.options(30))
                    batch, pending, size = self._layout.db.batch(), 0, 0
                batch.set(self._layout.chunk(worker, chunk_id), {"entries": encoded})
                self._layout.meter.wrote()
                pending += 1
                size += chunk_size
            if pending:
                batch.commit(**self._layout.guard.options(30))

    def _flip(self, worker: str, expected_version: int | None, header: SnapshotHeader) -> None:
        """Write the header only if its version is still the one we built on (else conflict)."""
        reference = self._layout.worker(worker)
        data = {**header.to_document(), "key": worker_key(worker)}
        with self._layout.guard.calling("switch a snapshot to its new version"):
            snapshot = reference.get(**self._layout.guard.options())
            self._layout.meter.read()
            found = int((snapshot.to_dict() or {})["version"]) if snapshot.exists else None
            if found != expected_version:
                raise _VersionConflict(worker)
            self._layout.meter.wrote()
            try:
                if not snapshot.exists:
                    reference.create(data, **self._layout.guard.options())
                else:
                    option = self._layout.db.write_option(last_update_time=snapshot.update_time)
                    reference.update(data, option=option, **self._layout.guard.options())
            except LOST_RACE as error:
                raise _VersionConflict(worker) from error

    def _delete_chunks(self, worker: str, chunk_ids: list[str]) -> None:
        if not chunk_ids:
            return
        with self._layout.guard.calling("clean up old snapshot chunks"):
            for start in range(0, len(chunk_ids), MAX_BATCH_WRITES):
                batch = self._layout.db.batch()
                for chunk_id in chunk_ids[start : start + MAX_BATCH_WRITES]:
                    batch.delete(self._layout.chunk(worker, chunk_id))
                    self._layout.meter.wrote()
                batch.commit(**self._layout.guard.options(30))


def _conflict_error(worker: str) -> Exception:
    return CacheUnavailable(
        "the worker's snapshot kept changing while it was being written", retry_after=2
    )
