"""/callbacks/routing: give an inbound conversation to the customer's owner."""

from __future__ import annotations

import hashlib
import re

from handlers.base import Params, Reply, Services
from service.errors import BadRequest, NotConfigured

_CONVERSATION_SID = re.compile(r"CH[0-9a-fA-F]{32}")


def handle(params: Params, services: Services) -> Reply:
    """Find the owner of the customer's address and add them to the conversation."""
    conversation_sid = params.required("ConversationSid", max_length=34)
    if not _CONVERSATION_SID.fullmatch(conversation_sid):
        raise BadRequest(
            "ConversationSid must look like CH followed by 32 hex digits", field="ConversationSid"
        )
    address = params.required("MessagingBinding.Address", max_length=2_000)
    services.directory.refresh_if_due()
    worker = choose_worker(address, services)
    services.conversations.add_worker(conversation_sid, worker)
    return Reply({})


def choose_worker(address: str, services: Services) -> str:
    """The owner of the first address with one (group MMS lists several), else DEFAULT_WORKER,
    else a stable choice among known workers (the same address always goes to the same rep)."""
    addresses = [a.strip() for a in address.split(",") if a.strip()]
    for candidate in addresses:
        for owner in services.directory.owners_of_address(candidate):
            if owner.owner.strip():
                return owner.owner.strip()
    if services.settings.default_worker:
        return services.settings.default_worker
    workers = services.directory.known_workers()
    if not workers:
        raise NotConfigured(
            "nobody to route this conversation to: set DEFAULT_WORKER", retry_after=60
        )
    digest = hashlib.sha256(addresses[0].encode("utf-8")).digest()
    return workers[int.from_bytes(digest[:8], "big") % len(workers)]
