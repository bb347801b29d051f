"""Injected failures and delays for the next requests that match a method and a path pattern."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import TypeVar

from standins.twilio.errors import TwilioApiError, default_code, default_message


@dataclass
class _Rule:
    method: str | None
    path: re.Pattern[str]
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and bool(self.path.search(path))


@dataclass
class _Failure(_Rule):
    error: TwilioApiError


@dataclass
class _Delay(_Rule):
    seconds: float


_R = TypeVar("_R", bound=_Rule)


class FaultPlan:
    """Queued faults; each rule applies to its next `count` matching requests, then expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._delays: list[_Delay] = []

    def fail_next(
        self,
        method: str | None,
        path: str,
        status: int,
        count: int = 1,
        code: int | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next `count` matching requests with a Twilio error."""
        error = TwilioApiError(
            status,
            code if code is not None else default_code(status),
            message if message is not None else default_message(status),
        )
        rule = _Failure(_method(method), re.compile(path), count, error)
        with self._lock:
            self._failures.append(rule)

    def delay_next(self, method: str | None, path: str, seconds: float, count: int = 1) -> None:
        """Hold the next `count` matching requests for `seconds` before answering them."""
        rule = _Delay(_method(method), re.compile(path), count, seconds)
        with self._lock:
            self._delays.append(rule)

    def take_delay(self, method: str, path: str) -> float:
        """Seconds to hold this request (0 when no rule matches); uses up one match."""
        with self._lock:
            rule = _take(self._delays, method, path)
        return rule.seconds if rule else 0.0

    def take_failure(self, method: str, path: str) -> TwilioApiError | None:
        """The error to answer this request with, if a rule matches; uses up one match."""
        with self._lock:
            rule = _take(self._failures, method, path)
        return rule.error if rule else None

    def clear(self) -> None:
        """Drop every pending rule."""
        with self._lock:
            self._failures.clear()
            self._delays.clear()


def _method(method: str | None) -> str | None:
    return None if method in (None, "*") else str(method).upper()


def _take(rules: list[_R], method: str, path: str) -> _R | None:
    for rule in rules:
        if rule.matches(method, path):
            rule.remaining -= 1
            if rule.remaining <= 0:
                rules.remove(rule)
            return rule
    return None
