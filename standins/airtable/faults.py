"""Injected faults: error statuses and delays for the next API requests."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    """Sleep ``delay_seconds``, then answer ``status`` (None: answer normally)."""

    status: int | None
    delay_seconds: float


class Faults:
    """A fault applied to the next ``count`` requests (None: until cleared), after letting
    ``after`` requests through untouched (to cut a multi-request operation midway)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self._remaining: int | None = None
        self._spared = 0

    def set(
        self, status: int | None, count: int | None, delay_seconds: float, after: int = 0
    ) -> None:
        """Replace the current fault."""
        with self._lock:
            self._fault = Fault(status, delay_seconds)
            self._remaining = count
            self._spared = after
            if count is not None and count <= 0:
                self._fault = None

    def clear(self) -> None:
        """Stop injecting faults."""
        with self._lock:
            self._fault, self._remaining, self._spared = None, None, 0

    def take(self) -> Fault | None:
        """The fault for the request now arriving, if any."""
        with self._lock:
            fault = self._fault
            if fault is not None and self._spared > 0:
                self._spared -= 1
                return None
            if fault is not None and self._remaining is not None:
                self._remaining -= 1
                if self._remaining <= 0:
                    self._fault, self._remaining = None, None
            return fault
