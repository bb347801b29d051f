"""Per-request time budgets: every dependency call checks how much time its request has left."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# Twilio abandons Conversations webhooks at 5 s; the Frontline callbacks get 8 s (see the contract).
WEBHOOK_BUDGET_SECONDS = 4.0
CALLBACK_BUDGET_SECONDS = 8.0
# Without a request (scripts, background work) a call still gets a bound.
DEFAULT_BUDGET_SECONDS = 30.0


@dataclass(frozen=True)
class Deadline:
    """A point in monotonic time by which the current request must have answered."""

    expires_at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """A deadline `seconds` from now."""
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - time.monotonic())

    def allows(self, seconds: float) -> bool:
        """True when `seconds` more work still fits in the budget."""
        return self.remaining() >= seconds


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("deadline", default=None)


def current_deadline() -> Deadline:
    """The deadline of the request being served, or a default one outside requests."""
    deadline = _current.get()
    return deadline if deadline is not None else Deadline.after(DEFAULT_BUDGET_SECONDS)


@contextmanager
def deadline_scope(seconds: float) -> Iterator[Deadline]:
    """Run the enclosed code with a budget of `seconds` (never longer than an enclosing one)."""
    deadline = Deadline.after(seconds)
    outer = _current.get()
    if outer is not None and outer.expires_at < deadline.expires_at:
        deadline = outer
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)
