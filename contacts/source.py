"""What the contact cache needs from the table the contacts live in (Airtable in production)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from contacts.model import Customer, NewCustomer, Template


@dataclass(frozen=True)
class SourcePage:
    """One page of customers and the opaque offset of the next page (None at the end)."""

    customers: list[Customer]
    offset: str | None


class OffsetExpired(Exception):
    """The source no longer knows a saved page offset; the listing must start over."""


class FeedGone(Exception):
    """The change feed (an Airtable webhook) no longer exists; it must be created again."""


@dataclass(frozen=True)
class Deletions:
    """Record ids deleted since a feed cursor, and the cursor to ask from next time."""

    record_ids: set[str]
    cursor: int


class CustomerSource(Protocol):
    """Reads and writes customers and templates. Every method is a few requests at most."""

    def customers_page(self, offset: str | None) -> SourcePage:
        """One page of every customer in the table (the full sync)."""
        ...

    def customers_changed_since(
        self, since: datetime, max_pages: int
    ) -> tuple[list[Customer], bool]:
        """Customers modified after `since`, de-duplicated; the flag is False if pages remain."""
        ...

    def record_ids(self) -> set[str]:
        """Every record id in the table, asking for as few fields as possible."""
        ...

    def open_deletion_feed(self) -> str | None:
        """Start a feed of deleted records; its id, or None if the token may not (no scope)."""
        ...

    def keep_deletion_feed(self, feed_id: str) -> None:
        """Extend the feed's life (Airtable deletes webhooks after 7 days); FeedGone if gone."""
        ...

    def deletions_since(self, feed_id: str, cursor: int) -> Deletions:
        """Records deleted since `cursor` on the feed; FeedGone if it no longer exists."""
        ...

    def worker_customers(self, worker: str, max_pages: int) -> tuple[list[Customer], bool]:
        """One worker's customers sorted by name; the flag is False if pages remain."""
        ...

    def customer_by_id(self, customer_id: str) -> Customer | None:
        """The customer with this customer id (the id column, or the record id)."""
        ...

    def customers_by_number(self, e164: str) -> list[Customer]:
        """Customers whose sms or WhatsApp number is `e164`, however it was typed."""
        ...

    def search_customers(self, worker: str, query: str, limit: int) -> list[Customer]:
        """A worker's customers whose name or e-mail contains `query` (no cache needed)."""
        ...

    def templates(self) -> list[Template]:
        """Every template, in table order."""
        ...

    def create_customer(self, new: NewCustomer) -> Customer:
        """Create a record and return the customer it became."""
        ...

    def set_opt_out(self, record_id: str, opted_out: bool) -> Customer:
        """Set or clear the opt-out checkbox; return the updated customer."""
        ...

    def delete_customer(self, record_id: str) -> None:
        """Delete the record."""
        ...
