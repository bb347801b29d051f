"""Privacy: logs never hold secrets or customers' full phone numbers and e-mail addresses, and
responses never echo a secret.

A realistic day of callbacks (list, search, details, templates, proxy address, routing, the
Conversations webhooks, a forged request, CreateCustomer, the scheduled refresh) runs with every
logger captured at DEBUG (pytest's caplog) and with the service's own JSON log lines on stdout
(logs.configure, as in production), captured with capfd.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import flask
import pytest
import requests

import main
from service import logs
from service.clock import ManualClock
from service.instance import Instance
from service.settings import Settings
from standins.airtable import AirtableStandIn
from standins.twilio import ConversationsStandIn
from tests.conftest import ServiceFactory
from tests.support import (
    ACCOUNT_SID,
    AIRTABLE_TOKEN,
    AUTH_TOKEN,
    BASE_ID,
    REFRESH_TOKEN,
    RunningService,
    serve_instance,
    service_env,
    signature_for,
)

ALICE = "alice@example.com"
BOB = "bob@example.com"
SECRETS = {
    "Twilio auth token": AUTH_TOKEN,
    "Airtable token": AIRTABLE_TOKEN,
    "refresh token": REFRESH_TOKEN,
    "Twilio basic auth": base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode(),
}

# Customers as a person types them into Airtable: (id, name, sms as typed, whatsapp, e-mail).
CUSTOMERS = [
    ("cust-ana", "Ana Ruiz", "(415) 555-0134", "+44 7700 900123", "ana.ruiz@example.com", ALICE),
    ("cust-ben", "Ben Okafor", "+1 415-555-0135", None, "ben.okafor@example.net", ALICE),
    ("cust-cy", "Cy Park", "415.555.0136", None, None, BOB),
]
CREATED = {
    "sms": "(415) 555-0177",
    "whatsapp": "+44 7700 900456",
    "email": "new.person@example.org",
}
UNKNOWN_CALLER = "+14155550999"
OTHER_EMAIL = "someone.else@example.com"  # typed in a search


def phone_forms(typed: str) -> set[str]:
    """A phone number as typed, in E.164, and as its bare national digits."""
    digits = re.sub(r"\D", "", typed)
    e164 = "+" + (digits if typed.strip().startswith("+") else "1" + digits)
    national = digits[-10:]
    return {typed, e164, national}


PHONES: set[str] = set()
for customer in CUSTOMERS:
    typed_sms, typed_whatsapp = customer[2], customer[3]
    assert typed_sms is not None
    PHONES |= phone_forms(typed_sms) | (phone_forms(typed_whatsapp) if typed_whatsapp else set())
PHONES |= (
    phone_forms(CREATED["sms"]) | phone_forms(CREATED["whatsapp"]) | phone_forms(UNKNOWN_CALLER)
)
EMAILS = {c[4] for c in CUSTOMERS if c[4]} | {CREATED["email"], OTHER_EMAIL, ALICE, BOB}


def encodings(value: str) -> set[str]:
    """`value` as written and as it appears in a URL (path or form/query encoding)."""
    return {value, quote(value, safe=""), quote_plus(value)}


def personal_data_in(text: str) -> list[str]:
    """Every secret, full phone number or full e-mail address found in `text`, also URL-encoded."""
    found = [f"{name} ({value[:6]}...)" for name, value in SECRETS.items() if value in text]
    found += [f"phone {p}" for p in sorted(PHONES) if any(v in text for v in encodings(p))]
    found += [f"e-mail {e}" for e in sorted(EMAILS) if any(v in text for v in encodings(e))]
    return found


# --- capturing the service's JSON log lines ---------------------------------------------------


class _CurrentStdout:
    """Whatever sys.stdout is when a line is written (pytest swaps it between test phases)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def json_logs() -> Iterator[None]:
    """Configure the service's production logging (JSON lines on stdout) at DEBUG, then undo it."""
    root = logging.getLogger()
    level = root.level
    before = list(root.handlers)
    logs.configure("DEBUG", "demo-frontline")
    for handler in root.handlers:
        if handler not in before and isinstance(handler, logging.StreamHandler):
            handler.setStream(_CurrentStdout())
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)


