"""Airtable, the contact source: the only module that knows its columns, formulas and errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import phonenumbers
import requests
from pyairtable import Api, Table
from pyairtable import formulas as f
from pyairtable.api.retrying import Retry
from pyairtable.api.retrying import retry_strategy as airtable_retry_strategy
from requests.adapters import HTTPAdapter

from contacts.model import Customer, NewCustomer, Template, whatsapp_address
from contacts.phones import normalise_or_keep, to_e164
from contacts.source import Deletions, FeedGone, OffsetExpired, SourcePage
from integrations.rate_limit import Pace, RateLimiter, current_pace
from service.deadline import current_deadline
from service.errors import DependencyFailed, DependencyUnavailable
from service.logs import log_fields
from service.settings import Settings

_log = logging.getLogger(__name__)

PAGE_SIZE = 100  # Airtable's maximum
# Caps that keep one customer's Firestore document near 120 KiB whatever a cell holds.
MAX_NOTES_CHARS = 20_000
MAX_COLUMN_CHARS = 1_000
MAX_NAME_CHARS = 300
MAX_ADDRESS_CHARS = 2_000
# Seconds a single attempt needs at least; below that a request is not started.
MIN_ATTEMPT_SECONDS = 0.3
_RECORD_ID_LENGTH = 17
# Bulk work (full sync, deletion sweep) uses at most this share of the base's request budget,
# leaving room for a refresh (two requests) and callbacks on other instances in the same second.
BULK_SHARE = 0.6
# When Firestore fails every instance answers from Airtable at once; each keeps to this pace.
FALLBACK_PER_SECOND = 1.0


class AirtableTransport(HTTPAdapter):
    """Every Airtable HTTP request passes here: rate limited, timed by the request's deadline,
    and retried on 429/5xx with pyairtable's retry strategy only while the budget allows."""

    def __init__(
        self, limiter: RateLimiter, slower: Mapping[Pace, RateLimiter], retry: Retry
    ) -> None:
        super().__init__(pool_maxsize=16)
        self._limiter = limiter
        self._slower = slower
        self._retry = retry
        self.requests_sent = 0

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        deadline = current_deadline()
        attempt = 0
        while True:
            slower = self._slower.get(current_pace())
            if slower is not None:
                slower.acquire(deadline, reserve_seconds=MIN_ATTEMPT_SECONDS)
            self._limiter.acquire(deadline, reserve_seconds=MIN_ATTEMPT_SECONDS)
            remaining = deadline.remaining()
            kwargs["timeout"] = (min(3.05, remaining), remaining)
            self.requests_sent += 1
            response = super().send(request, *args, **kwargs)
            retriable = response.status_code in (self._retry.status_forcelist or ())
            if not retriable or attempt >= (self._retry.total or 0):
                return response
            backoff = _retry_after(response) or self._retry.backoff_factor * (2**attempt)
            if not deadline.allows(backoff + MIN_ATTEMPT_SECONDS):
                return response
            response.close()
            time.sleep(backoff)
            attempt += 1


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


