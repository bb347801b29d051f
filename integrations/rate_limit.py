"""A client-side limit on requests per second, shared by every request of one instance."""

from __future__ import annotations

import contextvars
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from service.deadline import Deadline
from service.errors import DependencyUnavailable


class RateLimiter:
    """Allows at most `per_second` requests in any window of one second (plus a safety margin).

    Callers reserve the earliest free slot and sleep until it comes; a caller whose slot would
    come after its deadline gets a 503 at once instead of waiting in vain.
    """

    def __init__(
        self,
        per_second: float,
        margin_seconds: float = 0.1,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._limit = max(1, math.floor(per_second))
        self._window = self._limit / per_second + margin_seconds
        self._monotonic = monotonic
        self._sleep = sleep
        self._slots: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self, deadline: Deadline, reserve_seconds: float = 0.2) -> None:
        """Wait for a slot; raise DependencyUnavailable if under `reserve_seconds` would be left."""
        with self._lock:
            now = self._monotonic()
            while self._slots and self._slots[0] <= now - self._window:
                self._slots.popleft()
            slot = now
            if len(self._slots) >= self._limit:
                slot = max(now, self._slots[-self._limit] + self._window)
            wait = slot - now
            if not deadline.allows(wait + reserve_seconds):
                raise DependencyUnavailable(
                    "Airtable's request budget for this second is used up; try again shortly",
                    retry_after=wait + 1,
                )
            self._slots.append(slot)
        if wait > 0:
            self._sleep(wait)


_bulk: contextvars.ContextVar[bool] = contextvars.ContextVar("bulk", default=False)
_fallback: contextvars.ContextVar[bool] = contextvars.ContextVar("fallback", default=False)


@contextmanager
def bulk_work() -> Iterator[None]:
    """Mark the enclosed Airtable requests as bulk (full sync, sweep): they go at a slower pace,
    leaving part of the base's budget to callbacks on other instances."""
    token = _bulk.set(True)
    try:
        yield
    finally:
        _bulk.reset(token)


def in_bulk_work() -> bool:
    """True inside `bulk_work()`."""
    return _bulk.get()


@contextmanager
def fallback_work() -> Iterator[None]:
    """Mark the enclosed Airtable requests as answering for a failing cache: every instance
    falls back at once then, so each goes at a fraction of the base's budget."""
    token = _fallback.set(True)
    try:
        yield
    finally:
        _fallback.reset(token)


def in_fallback_work() -> bool:
    """True inside `fallback_work()`."""
    return _fallback.get()
