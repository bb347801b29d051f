"""Calling a contender's callbacks as Twilio would (signed), round-robin over its instances, and
recording how long each took."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from bench import config
from tools.call import post_signed

TIMED_OUT = 0  # status recorded when the client gave up


@dataclass(frozen=True)
class Call:
    """One callback: which operation, when (seconds into the run), how long, and its status."""

    op: str
    at: float
    seconds: float
    status: int
    probe: bool


class Recorder:
    """Every call of one contender's run (thread-safe)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started


class Contender:
    """One contender's instances, seen from Twilio."""

    def __init__(self, name: str, urls: list[str], timeout: float, recorder: Recorder) -> None:
        self.name = name
        self.urls = urls
        self.timeout = timeout
        self.recorder = recorder
        self._next = itertools.count()
        self._lock = threading.Lock()

    def pick(self) -> str:
        """The next instance, round-robin."""
        with self._lock:
            return self.urls[next(self._next) % len(self.urls)]

    def call(
        self,
        path: str,
        params: Mapping[str, str],
        op: str,
        *,
        probe: bool = False,
        url: str | None = None,
    ) -> tuple[int, Any]:
        """POST a signed callback; returns its status (0 when timed out) and JSON body."""
        base = url or self.pick()
        at = self.recorder.now()
        started = time.monotonic()
        status, body = TIMED_OUT, None
        try:
            response = post_signed(f"{base}{path}", params, config.AUTH_TOKEN, self.timeout)
            status = response.status_code
            try:
                body = response.json()
            except ValueError:
                body = None
        except requests.Timeout:
            pass
        except requests.ConnectionError:
            status = -1
        seconds = time.monotonic() - started
        self.recorder.add(Call(op, at, seconds, status, probe))
        return status, body


def crm_list(
    contender: Contender,
    worker: str,
    op: str,
    *,
    page_size: int = 30,
    query: str | None = None,
    token: str | None = None,
    anchor: str | None = None,
    probe: bool = False,
    url: str | None = None,
) -> tuple[int, list[dict[str, Any]], str | None]:
    """GetCustomersList: status, customers, next page token."""
    params = {"Location": "GetCustomersList", "Worker": worker, "PageSize": str(page_size)}
    if query:
        params["Query"] = query
    if token:
        params["NextPageToken"] = token
    elif anchor:
        params["Anchor"] = anchor
    status, body = contender.call("/callbacks/crm", params, op, probe=probe, url=url)
    objects = (body or {}).get("objects") if isinstance(body, dict) else None
    if status != 200 or not isinstance(objects, dict):
        return status, [], None
    return status, list(objects.get("customers") or []), objects.get("next_page_token")


def crm_details(
    contender: Contender, customer_id: str, op: str, *, probe: bool = False, url: str | None = None
) -> tuple[int, dict[str, Any] | None]:
    """GetCustomerDetailsByCustomerId: status and the customer object."""
    params = {"Location": "GetCustomerDetailsByCustomerId", "CustomerId": customer_id}
    status, body = contender.call("/callbacks/crm", params, op, probe=probe, url=url)
    objects = (body or {}).get("objects") if isinstance(body, dict) else None
    customer = objects.get("customer") if isinstance(objects, dict) else None
    return status, customer if isinstance(customer, dict) else None
