"""Leases in Firestore: at most one instance pulls a given thing from Airtable at a time.

A lease expires by itself, so a holder that crashed blocks the others only until then. Taking
one is a read and a conditional write (create if absent, or update only if unchanged since the
read), so two instances can never both win, and every call stays within the request's budget.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from cache.guard import LOST_RACE, call_options, firestore_errors
from cache.layout import Layout
from service.clock import Clock


class Leases:
    """Acquire, renew and release named leases on behalf of this instance."""

    def __init__(self, layout: Layout, clock: Clock, holder: str | None = None) -> None:
        self._layout = layout
        self._clock = clock
        self.holder = holder or secrets.token_hex(8)

    def acquire(self, name: str, seconds: float) -> bool:
        """Take the lease if it is free, expired or already ours; False if someone else holds it."""
        reference = self._layout.lease(name)
        now = self._clock.now()
        data = {"name": name, "holder": self.holder, "expires_at": now + timedelta(seconds=seconds)}
        with firestore_errors("take a lease"):
            snapshot = reference.get(**call_options())
            try:
                if not snapshot.exists:
                    reference.create(data, **call_options())
                    return True
                current = snapshot.to_dict() or {}
                if current.get("holder") != self.holder and current["expires_at"] > now:
                    return False
                option = self._layout.db.write_option(last_update_time=snapshot.update_time)
                reference.update(data, option=option, **call_options())
                return True
            except LOST_RACE:
                return False

    def renew(self, name: str, seconds: float) -> bool:
        """Extend a lease we hold (False if it was lost to another instance after expiring)."""
        return self.acquire(name, seconds)

    def release(self, name: str) -> None:
        """Give the lease back if we still hold it."""
        reference = self._layout.lease(name)
        with firestore_errors("release a lease"):
            snapshot = reference.get(**call_options())
            if not snapshot.exists or (snapshot.to_dict() or {}).get("holder") != self.holder:
                return
            option = self._layout.db.write_option(last_update_time=snapshot.update_time)
            try:
                reference.delete(option=option, **call_options())
            except LOST_RACE:
                return
