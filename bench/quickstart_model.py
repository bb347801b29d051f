"""A model of Twilio's Node quickstart (Airtable + Twilio Serverless), one instance of it.

Each instance keeps per-worker lists in memory. A worker's list is filled by pulling every page
of `{owner} = '<worker>'` (sorted by name) on a cold start or when it is 5 minutes old; in
between, each list request appends only records *created* since the last pull, so edits,
reassignments and deletions do not show. Details, templates, routing and the conversation webhook
make one filtered Airtable request each. pyairtable's default retry on 429 applies. A callback
stops (as the function would be killed) once it is over the serverless time limit.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from pyairtable import Api
from pyairtable.formulas import quoted

from bench import config

PAGE_SIZE = 100


class Expired(Exception):
    """The function ran past the serverless time limit (it would have been killed)."""


class NotFound(Exception):
    """No such customer."""


@dataclass(frozen=True)
class Deadline:
    """When the current callback's function is killed."""

    expires_at: float

    @classmethod
    def start(cls, seconds: float = config.SERVERLESS_LIMIT_SECONDS) -> Deadline:
        return cls(time.monotonic() + seconds)

    def check(self) -> None:
        if time.monotonic() >= self.expires_at:
            raise Expired


@dataclass(frozen=True)
class WorkerList:
    """One worker's customers as this instance remembers them."""

    customers: list[dict[str, Any]]
    pulled_at: float  # monotonic time of the last full pull
    last_fetch: str  # ISO time of the last pull (full or new-records-only)


