"""Where everything lives in Firestore, under FIRESTORE_COLLECTION_PREFIX, with safe document ids.

{prefix}workers/{worker}                  snapshot header: version, last_pulled, count, chunks
{prefix}workers/{worker}/chunks/{chunk}   up to 500 list entries, immutable once written
{prefix}customers/{record}                the full customer, for details and templates
{prefix}numbers/{e164}                    address index: number -> record ids, customer ids, owners
{prefix}state/sync                        watermark, last refresh, last sweep, full-sync checkpoint
{prefix}state/templates                   the templates snapshot
{prefix}leases/{name}                     who pulls from Airtable right now, until when
{prefix}staging/{run}/pages/{n}           list entries of a full sync in progress
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass

from google.cloud import firestore

from cache.guard import FirestoreGuard

MAX_READABLE_ID_CHARS = 80


def document_id(value: str) -> str:
    """A Firestore-safe, bounded, collision-free id for any string (worker, number, record id).

    Readable characters are kept (up to 80) and a hash of the whole value is appended, so two
    values never share an id even when they only differ in characters that were replaced.
    """
    readable = re.sub(r"[^A-Za-z0-9@+_.:-]", "_", value)[:MAX_READABLE_ID_CHARS].strip(".")
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
    return f"{readable}~{digest}"


def worker_key(identity: str) -> str:
    """Workers are matched case-insensitively and without surrounding spaces."""
    return identity.strip().casefold()


@dataclass
class FirestoreMeter:
    """Documents this instance read and wrote (what Firestore bills), for tests and costing."""

    reads: int = 0
    writes: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def read(self, documents: int = 1) -> None:
        with self._lock:
            self.reads += max(1, documents)  # a query that finds nothing still costs one read

    def wrote(self, documents: int = 1) -> None:
        with self._lock:
            self.writes += documents


class Layout:
    """Document and collection references under one collection prefix."""

    def __init__(
        self, db: firestore.Client, prefix: str, guard: FirestoreGuard | None = None
    ) -> None:
        self.db = db
        self.prefix = prefix
        self.meter = FirestoreMeter()
        self.guard = guard or FirestoreGuard()

    def workers(self) -> firestore.CollectionReference:
        return self.db.collection(f"{self.prefix}workers")

    def worker(self, identity: str) -> firestore.DocumentReference:
        return self.workers().document(document_id(worker_key(identity)))

    def chunk(self, identity: str, chunk_id: str) -> firestore.DocumentReference:
        chunks: firestore.CollectionReference = self.worker(identity).collection("chunks")
        return chunks.document(chunk_id)

    def customers(self) -> firestore.CollectionReference:
        return self.db.collection(f"{self.prefix}customers")

    def customer(self, customer_id: str) -> firestore.DocumentReference:
        return self.customers().document(document_id(customer_id))

    def record(self, record_id: str) -> firestore.DocumentReference:
        return self.db.collection(f"{self.prefix}records").document(document_id(record_id))

    def number(self, e164: str) -> firestore.DocumentReference:
        return self.db.collection(f"{self.prefix}numbers").document(document_id(e164))

    def state(self, name: str) -> firestore.DocumentReference:
        return self.db.collection(f"{self.prefix}state").document(name)

    def lease(self, name: str) -> firestore.DocumentReference:
        return self.db.collection(f"{self.prefix}leases").document(document_id(name))

    def staging_pages(self, run_id: str) -> firestore.CollectionReference:
        run: firestore.DocumentReference = self.db.collection(f"{self.prefix}staging").document(
            run_id
        )
        pages: firestore.CollectionReference = run.collection("pages")
        return pages
