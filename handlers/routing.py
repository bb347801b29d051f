"""/callbacks/routing: give an inbound conversation to the customer's owner."""

from __future__ import annotations

import hashlib

from contacts.phones import to_e164
from handlers.base import Params, Reply, Services
from service.errors import BadRequest, NotConfigured


def handle(params: Params, services: Services) -> Reply:
    """Find the owner of the customer's address and add them to the conversation."""
    conversation_sid = params.sid("ConversationSid", "CH")
    address = params.required("MessagingBinding.Address", max_length=2_000)
    addresses = [a.strip() for a in address.split(",") if a.strip()]
    if not addresses:
        raise BadRequest(
            "MessagingBinding.Address holds no address", field="MessagingBinding.Address"
        )
    services.directory.refresh_if_due()
    worker = choose_worker(addresses, services)
    services.conversations.add_worker(conversation_sid, worker)
    return Reply({})


def choose_worker(addresses: list[str], services: Services) -> str:
    """The owner of the first address with one (group MMS lists several), else DEFAULT_WORKER,
    else a stable choice among known workers (the same number, however written, always goes to
    the same rep)."""
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
    number = to_e164(addresses[0], services.settings.default_phone_region) or addresses[0]
    return stable_choice(number, workers)


def stable_choice(key: str, workers: list[str]) -> str:
    """The worker `key` hashes to, highest random weight first: a rep joining or leaving moves
    only the numbers that were (or become) theirs, not everyone else's."""
    return max(workers, key=lambda worker: hashlib.sha256(f"{key}\x00{worker}".encode()).digest())