def seed(airtable: AirtableStandIn) -> None:
    table = airtable.table(BASE_ID, "Customers")
    for customer_id, name, sms, whatsapp, email, owner in CUSTOMERS:
        fields: dict[str, Any] = {"id": customer_id, "name": name, "sms": sms, "owner": owner}
        if whatsapp:
            fields["whatsapp"] = whatsapp
        if email:
            fields["email"] = email
        fields["notes"] = f"Prefers e-mail ({email})" if email else "Call after 5pm"
        table.create(fields)
    templates = airtable.table(BASE_ID, "Templates")
    templates.create({"category": "Openers", "text": "Hi {{first_name}}, {{worker}} here."})
    templates.create(
        {"category": "Openers", "text": "We have {{email}} on file.", "whatsAppApproved": True}
    )


def signed_json(service: RunningService, path: str, body: dict[str, str]) -> requests.Response:
    text = json.dumps(body)
    url = f"{service.url(path)}?bodySHA256={hashlib.sha256(text.encode()).hexdigest()}"
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": signature_for(url, {})}
    return requests.post(url, data=text, headers=headers, timeout=30)


def warm_cache(service: RunningService, attempts: int = 10) -> requests.Response:
    """The full sync, run to completion (a busy machine may answer 503 with Retry-After)."""
    response = service.task(full=True)
    for _ in range(attempts):
        if response.status_code == 200 and response.json().get("complete", True) is not False:
            break
        if response.status_code not in (200, 503):
            break
        time.sleep(min(float(response.headers.get("Retry-After", "1")), 5.0))
        response = service.task(full=True)
    return response


