"""Counts of the API requests the stand-in answered, by kind, base, table, status and second."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

KINDS = ("list", "get", "create", "update", "delete", "webhook", "other")


class Stats:
    """Thread-safe request counters. Only ``/v0`` API requests are recorded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str, str]] = Counter()
        self._statuses: Counter[int] = Counter()
        self._seconds: Counter[int] = Counter()
        self._response_bytes = 0

    def record(self, kind: str, base: str, table: str) -> None:
        """Count one request as it arrives."""
        with self._lock:
            self._requests[(kind, base, table)] += 1
            self._seconds[int(time.time())] += 1

    def record_status(self, status: int) -> None:
        """Count the status of one answer."""
        with self._lock:
            self._statuses[status] += 1

    def record_response_bytes(self, size: int) -> None:
        """Count the body bytes of one ``/v0`` answer."""
        with self._lock:
            self._response_bytes += size

    @property
    def response_bytes(self) -> int:
        """Body bytes of every ``/v0`` answer so far (what a client had to download)."""
        with self._lock:
            return self._response_bytes

    def count(
        self, kind: str | None = None, base: str | None = None, table: str | None = None
    ) -> int:
        """Requests matching every given filter (kind: list, get, create, update, delete,
        webhook, other)."""
        with self._lock:
            return sum(
                n
                for (k, b, t), n in self._requests.items()
                if (kind is None or k == kind)
                and (base is None or b == base)
                and (table is None or t == table)
            )

    @property
    def http_429(self) -> int:
        """How many answers were 429."""
        with self._lock:
            return self._statuses[429]

    def statuses(self) -> dict[int, int]:
        """Answers by HTTP status."""
        with self._lock:
            return dict(self._statuses)

    def per_second(self) -> dict[int, int]:
        """API requests by Unix second of arrival."""
        with self._lock:
            return dict(sorted(self._seconds.items()))

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._requests.clear()
            self._statuses.clear()
            self._seconds.clear()
            self._response_bytes = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for ``GET /_standin/stats``)."""
        with self._lock:
            by_kind: Counter[str] = Counter()
            by_table: Counter[str] = Counter()
            for (kind, base, table), n in self._requests.items():
                by_kind[kind] += n
                by_table[f"{base}/{table}"] += n
            return {
                "total": sum(self._requests.values()),
                "by_kind": {kind: by_kind[kind] for kind in KINDS},
                "by_table": dict(by_table),
                "http_429": self._statuses[429],
                "statuses": {str(s): n for s, n in sorted(self._statuses.items())},
                "per_second": {str(s): n for s, n in sorted(self._seconds.items())},
            }