def _customer(record: Mapping[str, Any]) -> dict[str, Any]:
    fields = record.get("fields") or {}
    return {
        "customer_id": str(fields.get("id") or record["id"]),
        "display_name": str(fields.get("name") or ""),
        "worker": str(fields.get("owner") or ""),
        "sms": str(fields.get("sms") or ""),
        "whatsapp": str(fields.get("whatsapp") or ""),
        "email": str(fields.get("email") or ""),
        "notes": str(fields.get("notes") or ""),
    }


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class QuickstartInstance:
    """The five operations of one serverless instance, with its own memory."""

    def __init__(
        self,
        api_key: str,
        base_id: str,
        endpoint_url: str,
        twilio_url: str,
        default_worker: str,
        ttl_seconds: float = config.QUICKSTART_TTL_SECONDS,
    ) -> None:
        api = Api(api_key, endpoint_url=endpoint_url)  # the default retry strategy (429)
        self._customers = api.table(base_id, "Customers")
        self._templates = api.table(base_id, "Templates")
        self._twilio = twilio_url.rstrip("/") + "/v1/Conversations"
        self._default_worker = default_worker
        self._ttl = ttl_seconds
        self._lists: dict[str, WorkerList] = {}
        self._lock = threading.Lock()

    # GetCustomersList

    def customers_list(
        self, worker: str, page_size: int, anchor: str | None, query: str | None, deadline: Deadline
    ) -> dict[str, Any]:
        """A page of the worker's list from memory, after a full or new-records-only pull."""
        owner = f"{{owner}} = {quoted(worker)}"
        with self._lock:
            known = self._lists.get(worker)
        if known is None or time.monotonic() - known.pulled_at >= self._ttl:
            pulled = self._pull(owner, deadline, sort=["name"])
            known = WorkerList(pulled, time.monotonic(), _iso_now())
        else:
            since = f"IS_AFTER(CREATED_TIME(), DATETIME_PARSE({quoted(known.last_fetch)}))"
            new = self._pull(f"AND({owner}, {since})", deadline)
            known = WorkerList(known.customers + new, known.pulled_at, _iso_now())
        with self._lock:
            self._lists[worker] = known
        items = known.customers
        if query:
            needle = query.casefold()
            items = [c for c in items if needle in c["display_name"].casefold()]
        start = 0
        if anchor:
            ids = [c["customer_id"] for c in items]
            start = ids.index(anchor) + 1 if anchor in ids else 0
        page = [
            {"customer_id": c["customer_id"], "display_name": c["display_name"]}
            for c in items[start : start + page_size]
        ]
        return {"objects": {"customers": page}}

    def _pull(
        self, formula: str, deadline: Deadline, sort: list[str] | None = None
    ) -> list[dict[str, Any]]:
        customers: list[dict[str, Any]] = []
        options: dict[str, Any] = {"formula": formula, "page_size": PAGE_SIZE}
        if sort:
            options["sort"] = sort
        for page in self._customers.iterate(**options):
            deadline.check()
            customers.extend(_customer(record) for record in page)
        deadline.check()
        return customers

    # The other four operations: one Airtable request each

    def customer_details(self, customer_id: str, deadline: Deadline) -> dict[str, Any]:
        """The customer with this id, straight from Airtable."""
        record = self._customers.first(formula=f"{{id}} = {quoted(customer_id)}")
        deadline.check()
        if record is None:
            raise NotFound(customer_id)
        customer = _customer(record)
        channels = [{"type": t, "value": customer[t]} for t in ("sms", "whatsapp") if customer[t]]
        body = {
            "customer_id": customer["customer_id"],
            "display_name": customer["display_name"],
            "channels": channels,
            "links": [{"type": "Email", "value": f"mailto:{customer['email']}"}],
            "details": {"title": "Information", "content": customer["notes"]},
            "worker": customer["worker"],
        }
        return {"objects": {"customer": body}}

    def templates(self, deadline: Deadline) -> list[dict[str, Any]]:
        """The Templates table, by category."""
        records = self._templates.all()
        deadline.check()
        categories: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            fields = record.get("fields") or {}
            categories.setdefault(str(fields.get("category") or "Templates"), []).append(
                {
                    "content": fields.get("text", ""),
                    "whatsAppApproved": bool(fields.get("whatsAppApproved")),
                }
            )
        return [{"display_name": k, "templates": v} for k, v in categories.items()]

    def _by_address(self, address: str, deadline: Deadline) -> dict[str, Any] | None:
        value = quoted(address)
        record = self._customers.first(formula=f"OR({{sms}} = {value}, {{whatsapp}} = {value})")
        deadline.check()
        return _customer(record) if record else None

    def conversation_add(self, address: str, deadline: Deadline) -> dict[str, Any]:
        """Name the new conversation after the customer at `address`."""
        customer = self._by_address(address, deadline)
        return {"friendly_name": customer["display_name"] if customer else address}

    def participant_added(
        self, conversation_sid: str, participant_sid: str, address: str, deadline: Deadline
    ) -> dict[str, Any]:
        """Merge the customer's id and name into the participant's attributes."""
        customer = self._by_address(address, deadline)
        if customer is None:
            return {}
        url = f"{self._twilio}/{conversation_sid}/Participants/{participant_sid}"
        auth = (config.ACCOUNT_SID, config.AUTH_TOKEN)
        remaining = max(0.1, deadline.expires_at - time.monotonic())
        fetched = requests.get(url, auth=auth, timeout=remaining)
        fetched.raise_for_status()
        attributes = json.loads(fetched.json().get("attributes") or "{}")
        attributes.update(
            customer_id=customer["customer_id"], display_name=customer["display_name"]
        )
        remaining = max(0.1, deadline.expires_at - time.monotonic())
        updated = requests.post(
            url, data={"Attributes": json.dumps(attributes)}, auth=auth, timeout=remaining
        )
        updated.raise_for_status()
        deadline.check()
        return {}

    def routing(self, conversation_sid: str, address: str, deadline: Deadline) -> dict[str, Any]:
        """Add the owner of `address` (or some known worker) to the conversation."""
        customer = self._by_address(address, deadline)
        worker = customer["worker"] if customer else self._some_worker(address)
        remaining = max(0.1, deadline.expires_at - time.monotonic())
        response = requests.post(
            f"{self._twilio}/{conversation_sid}/Participants",
            data={"Identity": worker},
            auth=(config.ACCOUNT_SID, config.AUTH_TOKEN),
            timeout=remaining,
        )
        response.raise_for_status()
        deadline.check()
        return {}

    def _some_worker(self, address: str) -> str:
        with self._lock:
            workers = sorted(self._lists)
        if not workers:
            return self._default_worker
        digest = hashlib.sha256(address.encode()).digest()
        return workers[int.from_bytes(digest[:8], "big") % len(workers)]