def a_day_of_callbacks(
    service: RunningService,
    twilio: ConversationsStandIn,
    clock: ManualClock,
) -> list[requests.Response]:
    """The callbacks of an ordinary day, each checked for the status it should get."""
    responses: list[requests.Response] = []

    def expect(response: requests.Response, status: int = 200) -> requests.Response:
        assert response.status_code == status, f"{response.request.url}: {response.text[:300]}"
        responses.append(response)
        return response

    expect(warm_cache(service))
    listed = expect(service.call("crm", Location="GetCustomersList", Worker=ALICE, PageSize="1"))
    token = listed.json()["objects"]["next_page_token"]
    expect(service.call("crm", Location="GetCustomersList", Worker=ALICE, NextPageToken=token))
    for query in ("Ana", "555-0134", "(415) 555-0135", "ana.ruiz@example.com", OTHER_EMAIL):
        expect(service.call("crm", Location="GetCustomersList", Worker=ALICE, Query=query))
    for customer_id in ("cust-ana", "cust-ben"):
        details = expect(
            service.call(
                "crm",
                Location="GetCustomerDetailsByCustomerId",
                Worker=ALICE,
                CustomerId=customer_id,
            )
        )
        assert details.json()["objects"]["customer"]["channels"]
    expect(
        service.call(
            "crm", Location="GetCustomerDetailsByCustomerId", Worker=ALICE, CustomerId="nope"
        ),
        404,
    )
    expect(
        service.call(
            "templates", Location="GetTemplatesByCustomerId", Worker=ALICE, CustomerId="cust-ana"
        )
    )
    for channel, value in (("sms", "+14155550134"), ("whatsapp", "whatsapp:+447700900123")):
        expect(
            service.call(
                "outgoing-conversation",
                Location="GetProxyAddress",
                Worker=ALICE,
                CustomerId="cust-ana",
                ChannelType=channel,
                ChannelValue=value,
            )
        )

    # An inbound SMS from Ana: the conversation is named, routed, and she is linked.
    conversation = twilio.create_conversation()
    customer = twilio.add_participant(
        conversation, address="+14155550134", proxy_address="+14155550100"
    )
    binding = {
        "MessagingBinding.Address": "(415) 555-0134",
        "MessagingBinding.ProxyAddress": "+14155550100",
    }
    expect(service.call("twilio-conversations", EventType="onConversationAdd", **binding))
    expect(service.call("routing", ConversationSid=conversation, **binding))
    expect(
        service.call(
            "twilio-conversations",
            EventType="onParticipantAdded",
            ConversationSid=conversation,
            ParticipantSid=customer["sid"],
            **binding,
        )
    )
    # An inbound WhatsApp from an unknown number goes to a known worker.
    unknown = twilio.create_conversation()
    expect(
        service.call(
            "twilio-conversations",
            EventType="onConversationAdd",
            **{"MessagingBinding.Address": f"whatsapp:{UNKNOWN_CALLER}"},
        )
    )
    expect(
        service.call(
            "routing",
            ConversationSid=unknown,
            **{"MessagingBinding.Address": f"whatsapp:{UNKNOWN_CALLER}"},
        )
    )

    # Ana texts STOP, Alice's next message is blocked, Ana texts START, Alice writes again.
    message = {
        "ConversationSid": conversation,
        "Author": "+14155550134",
        "MessageSid": "IM" + "1" * 32,
    }
    expect(service.call("twilio-conversations", EventType="onMessageAdded", Body="STOP", **message))
    blocked = expect(
        service.call(
            "twilio-conversations",
            EventType="onMessageAdd",
            ConversationSid=conversation,
            ClientIdentity=ALICE,
            Author=ALICE,
            Body="Hi Ana, are you there? Call me at (415) 555-0135 or ben.okafor@example.net",
        ),
        403,
    )
    assert blocked.json()["reason"] == "customer_opted_out"
    expect(
        service.call("twilio-conversations", EventType="onMessageAdded", Body="start", **message)
    )
    expect(
        service.call(
            "twilio-conversations",
            EventType="onMessageAdd",
            ConversationSid=conversation,
            ClientIdentity=ALICE,
            Body="Thanks Ana!",
        )
    )
    expect(
        service.call(
            "twilio-conversations",
            EventType="onMessageAdded",
            Body="My new e-mail is ana.ruiz@example.com, cell (415) 555-0134",
            **message,
        )
    )
    expect(service.call("twilio-conversations", EventType="onDeliveryUpdated", **binding))

    # A request forged by someone without the auth token.
    forged = {"Location": "GetCustomersList", "Worker": ALICE, "Query": "(415) 555-0134"}
    expect(service.post_with_signature("/callbacks/crm", forged, "Zm9yZ2VkIHNpZ25hdHVyZQ=="), 403)
    expect(
        service.post_with_signature(
            "/callbacks/twilio-conversations",
            {"EventType": "onConversationAdd", **binding},
            signature_for(service.url("/callbacks/twilio-conversations"), binding, "other-token"),
        ),
        403,
    )

    # Alice adds a customer from the app; a typo first.
    channels = [{"type": kind, "value": value} for kind, value in CREATED.items()]
    typo = [{"type": "sms", "value": "(415) 555-01"}, {"type": "email", "value": CREATED["email"]}]
    expect(
        service.call(
            "crm",
            Location="CreateCustomer",
            Worker=ALICE,
            DisplayName="New Person",
            Channels=json.dumps(typo),
        ),
        400,
    )
    created = expect(
        service.call(
            "crm",
            Location="CreateCustomer",
            Worker=ALICE,
            DisplayName="New Person",
            Channels=json.dumps(channels),
        )
    )
    created_id = created.json()["objects"]["customer"]["customer_id"]
    expect(service.call("crm", Location="DeleteCustomer", Worker=ALICE, CustomerId=created_id), 403)
    expect(
        signed_json(
            service,
            "/callbacks/crm",
            {"Location": "GetCustomersList", "Worker": ALICE, "Query": "new"},
        )
    )

    # The scheduled refresh, later in the day, and a caller with the wrong token.
    clock.advance(300)
    expect(service.task())
    expect(service.task(token="not-" + REFRESH_TOKEN), 403)
    expect(requests.get(service.url("/healthz"), timeout=10))
    return responses


