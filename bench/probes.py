"""Visibility probes: make one change in Airtable's UI, then poll the contender until every
instance's answers show it (lists and details), and report how long that took."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.airtable_admin import AirtableAdmin
from bench.client import Contender, crm_details, crm_list
from bench.workload import Change

SEARCH_PAGE = 200


@dataclass(frozen=True)
class Visibility:
    """How long one change took to show on every instance (None: not within the timeout)."""

    kind: str
    record_id: str
    changed_at: float
    seconds: float | None
    primed: bool


class Probe:
    """Runs one change and watches for it, in its own thread."""

    def __init__(
        self,
        contender: Contender,
        admin: AirtableAdmin,
        change: Change,
        timeout: float,
        poll_every: float,
    ) -> None:
        self.contender = contender
        self.admin = admin
        self.change = change
        self.timeout = timeout
        self.poll_every = poll_every
        self.result: Visibility | None = None
        self.thread = threading.Thread(target=self._run, name=f"probe-{change.kind}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self) -> Visibility:
        self.thread.join()
        assert self.result is not None
        return self.result

    def _run(self) -> None:
        delay = self.change.at - self.contender.recorder.now()
        if delay > 0:
            time.sleep(delay)
        primed = all(self._before(url) for url in self.contender.urls)
        self._apply()
        changed_at = self.contender.recorder.now()
        started = time.monotonic()
        seconds: float | None = None
        urls = self.contender.urls
        turn = 0
        while time.monotonic() - started < self.timeout:
            poll_started = time.monotonic()
            url = urls[turn % len(urls)]
            turn += 1
            if self._after(url):
                seen = time.monotonic() - started
                if all(self._after(other) for other in urls if other != url):
                    seconds = seen
                    break
            time.sleep(max(0.0, self.poll_every - (time.monotonic() - poll_started)))
        self.result = Visibility(
            self.change.kind, self.change.contact.record_id, changed_at, seconds, primed
        )

    def _apply(self) -> None:
        change, contact = self.change, self.change.contact
        if change.kind == "edit":
            self.admin.update(contact.record_id, {"name": change.new_name})
        elif change.kind == "reassign":
            self.admin.update(contact.record_id, {"owner": change.new_owner})
        else:
            self.admin.delete(contact.record_id)

    def _listed_ids(self, worker: str, query: str, url: str) -> set[str] | None:
        """The customer ids of the worker's search result, or None when the call failed."""
        status, customers, _ = crm_list(
            self.contender,
            worker,
            "probe_list",
            page_size=SEARCH_PAGE,
            query=query,
            probe=True,
            url=url,
        )
        return {str(c.get("customer_id")) for c in customers} if status == 200 else None

    def _listed(self, worker: str, query: str, url: str) -> bool:
        ids = self._listed_ids(worker, query, url)
        return ids is not None and self.change.contact.customer_id in ids

    def _unlisted(self, worker: str, query: str, url: str) -> bool:
        ids = self._listed_ids(worker, query, url)
        return ids is not None and self.change.contact.customer_id not in ids

    def _named(self, name: str, url: str) -> bool:
        status, customer = crm_details(
            self.contender, self.change.contact.customer_id, "probe_details", probe=True, url=url
        )
        return status == 200 and customer is not None and customer.get("display_name") == name

    def _gone(self, url: str) -> bool:
        status, _ = crm_details(
            self.contender, self.change.contact.customer_id, "probe_details", probe=True, url=url
        )
        return status == 404

    def _before(self, url: str) -> bool:
        """The state before the change, as this instance shows it (also warms its cache)."""
        change, contact = self.change, self.change.contact
        checks: list[Callable[[], bool]] = [lambda: self._listed(contact.owner, contact.name, url)]
        if change.kind == "edit":
            checks.append(lambda: self._named(contact.name, url))
        if change.kind == "reassign" and change.new_owner:
            new_owner = change.new_owner
            checks.append(lambda: self._unlisted(new_owner, contact.name, url))
        results = [check() for check in checks]  # every check runs: each warms a cache
        return all(results)

    def _after(self, url: str) -> bool:
        """Whether this instance's answers show the change."""
        change, contact = self.change, self.change.contact
        if change.kind == "edit":
            new_name = change.new_name or ""
            return self._listed(contact.owner, new_name, url) and self._named(new_name, url)
        if change.kind == "reassign":
            new_owner = change.new_owner or ""
            return self._listed(new_owner, contact.name, url) and self._unlisted(
                contact.owner, contact.name, url
            )
        return self._unlisted(contact.owner, contact.name, url) and self._gone(url)
