"""A client-side limit on requests per second, shared by every request of one instance."""

from __future__ import annotations

import contextvars
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum

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


class Pace(Enum):
    """What kind of work an Airtable request is for; the kinds other than CALLBACK go slower."""

    CALLBACK = "callback"
    # Full sync and sweep: they leave part of the base's budget to callbacks elsewhere.
    BULK = "bulk"
    # Answering while the cache fails: every instance does it at once then.
    FALLBACK = "fallback"


_pace: contextvars.ContextVar[Pace] = contextvars.ContextVar("pace", default=Pace.CALLBACK)


@contextmanager
def paced(pace: Pace) -> Iterator[None]:
    """Run the enclosed Airtable requests at `pace`."""
    token = _pace.set(pace)
    try:
        yield
    finally:
        _pace.reset(token)


def current_pace() -> Pace:
    """The pace of the work being done now."""
    return _pace.get()