def test_a_day_of_callbacks_logs_no_secret_and_no_personal_data(
    make_service: ServiceFactory,
    airtable: AirtableStandIn,
    twilio: ConversationsStandIn,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    json_logs: None,
) -> None:
    seed(airtable)
    caplog.set_level(logging.DEBUG)
    service = make_service(LOG_LEVEL="DEBUG")
    responses = a_day_of_callbacks(service, twilio, clock)

    captured = capfd.readouterr()
    json_lines = [line for line in captured.out.splitlines() if line.startswith("{")]
    assert json_lines, "the service wrote no JSON log lines"
    assert len(caplog.records) > len(responses), "the service logged less than a line a request"

    problems = {
        "caplog": personal_data_in(caplog.text),
        "caplog messages": personal_data_in("\n".join(r.getMessage() for r in caplog.records)),
        "stdout": personal_data_in(captured.out),
        "stderr": personal_data_in(captured.err),
    }
    leaks = {where: found for where, found in problems.items() if found}
    assert not leaks, f"personal data or secrets in the logs: {leaks}"


def test_a_cold_cache_asking_airtable_directly_logs_no_personal_data(
    make_service: ServiceFactory,
    airtable: AirtableStandIn,
    twilio: ConversationsStandIn,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    json_logs: None,
) -> None:
    """Before the first sync, lookups go to Airtable with formulas holding the worker, the
    number or the search text; at DEBUG, the HTTP client logs those URLs."""
    seed(airtable)
    caplog.set_level(logging.DEBUG)
    service = make_service(LOG_LEVEL="DEBUG")
    conversation = twilio.create_conversation()
    calls = [
        service.call("crm", Location="GetCustomersList", Worker=ALICE),
        service.call(
            "crm", Location="GetCustomerDetailsByCustomerId", Worker=ALICE, CustomerId="cust-ben"
        ),
        service.call(
            "twilio-conversations",
            EventType="onConversationAdd",
            **{"MessagingBinding.Address": "(415) 555-0134"},
        ),
        service.call(
            "routing", ConversationSid=conversation, **{"MessagingBinding.Address": "+14155550134"}
        ),
        service.call(
            "twilio-conversations",
            EventType="onConversationAdd",
            **{"MessagingBinding.Address": "415.555.0136"},
        ),
        service.call(
            "routing",
            ConversationSid=conversation,
            **{"MessagingBinding.Address": f"whatsapp:{UNKNOWN_CALLER}"},
        ),
    ]
    for response in calls:
        assert response.status_code == 200, response.text
    assert airtable.stats, "the cold cache did not ask Airtable"
    captured = capfd.readouterr()
    problems = {
        "stdout (the service's JSON lines)": personal_data_in(captured.out),
        "caplog": personal_data_in(caplog.text),
    }
    leaks = {where: found for where, found in problems.items() if found}
    assert not leaks, f"personal data in the logs: {leaks}"


