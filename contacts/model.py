"""Customers, list entries and templates as the service sees them, whatever the table calls them."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from contacts.phones import WHATSAPP_PREFIX, digits, to_e164

SortKey = tuple[str, str]


def fold(text: str) -> str:
    """Case- and accent-insensitive form of `text`, for sorting and search (`José` → `jose`)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


@dataclass(frozen=True)
class Customer:
    """One contact. `sms` is E.164 and `whatsapp` is `whatsapp:+E164` when the number parsed."""

    customer_id: str
    record_id: str
    display_name: str
    owner: str = ""
    sms: str | None = None
    whatsapp: str | None = None
    email: str | None = None
    linkedin: str | None = None
    notes: str | None = None
    avatar: str | None = None
    opt_out: bool = False
    # Every column of the record as text, keyed by column name, for template merge fields.
    columns: Mapping[str, str] = field(default_factory=dict)
    created_at: str | None = None

    def numbers(self, region: str) -> list[str]:
        """The E.164 numbers this customer can be reached at (sms and WhatsApp), de-duplicated."""
        found: list[str] = []
        for value in (self.sms, self.whatsapp):
            e164 = to_e164(value, region) if value else None
            if e164 is not None and e164 not in found:
                found.append(e164)
        return found

    def list_entry(self) -> ListEntry:
        """The compact form kept in a worker's snapshot."""
        phone_digits = " ".join(digits(v) for v in (self.sms, self.whatsapp) if v)
        return ListEntry(
            customer_id=self.customer_id,
            display_name=self.display_name,
            avatar=self.avatar,
            record_id=self.record_id,
            search_text="\x1f".join(
                (fold(self.display_name), fold(self.email or ""), phone_digits)
            ),
            created_at=self.created_at,
        )


@dataclass(frozen=True)
class ListEntry:
    """A customer as shown in a worker's list, with what search needs."""

    customer_id: str
    display_name: str
    avatar: str | None
    record_id: str
    search_text: str
    created_at: str | None = None

    @property
    def sort_key(self) -> SortKey:
        """Lists are ordered by display name (folded), then customer id."""
        return (fold(self.display_name), self.customer_id)

    def matches(self, query: str) -> bool:
        """True when `query` is in the name or e-mail, or its digits are in a phone number."""
        name, email, phone_digits = [*self.search_text.split("\x1f"), "", ""][:3]
        folded = fold(query)
        if folded and (folded in name or folded in email):
            return True
        query_digits = digits(query)
        return len(query_digits) >= 3 and any(query_digits in d for d in phone_digits.split())


@dataclass(frozen=True)
class NewCustomer:
    """What CreateCustomer asks for, already validated and normalised."""

    display_name: str
    owner: str
    sms: str | None = None
    whatsapp: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Template:
    """One message template from the Templates table."""

    category: str
    text: str
    whatsapp_approved: bool = False


def whatsapp_address(e164: str) -> str:
    """`+1415…` → `whatsapp:+1415…`."""
    return f"{WHATSAPP_PREFIX}{e164}"
