"""/callbacks/crm: the rep's customer list (paged, searchable), details, create and delete."""

from __future__ import annotations

from typing import Any

from contacts import frontline
from contacts.model import NewCustomer, whatsapp_address
from contacts.phones import to_e164
from handlers.base import Params, Reply, Services, dispatch
from service.errors import BadRequest, Forbidden

DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 200
MAX_QUERY_CHARS = 200
MAX_NAME_CHARS = 200


def handle(params: Params, services: Services) -> Reply:
    """Serve one CRM callback, chosen by `Location`."""
    return dispatch(
        params,
        services,
        {
            "GetCustomersList": customers_list,
            "GetCustomerDetailsByCustomerId": customer_details,
            "CreateCustomer": create_customer,
            "DeleteCustomer": delete_customer,
        },
    )


def customers_list(params: Params, services: Services) -> Reply:
    """One page of the rep's own customers, by name; `Query` searches; both paging styles."""
    worker = params.worker()
    page_size = params.integer("PageSize", default=DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)
    query = params.text("Query", max_length=MAX_QUERY_CHARS)
    token = params.text("NextPageToken")
    anchor = params.text("Anchor", max_length=256)
    directory = services.directory
    directory.refresh_if_due()
    after = None
    if token is not None:
        after = services.page_tokens.read(token, worker, query)
    elif anchor is not None:
        after = directory.position_of(worker, anchor)
        if after is None:
            # The anchor is not in this rep's list (removed meanwhile, or never theirs).
            return Reply(frontline.customer_list([], None))
    page = directory.customers_page(worker, after=after, limit=page_size, query=query)
    next_token = None
    if page.has_more and page.entries:
        next_token = services.page_tokens.issue(worker, query, page.entries[-1].sort_key)
    return Reply(frontline.customer_list(page.entries, next_token))


def customer_details(params: Params, services: Services) -> Reply:
    """The full Customer object for any customer id (reps can be routed others' customers)."""
    customer_id = params.required("CustomerId", max_length=256)
    services.directory.refresh_if_due()
    return Reply(frontline.customer_details(services.directory.customer(customer_id)))


def create_customer(params: Params, services: Services) -> Reply:
    """Create a customer owned by the rep, in Airtable and in the cache at once."""
    worker = params.worker()
    new = _new_customer(params, worker, services.settings.default_phone_region)
    customer = services.directory.create_customer(new)
    return Reply(frontline.customer_details(customer))


def delete_customer(params: Params, services: Services) -> Reply:
    """Delete one of the rep's customers, if ALLOW_CUSTOMER_DELETE is on."""
    worker = params.worker()
    customer_id = params.required("CustomerId", max_length=256)
    if not services.settings.allow_customer_delete:
        raise Forbidden("deleting customers is turned off (set ALLOW_CUSTOMER_DELETE=true)")
    customer = services.directory.customer(customer_id)
    if customer.owner.strip().casefold() != worker.strip().casefold():
        raise Forbidden("only the customer's owner may delete it", field="CustomerId")
    services.directory.delete_customer(customer)
    return Reply({})


def _invalid(message: str, field: str) -> BadRequest:
    return BadRequest(message, field=field, extra={"friendly_error_message": message})


def _new_customer(params: Params, worker: str, region: str) -> NewCustomer:
    """Validate CreateCustomer's DisplayName and Channels (a JSON array of {type, value})."""
    try:
        name = params.text("DisplayName", max_length=MAX_NAME_CHARS)
        channels: Any = params.json("Channels") or []
    except BadRequest as error:
        raise _invalid(error.message, error.field or "DisplayName") from error
    if name is None:
        raise _invalid("Please enter the customer's name.", "DisplayName")
    if not isinstance(channels, list):
        raise _invalid("Channels must be a list of {type, value}.", "Channels")
    found: dict[str, str] = {}
    for channel in channels:
        if not isinstance(channel, dict):
            raise _invalid("Each channel needs a type and a value.", "Channels")
        kind = str(channel.get("type", "")).strip().lower()
        value = str(channel.get("value", "")).strip()
        if kind not in ("sms", "whatsapp", "email") or not value or len(value) > 256:
            raise _invalid("Channels may be sms, whatsapp or email, each with a value.", "Channels")
        if kind == "email":
            if "@" not in value or any(c.isspace() for c in value):
                raise _invalid(f"{value!r} is not an e-mail address.", "Channels")
            found[kind] = value
            continue
        e164 = to_e164(value, region)
        if e164 is None:
            raise _invalid(f"{value!r} is not a phone number.", "Channels")
        found[kind] = e164 if kind == "sms" else whatsapp_address(e164)
    return NewCustomer(
        display_name=name,
        owner=worker,
        sms=found.get("sms"),
        whatsapp=found.get("whatsapp"),
        email=found.get("email"),
    )
