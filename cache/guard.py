"""Bounded, fail-fast Firestore calls: every call gets at most the request's remaining time, and
after Firestore fails to answer, the instance stops waiting on it for a few seconds so callbacks
fall back to Airtable at once instead of each spending its budget on timeouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.api_core import retry as google_retry

from service.deadline import current_deadline
from service.errors import DependencyUnavailable

# A read normally takes milliseconds; waiting longer only eats the callback's budget. An
# instance's first call also sets up the connection, so it may take longer.
MAX_READ_SECONDS = 2.0
FIRST_CALL_SECONDS = 8.0
BREAKER_OPEN_SECONDS = 5.0
# What a conditional write raises when another instance wrote first.
LOST_RACE = (
    google_exceptions.AlreadyExists,
    google_exceptions.Conflict,
    google_exceptions.FailedPrecondition,
)
_UNREACHABLE = (
    google_exceptions.ServiceUnavailable,
    google_exceptions.DeadlineExceeded,
    google_exceptions.RetryError,
)


class CacheUnavailable(DependencyUnavailable):
    """Firestore did not answer in time or refused the call."""


class FirestoreGuard:
    """Per instance: call options bounded by the deadline, and a breaker for outages."""

    def __init__(
        self,
        open_seconds: float = BREAKER_OPEN_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open_seconds = open_seconds
        self._monotonic = monotonic
        self._open_until = 0.0
        self._connected = False
        self._lock = threading.Lock()

    def options(self, max_seconds: float = MAX_READ_SECONDS) -> dict[str, Any]:
        """`retry` and `timeout` for one call, bounded by the request's deadline."""
        if not self._connected:
            max_seconds = max(max_seconds, FIRST_CALL_SECONDS)
        budget = max(0.2, min(max_seconds, current_deadline().remaining()))
        retry = google_retry.Retry(
            predicate=google_retry.if_exception_type(
                google_exceptions.ServiceUnavailable,
                google_exceptions.DeadlineExceeded,
                google_exceptions.InternalServerError,
                google_exceptions.Aborted,
            ),
            initial=0.1,
            maximum=1.0,
            multiplier=2.0,
            timeout=budget,
        )
        return {"retry": retry, "timeout": budget}

    @contextmanager
    def calling(self, action: str) -> Iterator[None]:
        """Raise CacheUnavailable (503) for any Firestore failure while doing `action`."""
        with self._lock:
            if self._monotonic() < self._open_until:
                raise CacheUnavailable(
                    f"the contact cache (Firestore) is not answering; could not {action}",
                    retry_after=self._open_seconds,
                )
        try:
            yield
            self._connected = True
        except google_exceptions.GoogleAPIError as error:
            if isinstance(error, _UNREACHABLE):
                with self._lock:
                    self._open_until = self._monotonic() + self._open_seconds
            raise CacheUnavailable(
                f"the contact cache (Firestore) failed to {action}: {type(error).__name__}",
                retry_after=5,
            ) from error
