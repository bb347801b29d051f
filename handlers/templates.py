"""/callbacks/templates: the Templates table, rendered for one customer."""

from __future__ import annotations

from contacts import frontline
from contacts.merge_fields import render
from handlers.base import Params, Reply, Services, dispatch


def handle(params: Params, services: Services) -> Reply:
    """Serve one templates callback, chosen by `Location`."""
    return dispatch(params, services, {"GetTemplatesByCustomerId": templates_for_customer})


def templates_for_customer(params: Params, services: Services) -> Reply:
    """Categories in table order; a template with a merge field this customer lacks is left out."""
    customer_id = params.required("CustomerId", max_length=256)
    worker = params.text("Worker", max_length=256) or ""
    services.directory.refresh_if_due()
    customer = services.directory.customer(customer_id)
    categories: dict[str, list[tuple[str, bool]]] = {}
    for template in services.directory.templates():
        rendered = render(template.text, customer, worker)
        items = categories.setdefault(template.category, [])
        if rendered is not None:
            items.append((rendered, template.whatsapp_approved))
    return Reply(frontline.template_categories([(k, v) for k, v in categories.items() if v]))
