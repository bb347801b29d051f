"""Airtable's per-base rate limit: a sliding one-second window, then a penalty period."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """More than ``limit`` requests to a base within any second → 429s for ``penalty`` seconds."""

    def __init__(
        self,
        limit: float | None,
        penalty_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.penalty_seconds = penalty_seconds
        self._monotonic = monotonic
        self._arrivals: dict[str, deque[float]] = {}
        self._penalty_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def allow(self, base_id: str) -> bool:
        """Record a request to ``base_id``; False when it must be answered with a 429."""
        if self.limit is None:
            return True
        now = self._monotonic()
        with self._lock:
            until = self._penalty_until.get(base_id)
            if until is not None:
                if now < until:
                    return False
                del self._penalty_until[base_id]
                self._arrivals.pop(base_id, None)
            arrivals = self._arrivals.setdefault(base_id, deque())
            while arrivals and arrivals[0] <= now - 1.0:
                arrivals.popleft()
            arrivals.append(now)
            if len(arrivals) > self.limit:
                self._penalty_until[base_id] = now + self.penalty_seconds
                return False
            return True

    def penalized(self, base_id: str) -> bool:
        """Whether ``base_id`` is inside a penalty period now."""
        with self._lock:
            until = self._penalty_until.get(base_id)
            return until is not None and self._monotonic() < until

    def reset(self) -> None:
        """Forget all arrivals and penalties."""
        with self._lock:
            self._arrivals.clear()
            self._penalty_until.clear()
