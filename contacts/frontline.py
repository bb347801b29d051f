"""Frontline's JSON shapes (the data transfer objects), each written in exactly one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contacts.model import Customer, ListEntry

OPT_OUT_NOTICE = "Opted out: this customer asked not to receive messages."


def list_item(entry: ListEntry) -> dict[str, Any]:
    """An item of GetCustomersList."""
    item: dict[str, Any] = {"customer_id": entry.customer_id, "display_name": entry.display_name}
    if entry.avatar:
        item["avatar"] = entry.avatar
    return item


def customer_list(entries: Sequence[ListEntry], next_page_token: str | None) -> dict[str, Any]:
    """The GetCustomersList reply."""
    objects: dict[str, Any] = {
        "customers": [list_item(entry) for entry in entries],
        "searchable": True,
    }
    if next_page_token:
        objects["next_page_token"] = next_page_token
    return {"objects": objects}


def customer_details(customer: Customer) -> dict[str, Any]:
    """The full Customer object, as GetCustomerDetailsByCustomerId and CreateCustomer return it."""
    channels: list[dict[str, str]] = []
    if customer.sms:
        channels.append({"type": "sms", "value": customer.sms})
    if customer.whatsapp:
        channels.append({"type": "whatsapp", "value": customer.whatsapp})
    links: list[dict[str, str]] = []
    if customer.email:
        links.append(
            {"type": "Email", "value": f"mailto:{customer.email}", "display_name": customer.email}
        )
    if customer.linkedin:
        url = customer.linkedin
        if not url.lower().startswith("https://"):
            url = "https://" + url.split("://", 1)[-1]
        links.append({"type": "LinkedIn", "value": url, "display_name": "LinkedIn"})
    body: dict[str, Any] = {
        "customer_id": customer.customer_id,
        "display_name": customer.display_name,
        "channels": channels,
        "links": links,
    }
    content = "\n\n".join(
        part for part in (customer.notes, OPT_OUT_NOTICE if customer.opt_out else None) if part
    )
    if content:
        body["details"] = {"title": "About this customer", "content": content}
    if customer.avatar:
        body["avatar"] = customer.avatar
    return {"objects": {"customer": body}}


def template_categories(categories: Sequence[tuple[str, Sequence[tuple[str, bool]]]]) -> list[Any]:
    """The GetTemplatesByCustomerId reply: categories of rendered templates."""
    return [
        {
            "display_name": name,
            "templates": [
                {"content": content, "whatsAppApproved": approved} for content, approved in items
            ],
        }
        for name, items in categories
    ]
