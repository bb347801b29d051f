"""Shared fixtures: the Firestore emulator (one per run), and per test the Airtable and Twilio
stand-ins and service instances wired to them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from service.clock import ManualClock
from standins.airtable import AirtableStandIn
from standins.twilio import ConversationsStandIn
from tests.support import (
    ACCOUNT_SID,
    AIRTABLE_TOKEN,
    AUTH_TOKEN,
    BASE_ID,
    RunningService,
    build_instance,
    serve_instance,
    service_env,
)
from tools.firestore_emulator import FirestoreEmulator


@pytest.fixture(scope="session", autouse=True)
def firestore_emulator() -> Iterator[str]:
    """One emulator for the whole run (or the one FIRESTORE_EMULATOR_HOST already names)."""
    existing = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if existing:
        yield existing
        return
    emulator = FirestoreEmulator().start()
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
    try:
        yield emulator.host
    finally:
        emulator.stop()
        del os.environ["FIRESTORE_EMULATOR_HOST"]


@pytest.fixture
def clock() -> ManualClock:
    """A clock shared by the service and the Airtable stand-in, moved by the test."""
    return ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def airtable(clock: ManualClock) -> Iterator[AirtableStandIn]:
    """An Airtable stand-in with Airtable's 5 requests/second limit and 30 s penalty."""
    standin = AirtableStandIn(token=AIRTABLE_TOKEN, clock=clock.now)
    standin.table(BASE_ID, "Customers", fields=CUSTOMER_COLUMNS)
    standin.table(BASE_ID, "Templates", fields=("category", "text", "whatsAppApproved"))
    standin.start()
    yield standin
    standin.stop()


@pytest.fixture
def twilio() -> Iterator[ConversationsStandIn]:
    """A stand-in for Twilio's Conversations API, built from Twilio's OpenAPI spec."""
    standin = ConversationsStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    standin.start()
    yield standin
    standin.stop()


CUSTOMER_COLUMNS = (
    "id", "name", "sms", "whatsapp", "email", "linkedin", "notes", "owner", "opt_out", "avatar",
)  # fmt: skip

ServiceFactory = Callable[..., RunningService]


@pytest.fixture
def make_service(
    airtable: AirtableStandIn, twilio: ConversationsStandIn, clock: ManualClock
) -> Iterator[ServiceFactory]:
    """Start service instances sharing one collection prefix (one deployment, many instances)."""
    started: list[RunningService] = []
    shared_prefix = service_env(airtable.url, twilio.base_url)["FIRESTORE_COLLECTION_PREFIX"]

    def start(**overrides: str) -> RunningService:
        env = service_env(
            airtable.url, twilio.base_url, FIRESTORE_COLLECTION_PREFIX=shared_prefix, **overrides
        )
        service = serve_instance(build_instance(env, clock=clock))
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def service(make_service: ServiceFactory) -> RunningService:
    """One service instance."""
    return make_service()
