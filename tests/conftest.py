"""Shared fixtures: the Firestore emulator (one per run), and per test the Airtable and Twilio
stand-ins and service instances wired to them."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from service.clock import ManualClock
from service.logs import EMAIL_PATTERN, MIN_PHONE_DIGITS, PHONE_PATTERN, JsonFormatter
from standins.airtable import AirtableStandIn
from standins.twilio import ConversationsStandIn
from tests.support import (
    ACCOUNT_SID,
    AIRTABLE_TOKEN,
    AUTH_TOKEN,
    BASE_ID,
    REFRESH_TOKEN,
    RunningService,
    build_instance,
    serve_instance,
    service_env,
)
from tools.firestore_emulator import FirestoreEmulator

# --- privacy over the whole run ---------------------------------------------------------------

SERVICE_LOGGERS = ("frontline", "main", "handlers", "cache", "contacts", "integrations", "service")
_SECRETS = (AUTH_TOKEN, AIRTABLE_TOKEN, REFRESH_TOKEN)


def holds_personal_data(line: str) -> bool:
    """A full phone number or e-mail address by the service's own definition of them (masked
    ones, `+1415***0134` and `a***@example.com`, no longer match it)."""
    if EMAIL_PATTERN.search(line):
        return True
    return any(
        len(re.sub(r"\D", "", match.group(0))) >= MIN_PHONE_DIGITS
        for match in PHONE_PATTERN.finditer(line)
    )


class RunLog(logging.Handler):
    """Every line the service logs during the whole run, formatted as in production."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("demo-frontline"))
        self.lines: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".")[0] in SERVICE_LOGGERS

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def leaks(self) -> list[str]:
        """Lines holding a secret, a full phone number or a full e-mail address."""
        return [
            line
            for line in self.lines
            if any(secret in line for secret in _SECRETS) or holds_personal_data(line)
        ]


RUN_LOG = RunLog()


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(RUN_LOG)
    for name in SERVICE_LOGGERS:  # everything the service can log, not only warnings
        logging.getLogger(name).setLevel(logging.DEBUG)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if anything the service logged in it holds personal data or a secret."""
    logging.getLogger().removeHandler(RUN_LOG)
    leaks = RUN_LOG.leaks()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"privacy: {len(RUN_LOG.lines)} service log lines of this run scanned, "
            f"{len(leaks)} with a secret, full phone number or e-mail address"
        )
        for line in leaks[:20]:
            reporter.write_line(f"  leak: {line[:300]}")
    if leaks and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
