"""Template merge fields: `{{name}}`, `{{first_name}}`, `{{owner}}`, `{{worker}}` or any column."""

from __future__ import annotations

import re

from contacts.model import Customer

_FIELD = re.compile(r"\{\{\s*([^{}]{1,100}?)\s*\}\}")


def _values(customer: Customer, worker: str) -> dict[str, str]:
    values = {name.casefold(): text for name, text in customer.columns.items() if text.strip()}
    first_name = customer.display_name.split()[0] if customer.display_name.split() else ""
    derived = {
        "name": customer.display_name,
        "display_name": customer.display_name,
        "first_name": first_name,
        "customer_id": customer.customer_id,
        "owner": customer.owner or worker,
        "worker": worker,
        "email": customer.email or "",
    }
    values.update({key: text for key, text in derived.items() if text.strip()})
    return values


def render(text: str, customer: Customer, worker: str) -> str | None:
    """Fill every merge field; None when one has no value for this customer, or when the text
    holds a malformed one such as `{{name}` (the template is left out rather than sent so)."""
    outside_fields = _FIELD.sub("", text)
    if "{{" in outside_fields or "}}" in outside_fields:
        return None
    values = _values(customer, worker)
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        value = values.get(match.group(1).strip().casefold())
        if value is None:
            missing = True
            return ""
        return value

    rendered = _FIELD.sub(substitute, text)
    return None if missing else rendered
