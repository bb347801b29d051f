"""Staged list entries of a full sync in progress, one document per Airtable page."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from cache.layout import Layout
from cache.snapshots import decode_entry, encode_entry
from contacts.model import Customer, ListEntry


class FullSyncStaging:
    """Keeps each pulled page's entries until the run builds every worker's snapshot."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout

    def put_page(self, run_id: str, number: int, customers: Sequence[Customer]) -> None:
        """Stage one page (idempotent: a repeated page overwrites itself)."""
        entries = [{**encode_entry(c.list_entry()), "owner": c.owner} for c in customers]
        self._layout.meter.wrote()
        with self._layout.guard.calling("stage a full-sync page"):
            self._layout.staging_pages(run_id).document(f"{number:08d}").set(
                {"entries": entries}, **self._layout.guard.options(30)
            )

    def entries(self, run_id: str) -> Iterator[tuple[str, ListEntry]]:
        """Every staged (owner, entry), page by page."""
        with self._layout.guard.calling("read staged full-sync pages"):
            for document in self._layout.staging_pages(run_id).stream(
                **self._layout.guard.options(120)
            ):
                self._layout.meter.read()
                data: dict[str, Any] = document.to_dict() or {}
                for item in data.get("entries", []):
                    yield item.get("owner", ""), decode_entry(item)

    def discard(self, run_id: str) -> None:
        """Delete a run's staged pages."""
        pages = self._layout.staging_pages(run_id)
        with self._layout.guard.calling("discard staged full-sync pages"):
            while True:
                documents = list(pages.limit(400).stream(**self._layout.guard.options(30)))
                if not documents:
                    return
                batch = self._layout.db.batch()
                self._layout.meter.read(len(documents))
                self._layout.meter.wrote(len(documents))
                for document in documents:
                    batch.delete(document.reference)
                batch.commit(**self._layout.guard.options(30))
