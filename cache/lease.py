"""Leases in Firestore: at most one puller of a given thing at a time, across all instances and
all threads of an instance.

A lease expires by itself, so a holder that crashed blocks the others only until then. Taking
one is a read and a conditional write (create if absent, or update only if unchanged since the
read), so two callers can never both win, and every call stays within the request's budget.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from cache.guard import LOST_RACE
from cache.layout import Layout
from service.clock import Clock


class Leases:
    """Acquire, renew and release named leases. Each acquisition gets its own holder token."""

    def __init__(self, layout: Layout, clock: Clock) -> None:
        self._layout = layout
        self._clock = clock

    def acquire(self, name: str, seconds: float) -> str | None:
        """Take the lease if it is free or expired: return the holder token, or None."""
        return self._take(name, seconds, secrets.token_hex(8))

    def renew(self, name: str, holder: str, seconds: float) -> bool:
        """Extend a lease we hold (False if it expired and another caller took it)."""
        return self._take(name, seconds, holder) is not None

    def release(self, name: str, holder: str) -> None:
        """Give the lease back if we still hold it."""
        reference = self._layout.lease(name)
        with self._layout.guard.calling("release a lease"):
            snapshot = reference.get(**self._layout.guard.options())
            self._layout.meter.read()
            if not snapshot.exists or (snapshot.to_dict() or {}).get("holder") != holder:
                return
            option = self._layout.db.write_option(last_update_time=snapshot.update_time)
            self._layout.meter.wrote()
            try:
                reference.delete(option=option, **self._layout.guard.options())
            except LOST_RACE:
                return

    def _take(self, name: str, seconds: float, holder: str) -> str | None:
        reference = self._layout.lease(name)
        now = self._clock.now()
        data = {"name": name, "holder": holder, "expires_at": now + timedelta(seconds=seconds)}
        with self._layout.guard.calling("take a lease"):
            snapshot = reference.get(**self._layout.guard.options())
            self._layout.meter.read()
            try:
                if not snapshot.exists:
                    self._layout.meter.wrote()
                    reference.create(data, **self._layout.guard.options())
                    return holder
                current = snapshot.to_dict() or {}
                if current.get("holder") != holder and current["expires_at"] > now:
                    return None
                option = self._layout.db.write_option(last_update_time=snapshot.update_time)
                self._layout.meter.wrote()
                reference.update(data, option=option, **self._layout.guard.options())
                return holder
            except LOST_RACE:
                return None
