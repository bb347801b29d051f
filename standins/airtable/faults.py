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
    """A fault applied to the next ``count`` requests (None: until cleared)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self._remaining: int | None = None

    def set(self, status: int | None, count: int | None, delay_seconds: float) -> None:
        """Replace the current fault."""
        with self._lock:
            self._fault = Fault(status, delay_seconds)
            self._remaining = count
            if count is not None and count <= 0:
                self._fault = None

    def clear(self) -> None:
        """Stop injecting faults."""
        with self._lock:
            self._fault, self._remaining = None, None

    def take(self) -> Fault | None:
        """The fault for the request now arriving, if any."""
        with self._lock:
            fault = self._fault
            if fault is not None and self._remaining is not None:
                self._remaining -= 1
                if self._remaining <= 0:
                    self._fault, self._remaining = None, None
            return fault