class AirtableSource:
    """Customers and templates in one Airtable base, through pyairtable."""

    def __init__(self, settings: Settings, api_key: str, limiter: RateLimiter) -> None:
        self._columns = dict(settings.customer_fields)
        self._template_columns = dict(settings.template_fields)
        self._region = settings.default_phone_region
        self._transport = AirtableTransport(
            limiter,
            {
                Pace.BULK: RateLimiter(settings.airtable_requests_per_second * BULK_SHARE),
                Pace.FALLBACK: RateLimiter(FALLBACK_PER_SECOND),
            },
            airtable_retry_strategy(status_forcelist=(429, 500, 502, 503, 504)),
        )
        api = Api(api_key, retry_strategy=None, endpoint_url=settings.airtable_endpoint_url)
        api.session.mount("http://", self._transport)
        api.session.mount("https://", self._transport)
        self._base = api.base(settings.airtable_base_id)
        self._customers: Table = api.table(
            settings.airtable_base_id, settings.airtable_customers_table
        )
        self._templates: Table = api.table(
            settings.airtable_base_id, settings.airtable_templates_table
        )

    @property
    def requests_sent(self) -> int:
        """How many HTTP requests this instance sent to Airtable (retries included)."""
        return self._transport.requests_sent

    # Reading customers

    def customers_page(self, offset: str | None) -> SourcePage:
        """One page of every customer, in table order."""
        options: dict[str, Any] = {"page_size": PAGE_SIZE}
        if offset:
            options["offset"] = offset
        with _calling("list customers", offset_may_expire=bool(offset)):
            response = self._customers.api.request(
                "get",
                self._customers.urls.records,
                fallback=("post", self._customers.urls.records_post),
                options=options,
            )
        customers = [self._customer(record) for record in response.get("records", [])]
        return SourcePage(customers, response.get("offset") or None)

    def customers_changed_since(
        self, since: datetime, max_pages: int
    ) -> tuple[list[Customer], bool]:
        """Customers whose LAST_MODIFIED_TIME() is after `since`, de-duplicated by record id."""
        formula = f.IS_AFTER(f.LAST_MODIFIED_TIME(), since)
        return self._list(formula=formula, max_pages=max_pages)

    def record_ids(self) -> set[str]:
        """Every record id, asking only for the owner column (ids cost nothing more)."""
        ids: set[str] = set()
        with _calling("list record ids"):
            for page in self._customers.iterate(
                page_size=PAGE_SIZE, fields=[self._columns["owner"]]
            ):
                ids.update(record["id"] for record in page)
        return ids

    # Deletions, through a webhook whose payloads are polled (no notification URL needed)

    def open_deletion_feed(self) -> str | None:
        """Create a webhook on the base's table data; None when the token lacks webhook:manage."""
        body = {
            "notificationUrl": None,
            "specification": {"options": {"filters": {"dataTypes": ["tableData"]}}},
        }
        try:
            with _calling("create a webhook"):
                created = self._base.api.request("post", self._base.urls.webhooks, json=body)
        except DependencyFailed as error:
            log_fields(
                _log,
                logging.WARNING,
                "no webhook: deletions are found by sweeps only",
                error=error.message,
            )
            return None
        return str(created["id"])

    def keep_deletion_feed(self, feed_id: str) -> None:
        """Extend the webhook's expiry by another 7 days."""
        with _calling("refresh the webhook", gone_raises=True):
            self._base.api.request("post", self._base.urls.webhooks / feed_id / "refresh")

    def deletions_since(self, feed_id: str, cursor: int) -> Deletions:
        """Record ids destroyed in any table since `cursor` (ids of other tables are harmless)."""
        deleted: set[str] = set()
        url = self._base.urls.webhooks / feed_id / "payloads"
        with _calling("read webhook payloads", gone_raises=True):
            while True:
                page = self._base.api.request("get", url, params={"cursor": cursor})
                for payload in page.get("payloads", []):
                    for table in (payload.get("changedTablesById") or {}).values():
                        deleted.update(table.get("destroyedRecordIds") or [])
                cursor = int(page.get("cursor", cursor))
                if not page.get("mightHaveMore"):
                    return Deletions(deleted, cursor)

    def worker_customers(self, worker: str, max_pages: int) -> tuple[list[Customer], bool]:
        """One worker's customers, sorted by name."""
        formula = f.match({self._columns["owner"]: worker})
        return self._list(formula=formula, max_pages=max_pages, sort=[self._columns["name"]])

    def customer_by_id(self, customer_id: str) -> Customer | None:
        """The customer whose id column is `customer_id`; a record id finds a record without one."""
        if _looks_like_record_id(customer_id):
            with _calling("get customer", missing_ok=True):
                record = self._customers.get(customer_id)
            if record is None:
                return None
            customer = self._customer(record)
            return customer if customer.customer_id == customer_id else None
        found, _ = self._list(formula=f.match({self._columns["id"]: customer_id}), max_pages=1)
        return min(found, key=lambda c: c.record_id) if found else None

    def customers_by_number(self, e164: str) -> list[Customer]:
        """Customers with this number in sms or whatsapp, however it was typed in the table."""
        try:
            national = str(phonenumbers.parse(e164).national_number)
        except phonenumbers.NumberParseException:
            return []
        # The formula only narrows the candidates (digits contain the national number);
        # normalising each candidate decides.
        candidates = f.OR(
            *(
                f.FIND(
                    national,
                    f.REGEX_REPLACE(f.CONCATENATE(f.Field(self._columns[c]), ""), "[^0-9]", ""),
                )
                for c in ("sms", "whatsapp")
            )
        )
        found, _ = self._list(formula=candidates, max_pages=1)
        return [c for c in found if e164 in c.numbers(self._region)]

    def search_customers(self, worker: str, query: str, limit: int) -> list[Customer]:
        """A worker's customers whose name or e-mail contains `query`, case-insensitively."""
        needle = f.LOWER(query)
        formula = f.AND(
            f.match({self._columns["owner"]: worker}),
            f.OR(
                *(
                    f.FIND(needle, f.LOWER(f.CONCATENATE(f.Field(self._columns[c]), "")))
                    for c in ("name", "email")
                )
            ),
        )
        found, _ = self._list(
            formula=formula,
            max_pages=1,
            sort=[self._columns["name"]],
            page_size=min(limit, PAGE_SIZE),
        )
        return found

    def templates(self) -> list[Template]:
        """Every template, in table order."""
        columns = self._template_columns
        with _calling("list templates"):
            records = self._templates.all()
        templates = []
        for record in records:
            fields = record.get("fields", {})
            text = _text(fields.get(columns["text"]))
            if not text:
                continue
            templates.append(
                Template(
                    category=_text(fields.get(columns["category"])) or "Templates",
                    text=text,
                    whatsapp_approved=bool(fields.get(columns["whatsapp_approved"])),
                )
            )
        return templates

    # Writing customers

    def create_customer(self, new: NewCustomer) -> Customer:
        """Create a record owned by `new.owner`."""
        columns = self._columns
        fields: dict[str, Any] = {columns["name"]: new.display_name, columns["owner"]: new.owner}
        if new.sms:
            fields[columns["sms"]] = new.sms
        if new.whatsapp:
            fields[columns["whatsapp"]] = new.whatsapp
        if new.email:
            fields[columns["email"]] = new.email
        with _calling("create customer"):
            record = self._customers.create(fields)
        return self._customer(record)

    def set_opt_out(self, record_id: str, opted_out: bool) -> Customer:
        """Set or clear the opt-out checkbox."""
        with _calling("update opt-out"):
            record = self._customers.update(record_id, {self._columns["opt_out"]: opted_out})
        return self._customer(record)

    def delete_customer(self, record_id: str) -> None:
        """Delete the record (a record already gone counts as deleted)."""
        with _calling("delete customer", missing_ok=True):
            self._customers.delete(record_id)

    # Helpers

    def _list(
        self,
        *,
        formula: Any,
        max_pages: int,
        sort: list[str] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> tuple[list[Customer], bool]:
        customers: dict[str, Customer] = {}
        complete = True
        options: dict[str, Any] = {"formula": formula, "page_size": page_size}
        if sort:
            options["sort"] = sort
        with _calling("list customers"):
            pages = self._customers.iterate(**options)
            for number, page in enumerate(pages, start=1):
                for record in page:
                    customers[record["id"]] = self._customer(record)
                if number >= max_pages:
                    complete = len(page) < page_size
                    break
        return list(customers.values()), complete

    def _customer(self, record: Mapping[str, Any]) -> Customer:
        return record_to_customer(record, self._columns, self._region)


def record_to_customer(
    record: Mapping[str, Any], columns: Mapping[str, str], region: str
) -> Customer:
    """Map an Airtable record to a Customer; missing cells are empty, odd values never raise."""
    fields: Mapping[str, Any] = record.get("fields") or {}
    record_id = str(record["id"])
    sms = _text(fields.get(columns["sms"]))
    whatsapp = _text(fields.get(columns["whatsapp"]))
    sms_value = normalise_or_keep(sms, region) if sms else None
    whatsapp_value = None
    if whatsapp:
        e164 = to_e164(whatsapp, region)
        whatsapp_value = whatsapp_address(e164) if e164 else normalise_or_keep(whatsapp, region)
    return Customer(
        customer_id=_text(fields.get(columns["id"])) or record_id,
        record_id=record_id,
        display_name=_text(fields.get(columns["name"]))[:MAX_NAME_CHARS] or "(no name)",
        owner=_identity(fields.get(columns["owner"])),
        sms=sms_value,
        whatsapp=whatsapp_value,
        email=_text(fields.get(columns["email"]))[:MAX_ADDRESS_CHARS] or None,
        linkedin=_text(fields.get(columns["linkedin"]))[:MAX_ADDRESS_CHARS] or None,
        notes=(_text(fields.get(columns["notes"]))[:MAX_NOTES_CHARS]) or None,
        avatar=_url(fields.get(columns["avatar"])),
        opt_out=bool(fields.get(columns["opt_out"])),
        columns={
            str(name): _text(value)[:MAX_COLUMN_CHARS]
            for name, value in list(fields.items())[:100]
            if _text(value)
        },
        created_at=str(record.get("createdTime") or "") or None,
    )


def _text(value: Any) -> str:
    """A cell as text: strings trimmed, numbers printed, lists joined, objects by name or email."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return ", ".join(t for t in (_text(item) for item in value) if t)
    if isinstance(value, dict):
        for key in ("email", "name", "filename", "url", "text"):
            if isinstance(value.get(key), str):
                return str(value[key]).strip()
    return ""


def _identity(value: Any) -> str:
    """The owner cell: an identity typed as text, or a collaborator (its e-mail)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        return str(value.get("email") or value.get("name") or "").strip()
    return _text(value)


def _url(value: Any) -> str | None:
    """An avatar cell: a URL typed as text, or an attachment (the first file's URL)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("url")
    text = _text(value)
    return text if text.lower().startswith(("https://", "http://")) else None


def _looks_like_record_id(value: str) -> bool:
    return len(value) == _RECORD_ID_LENGTH and value.startswith("rec") and value.isalnum()


@contextmanager
def _calling(
    action: str,
    *,
    missing_ok: bool = False,
    offset_may_expire: bool = False,
    gone_raises: bool = False,
) -> Iterator[None]:
    """Turn Airtable's failures into the service's errors: 503 when it may pass, 502 when not."""
    try:
        yield
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else 0
        kind = _error_type(error.response)
        if missing_ok and status == 404:
            return
        if gone_raises and status in (404, 422):
            # 404: deleted; 422 on a refresh: expired (Airtable disables a webhook at expiry).
            raise FeedGone(action) from error
        if offset_may_expire and status == 422 and kind == "LIST_RECORDS_ITERATOR_NOT_AVAILABLE":
            raise OffsetExpired(action) from error
        log_fields(
            _log,
            logging.WARNING,
            "Airtable request failed",
            action=action,
            status=status,
            airtable_error=kind,
        )
        if status == 429:
            raise DependencyUnavailable(
                f"Airtable rate limit reached while trying to {action}", retry_after=30
            ) from error
        if status >= 500:
            raise DependencyUnavailable(f"Airtable is failing ({status}) to {action}") from error
        raise DependencyFailed(f"Airtable refused to {action}: {status} {kind}") from error
    except (requests.Timeout, requests.ConnectionError, requests.exceptions.RetryError) as error:
        log_fields(
            _log, logging.WARNING, "Airtable unreachable", action=action, error=type(error).__name__
        )
        raise DependencyUnavailable(f"Airtable did not answer in time to {action}") from error


def _error_type(response: requests.Response | None) -> str:
    """Airtable's error type from either of its error shapes."""
    if response is None:
        return "no response"
    try:
        body = response.json()
    except ValueError:
        return "unknown"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("type", "unknown"))
    if isinstance(error, str):
        return error
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("error", "unknown"))
    return "unknown"
