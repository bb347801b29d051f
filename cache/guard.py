"""Bounded Firestore calls: every call gets the request's remaining time, failures become 503s."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.api_core import retry as google_retry

from service.deadline import current_deadline
from service.errors import DependencyUnavailable

MAX_CALL_SECONDS = 10.0


# What a conditional write raises when another instance wrote first.
LOST_RACE = (
    google_exceptions.AlreadyExists,
    google_exceptions.Conflict,
    google_exceptions.FailedPrecondition,
)


class CacheUnavailable(DependencyUnavailable):
    """Firestore did not answer in time or refused the call."""


def call_options(max_seconds: float = MAX_CALL_SECONDS) -> dict[str, Any]:
    """`retry` and `timeout` for one Firestore call, bounded by the request's deadline."""
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
def firestore_errors(action: str) -> Iterator[None]:
    """Raise CacheUnavailable (503) for any Firestore failure while doing `action`."""
    try:
        yield
    except google_exceptions.GoogleAPIError as error:
        raise CacheUnavailable(
            f"the contact cache (Firestore) failed to {action}: {type(error).__name__}",
            retry_after=5,
        ) from error