def test_an_unexpected_error_reveals_nothing_to_the_caller_or_the_json_logs(
    service: RunningService,
    capfd: pytest.CaptureFixture[str],
    json_logs: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An exception whose text quotes a customer and a secret: 500 with a generic body, and a
    JSON log line with only the exception's type."""

    def fail(*args: object) -> None:
        raise RuntimeError(f"lookup of +14155550134 for ana.ruiz@example.com with {AUTH_TOKEN}")

    monkeypatch.setattr("handlers.crm.customer_details", fail)
    response = service.call(
        "crm", Location="GetCustomerDetailsByCustomerId", Worker=ALICE, CustomerId="cust-ana"
    )
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal", "message": "internal error"}}
    out = capfd.readouterr().out
    entries = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    errors = [e for e in entries if e.get("error_type") == "RuntimeError"]
    assert errors, out[-2000:]
    assert not personal_data_in(out)
    assert "Traceback" not in out
    assert "lookup of" not in out


def test_structured_log_fields_are_masked_in_the_json_lines(
    make_service: ServiceFactory,
    airtable: AirtableStandIn,
    twilio: ConversationsStandIn,
    clock: ManualClock,
    capfd: pytest.CaptureFixture[str],
    json_logs: None,
) -> None:
    """Every JSON line parses, and none of its values holds a full number or address."""
    seed(airtable)
    service = make_service(LOG_LEVEL="DEBUG")
    a_day_of_callbacks(service, twilio, clock)
    out = capfd.readouterr().out
    entries = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert entries
    for entry in entries:
        assert {"severity", "message"} <= set(entry), entry
        assert not personal_data_in(json.dumps(entry, ensure_ascii=False)), entry


def test_no_response_echoes_a_secret(
    make_service: ServiceFactory,
    airtable: AirtableStandIn,
    twilio: ConversationsStandIn,
    clock: ManualClock,
) -> None:
    seed(airtable)
    service = make_service()
    responses = a_day_of_callbacks(service, twilio, clock)
    for response in responses:
        text = response.text + json.dumps(dict(response.headers))
        found = [name for name, value in SECRETS.items() if value in text]
        assert not found, f"{response.request.url} echoed {found}"


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {REFRESH_TOKEN}x",
        f"Bearer x{REFRESH_TOKEN}",
        f"Bearer {REFRESH_TOKEN[:-1]}",
        f"bearer {REFRESH_TOKEN}",
        f"Basic {REFRESH_TOKEN}",
        f"Bearer {AIRTABLE_TOKEN}",
        f"Bearer {AUTH_TOKEN}",
        f"Bearer {'a' * 10_000}",
        "Bearer a.b.c",
        REFRESH_TOKEN,
    ],
)
def test_a_refused_task_call_echoes_no_token(
    service: RunningService, authorization: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = requests.post(
        service.url("/tasks/refresh"), headers={"Authorization": authorization}, timeout=30
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    token = authorization.split(" ")[-1]
    for secret in (token, *SECRETS.values()):
        assert secret not in response.text
        assert secret not in json.dumps(dict(response.headers))
        assert secret not in caplog.text


def test_a_refused_signature_echoes_nothing_sent(
    service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    params = {"Location": "GetCustomersList", "Worker": ALICE, "Query": "ana.ruiz@example.com"}
    signature = signature_for(service.url("/callbacks/crm"), params, token="guessed-token")
    response = service.post_with_signature("/callbacks/crm", params, signature)
    assert response.status_code == 403
    for value in (signature, ALICE, "ana.ruiz@example.com", AUTH_TOKEN):
        assert value not in response.text
        assert value not in caplog.text


def test_healthz_is_exactly_ok_and_reveals_nothing(service: RunningService) -> None:
    for method in ("GET", "HEAD"):
        response = requests.request(method, service.url("/healthz"), timeout=10)
        assert response.status_code == 200
        if method == "GET":
            assert response.json() == {"status": "ok"}
            assert response.text == '{"status": "ok"}'
        assert_headers_reveal_nothing(dict(response.headers))


def test_the_service_sets_only_its_own_few_headers(service: RunningService) -> None:
    """In process (without the local HTTP server's Server and Date headers): exactly these."""
    app = flask.Flask("privacy-in-process")
    paths = ("/healthz", "/callbacks/crm", "/tasks/refresh", "/nowhere")
    for path in paths:
        with app.test_request_context(path, method="GET" if path == "/healthz" else "POST"):
            response = main.serve(flask.request, service.instance)
        names = {name.lower() for name, _ in response.headers.items()}
        assert names <= {"content-type", "content-length", "cache-control"}, (path, names)
        assert_headers_reveal_nothing(dict(response.headers))


def assert_headers_reveal_nothing(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        assert not [s for s in SECRETS.values() if s in value or s in name], name
        if name.lower() == "server":
            continue  # the local test server's (werkzeug); Google's front end sets its own
        assert not re.search(r"\d+\.\d+", value) or name.lower() in ("date", "content-length"), (
            f"{name}: {value} looks like a version"
        )
        assert "secret" not in value.lower(), f"{name}: {value}"
        assert "/versions/" not in value, f"{name}: {value}"
    lowered = {name.lower() for name in headers}
    assert not lowered & {"x-powered-by", "x-version", "x-runtime", "x-debug"}, lowered


# --- secrets read from Secret Manager -------------------------------------------------------------


class _Payload:
    def __init__(self, data: bytes) -> None:
        self.data = data


class _Secret:
    def __init__(self, data: bytes) -> None:
        self.payload = _Payload(data)


class FakeSecretManager:
    """Answers with the secret values, or fails with an error quoting them."""

    def __init__(self, values: dict[str, str], fail: bool = False) -> None:
        self.values = values
        self.fail = fail
        self.requests: list[str] = []

    def access_secret_version(self, *, request: dict[str, str], timeout: float) -> Any:
        self.requests.append(request["name"])
        secret = next(v for k, v in self.values.items() if f"/secrets/{k}/" in request["name"])
        if self.fail:
            raise RuntimeError(f"permission denied reading payload {secret!r}")
        return _Secret(secret.encode())


@pytest.fixture
def secret_manager_service(
    airtable: AirtableStandIn, twilio: ConversationsStandIn, clock: ManualClock
) -> Iterator[tuple[RunningService, FakeSecretManager]]:
    env = service_env(airtable.url, twilio.base_url)
    for name in ("TWILIO_AUTH_TOKEN", "AIRTABLE_API_KEY", "REFRESH_TOKEN"):
        del env[name]
    env |= {
        "TWILIO_AUTH_TOKEN_SECRET": "twilio-auth-token",
        "AIRTABLE_API_KEY_SECRET": "airtable-api-key",
        "REFRESH_TOKEN_SECRET": "refresh-token",
    }
    manager = FakeSecretManager(
        {
            "twilio-auth-token": AUTH_TOKEN,
            "airtable-api-key": AIRTABLE_TOKEN,
            "refresh-token": REFRESH_TOKEN,
        }
    )
    instance = Instance(Settings.from_env(env), clock=clock, secret_client=lambda: manager)
    running = serve_instance(instance)
    yield running, manager
    running.stop()


def test_secrets_from_secret_manager_stay_out_of_logs_and_responses(
    secret_manager_service: tuple[RunningService, FakeSecretManager],
    airtable: AirtableStandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed(airtable)
    caplog.set_level(logging.DEBUG)
    service, manager = secret_manager_service
    texts = [service.task(full=True).text]
    response = service.call("crm", Location="GetCustomersList", Worker=ALICE)
    assert response.status_code == 200, response.text
    texts.append(response.text)
    assert manager.requests, "the secrets were not read from Secret Manager"
    for text in [*texts, caplog.text]:
        assert not [n for n, v in SECRETS.items() if v in text], text[:300]


def test_a_failing_secret_manager_does_not_leak_its_error_text(
    secret_manager_service: tuple[RunningService, FakeSecretManager],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    service, manager = secret_manager_service
    manager.fail = True
    response = service.call(
        "outgoing-conversation", Location="GetProxyAddress", Worker=ALICE, ChannelType="sms"
    )
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "unavailable"
    for text in (response.text, caplog.text):
        assert not [n for n, v in SECRETS.items() if v in text], text[:500]
        assert "permission denied reading payload" not in text
