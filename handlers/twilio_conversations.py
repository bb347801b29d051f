"""/callbacks/twilio-conversations: the Conversations pre- and post-event webhooks, by EventType."""

from __future__ import annotations

import json
import logging
from typing import Any

from contacts.model import Customer
from handlers.base import Params, Reply, Services
from service.errors import DependencyUnavailable, Forbidden, NotFound
from service.logs import log_fields

_log = logging.getLogger(__name__)

OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})


def handle(params: Params, services: Services) -> Reply:
    """Serve one webhook; events this service does not handle are acknowledged with {}."""
    event = params.required("EventType", max_length=100)
    action = {
        "onConversationAdd": conversation_add,
        "onParticipantAdded": participant_added,
        "onMessageAdded": message_added,
        "onMessageAdd": message_add,
    }.get(event)
    if action is None:
        # A non-200 to a pre-event would block the action in Twilio.
        log_fields(_log, logging.INFO, "webhook event acknowledged without action", event=event)
        return Reply({})
    return action(params, services)


def conversation_add(params: Params, services: Services) -> Reply:
    """Name a new inbound conversation after its customer (pre-event: never blocks creation)."""
    address = params.text("MessagingBinding.Address", max_length=2_000)
    if address is None:
        return Reply({})
    try:
        customer = services.directory.customer_at_address(address)
    except DependencyUnavailable as error:
        log_fields(_log, logging.WARNING, "naming conversation by address", error=error.message)
        customer = None
    if customer is None:
        return Reply({"friendly_name": address, "attributes": "{}"})
    attributes = {"avatar": customer.avatar} if customer.avatar else {}
    return Reply({"friendly_name": customer.display_name, "attributes": json.dumps(attributes)})


def participant_added(params: Params, services: Services) -> Reply:
    """Link a customer participant to its CRM record by merging into its attributes."""
    address = params.text("MessagingBinding.Address", max_length=2_000)
    if address is None or params.text("Identity", max_length=256) is not None:
        return Reply({})
    conversation_sid = params.sid("ConversationSid", "CH")
    participant_sid = params.sid("ParticipantSid", "MB")
    customer = services.directory.customer_at_address(address)
    if customer is None:
        return Reply({})
    participant = services.conversations.participant(conversation_sid, participant_sid)
    merged: dict[str, Any] = {
        **participant.attributes,
        "customer_id": customer.customer_id,
        "display_name": customer.display_name,
    }
    if customer.avatar:
        merged["avatar"] = customer.avatar
    if merged != dict(participant.attributes):
        services.conversations.update_participant_attributes(
            conversation_sid, participant_sid, merged
        )
    return Reply({})


def message_added(params: Params, services: Services) -> Reply:
    """A customer's STOP (or START) sets (or clears) their opt-out in Airtable and the cache."""
    if params.text("ClientIdentity", max_length=256) is not None:
        return Reply({})  # a rep's message
    keyword = (params.text("Body", max_length=1_600, multiline=True) or "").strip().upper()
    if keyword in OPT_OUT_KEYWORDS:
        opted_out = True
    elif keyword in OPT_IN_KEYWORDS:
        opted_out = False
    else:
        return Reply({})
    author = params.text("Author", max_length=256)
    customer = services.directory.customer_at_address(author) if author else None
    if customer is None:
        return Reply({})
    if customer.opt_out != opted_out:
        services.directory.set_opt_out(customer, opted_out)
    log_fields(
        _log, logging.INFO, "opt-out changed", customer_id=customer.customer_id, opted_out=opted_out
    )
    return Reply({})


def message_add(params: Params, services: Services) -> Reply:
    """Block a rep's message to a customer who opted out (pre-event: 403 blocks it in Twilio)."""
    if params.text("ClientIdentity", max_length=256) is None:
        return Reply({})  # the customer's own message
    conversation_sid = params.sid("ConversationSid", "CH")
    try:
        customer = _conversation_customer(conversation_sid, services)
    except (DependencyUnavailable, NotFound) as error:
        # Twilio itself refuses SMS to numbers that sent STOP; a failing lookup must not stop
        # every rep's messages.
        log_fields(_log, logging.WARNING, "opt-out check skipped", error=error.message)
        return Reply({})
    if customer is not None and customer.opt_out:
        raise Forbidden(
            f"{customer.display_name} opted out of messages; this message was not sent",
            extra={"reason": "customer_opted_out", "customer_id": customer.customer_id},
        )
    return Reply({})


def _conversation_customer(conversation_sid: str, services: Services) -> Customer | None:
    for participant in services.conversations.participants(conversation_sid):
        customer_id = participant.attributes.get("customer_id")
        if isinstance(customer_id, str) and customer_id:
            return services.directory.customer(customer_id)
        if participant.address and not participant.identity:
            return services.directory.customer_at_address(participant.address)
    return None
