"""Hostile input, property-based: every route, every parameter it reads, adversarial values.

Requests are signed exactly as Twilio signs them, so they reach the handlers. Properties, for
every input: never a 5xx; the body is always JSON; no body quotes a traceback; every 4xx body
has `error.code` and `error.message`, and every 400 names the parameter at fault in `field`;
a page token never shows one worker another worker's customers.

One deployment (stand-ins and one service instance over one warm cache) serves the module. The
inputs tried and the 5xx answers are counted and printed at the end of the module.
"""

from __future__ import annotations

import hashlib
import json
import string
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cache.layout import worker_key
from contacts.model import fold
from service.clock import ManualClock
from standins.airtable import AirtableStandIn
from standins.twilio import ConversationsStandIn
from tests.conftest import CUSTOMER_COLUMNS
from tests.support import (
    ACCOUNT_SID,
    AIRTABLE_TOKEN,
    AUTH_TOKEN,
    BASE_ID,
    RunningService,
    build_instance,
    serve_instance,
    service_env,
    signature_for,
)

ALICE = "alice@example.com"
BOB = "bob@example.com"
CAROL = "carol@example.com"
STOPPER_SMS = "+14155550190"  # the customer whose opt-out the webhook tests may flip
OPTED_OUT_SMS = "+14155550191"
SIGNATURE_REFUSED = "missing or invalid X-Twilio-Signature"


HOSTILE = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FEW = settings(HOSTILE, max_examples=40)


# --- the tally -----------------------------------------------------------------------------


@dataclass
class Tally:
    """Inputs sent and 5xx answers."""

    tried: int = 0
    errors: int = 0
    failures: list[str] = field(default_factory=list)

    def record(self, label: str, status: int) -> None:
        self.tried += 1
        if status < 500:
            return
        self.errors += 1
        self.failures.append(f"{label} -> {status}")

    def summary(self) -> str:
        return f"hostile input: {self.tried} inputs tried, {self.errors} answered 5xx"


TALLY = Tally()


def print_outside_capture(config: pytest.Config, line: str) -> None:
    """Write `line` to the terminal even while pytest captures output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line)


@pytest.fixture(scope="module", autouse=True)
def hostile_summary(request: pytest.FixtureRequest) -> Iterator[Tally]:
    yield TALLY
    print_outside_capture(request.config, TALLY.summary())


# --- one deployment for the module ----------------------------------------------------------


@dataclass
class Deployment:
    airtable: AirtableStandIn
    twilio: ConversationsStandIn
    service: RunningService
    conversation_sid: str  # a customer (Ana) and Alice are in it
    opted_out_conversation_sid: str  # a customer who opted out is in it
    customer_participant_sid: str

    def owners(self) -> dict[str, str]:
        """customer_id -> worker key of its owner, from the table (as the service sees it)."""
        found: dict[str, str] = {}
        for record in self.airtable.table(BASE_ID, "Customers").records():
            fields = record["fields"]
            customer_id = str(fields.get("id") or record["id"]).strip()
            found[customer_id] = worker_key(str(fields.get("owner") or ""))
        return found


ALICE_CUSTOMERS = [
    ("cust-ana", "Ana Ruiz", "+14155550134", "ana.ruiz@example.com"),
    ("cust-ben", "Ben Okafor", "+14155550135", None),
    ("cust-cho", "Cho Min-jun", "(415) 555-0136", "cho@example.com"),
    ("cust-dee", "Dée D'Arcy", "415.555.0137", None),
    ("cust-eli", 'Eli "Quotes" Stone', None, "eli@example.com"),
    ("cust-fay", "Fay {owner}", "+442071838750", None),
    ("cust-gus", "Gus ') , TRUE()) & ('", "+14155550138", None),
    ("cust-hal", "Hal \u05e9\u05dc\u05d5\u05dd", "+14155550139", None),
    ("cust-ivy", "Ivy \U0001f600", "+14155550140", None),
    ("cust-jon", "Jon Backslash \\", "+14155550141", None),
    ("cust-sam", "Sam Stopper", STOPPER_SMS, None),
    ("cust-olga", "Olga Opted-Out", OPTED_OUT_SMS, None),
]
BOB_CUSTOMERS = [
    ("cust-bob-1", "Brenda Secret", "+14155550160", "brenda@example.com"),
    ("cust-bob-2", "Bruno Hidden", "+14155550161", None),
    ("cust-bob-3", "Aaron First", "+14155550162", None),
]
REAL_CONVERSATIONS: set[str] = set()  # conversations the Twilio stand-in has
KNOWN_NUMBERS = [c[2] for c in ALICE_CUSTOMERS + BOB_CUSTOMERS if c[2]]
KNOWN_IDS = [c[0] for c in ALICE_CUSTOMERS + BOB_CUSTOMERS]


def warm_cache(service: RunningService, attempts: int = 10) -> None:
    """Run the full sync to completion; a busy machine may answer 503 with Retry-After first."""
    last = ""
    for _ in range(attempts):
        response = service.task(full=True)
        last = f"{response.status_code} {response.text[:300]}"
        if response.status_code == 200 and response.json().get("complete", True) is not False:
            return
        if response.status_code not in (200, 503):
            break
        time.sleep(min(float(response.headers.get("Retry-After", "1")), 5.0))
    raise AssertionError(f"the full sync did not complete: {last}")


@pytest.fixture(scope="module")
def deployment(firestore_emulator: str) -> Iterator[Deployment]:
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    airtable = AirtableStandIn(token=AIRTABLE_TOKEN, clock=clock.now)
    customers = airtable.table(BASE_ID, "Customers", fields=CUSTOMER_COLUMNS)
    templates = airtable.table(
        BASE_ID, "Templates", fields=("category", "text", "whatsAppApproved")
    )
    for owner, rows in ((ALICE, ALICE_CUSTOMERS), (BOB, BOB_CUSTOMERS)):
        for customer_id, name, sms, email in rows:
            record: dict[str, Any] = {"id": customer_id, "name": name, "owner": owner}
            if sms:
                record["sms"] = sms
            if email:
                record["email"] = email
            if sms == OPTED_OUT_SMS:
                record["opt_out"] = True
            customers.create(record)
    customers.create({"id": "cust-carol", "name": "Carl Carol", "owner": CAROL})
    for category, text in (
        ("Openers", "Hi {{first_name}}, it's {{worker}}."),
        ("Openers", "Hello {{ name }} \u2014 {{email}}"),
        ("Follow-up", "{{owner}} here: {{notes}}"),
        ("Follow-up", "Plain text with {braces} and ') , TRUE()) & ('"),
    ):
        templates.create({"category": category, "text": text, "whatsAppApproved": True})
    airtable.start()
    twilio = ConversationsStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    twilio.start()
    service: RunningService | None = None
    try:
        env = service_env(airtable.url, twilio.base_url)
        service = serve_instance(build_instance(env, clock=clock))
        warm_cache(service)
        conversation = twilio.create_conversation("with Ana")
        customer = twilio.add_participant(
            conversation,
            address="+14155550134",
            proxy_address="+14155550100",
            attributes=json.dumps({"customer_id": "cust-ana"}),
        )
        twilio.add_participant(conversation, identity=ALICE)
        opted_out = twilio.create_conversation("with Olga")
        twilio.add_participant(opted_out, address=OPTED_OUT_SMS, proxy_address="+14155550100")
        REAL_CONVERSATIONS.update((conversation, opted_out))
        yield Deployment(airtable, twilio, service, conversation, opted_out, customer["sid"])
    finally:
        if service is not None:
            service.stop()
        twilio.stop()
        airtable.stop()


# --- sending and the properties ----------------------------------------------------------------


def call(
    deployment: Deployment, callback: str, params: Mapping[str, str | None]
) -> requests.Response:
    """POST a signed form callback; parameters whose value is None are left out."""
    present = {k: v for k, v in params.items() if v is not None}
    return deployment.service.call(callback, **present)


def call_json(deployment: Deployment, callback: str, body: Any) -> requests.Response:
    """POST a JSON body signed the way Twilio signs JSON (bodySHA256 in the signed URL)."""
    text = body if isinstance(body, str) else json.dumps(body)
    path = f"/callbacks/{callback}"
    query = "bodySHA256=" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    url = f"{deployment.service.url(path)}?{query}"
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": signature_for(url, {})}
    return requests.post(url, data=text.encode("utf-8"), headers=headers, timeout=30)


def check(
    response: requests.Response,
    label: str,
    *,
    fields: set[str] | None = None,
    allowed: set[int] | None = None,
    signed: bool = True,
) -> Any:
    """The properties every answer has; returns the parsed body.

    `fields`: the parameters a 400 may name (when one parameter is at fault).
    `allowed`: the statuses this route may answer for this input.
    """
    status = response.status_code
    text = response.text
    TALLY.record(label, status)
    assert status < 500, f"{label}: answered {status}: {text[:300]}"
    assert "Traceback" not in text, f"{label}: traceback in body"
    assert 'File "' not in text, f"{label}: traceback in body"
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        f"{label}: {status} with Content-Type {response.headers.get('Content-Type')}"
    )
    body = response.json()
    if 400 <= status < 500:
        assert isinstance(body, dict), f"{label}: {status} body {text[:200]}"
        error = body.get("error")
        assert isinstance(error, dict), f"{label}: {status} without error object: {text[:200]}"
        assert isinstance(error.get("code"), str), f"{label}: {text[:200]}"
        assert error["code"], f"{label}: {text[:200]}"
        assert isinstance(error.get("message"), str), f"{label}: {text[:200]}"
        assert error["message"], f"{label}: {text[:200]}"
        if signed:
            assert error["message"] != SIGNATURE_REFUSED, f"{label}: the test's signature failed"
        if status == 400 and fields is not None:
            assert error.get("field") in fields, f"{label}: 400 names {error.get('field')!r}"
    if allowed is not None and status != 413:  # several 10k-character values: over 256 KB
        assert status in allowed, f"{label}: unexpected {status}: {text[:300]}"
    return body


# --- strategies ---------------------------------------------------------------------------

ADVERSARIAL = [
    "",
    " ",
    "\t",
    "0",
    "-1",
    "null",
    "undefined",
    "None",
    "[]",
    "{}",
    "') , TRUE()) & ('",
    '") , TRUE()) & ("',
    "{owner}",
    "{{owner}}",
    "{{",
    '"',
    "\\",
    "'",
    "\\'",
    "%s%s%n",
    "${jndi:ldap://x}",
    "../../etc/passwd",
    "/",
    "?x=1",
    "#",
    "%00",
    "%2F..%2F",
    "<script>alert(1)</script>",
    "\u202eevil\u202c",
    "\u200b",
    "\ufeff",
    "e\u0301" * 40,
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\U0001f600" * 50,
    "\x00",
    "a\x00b",
    "\x1b[31mred",
    "\r\n",
    "line\nbreak",
    "\x7f",
    "\u2028",
    ",",
    " , ",
    ",,,",
    "alice@example.com",
    "ALICE@EXAMPLE.COM ",
    "bob@example.com",
    "+14155550134",
    "whatsapp:+14155550134",
    "(415) 555-0134",
    "+",
    "whatsapp:",
    "9" * 21,
    "1e9",
    "NaN",
    "Infinity",
    "CH" + "0" * 32,
    "rec" + "A" * 14,
]


def long_values() -> st.SearchStrategy[str]:
    return st.builds(
        lambda unit, count: unit * count,
        st.sampled_from(["a", "\u00e9", "\U0001f600", "'", "\x00", "9", "e\u0301", " "]),
        st.integers(10_000, 12_000),
    )


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(ADVERSARIAL),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
        st.text(alphabet=string.printable, max_size=300),
        long_values(),
    )


def maybe(values: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    """A value, or None for a parameter left out."""
    return st.one_of(st.none(), values)


def with_known(*known: str) -> st.SearchStrategy[str]:
    """Hostile values, and values the service knows (so deeper code is reached)."""
    return st.one_of(st.sampled_from(list(known)), hostile_text())


WORKERS = with_known(ALICE, BOB, CAROL, " Alice@Example.com ", "nobody@example.com")
CUSTOMER_IDS = with_known(*KNOWN_IDS, "cust-carol")
ADDRESSES = with_known(
    *KNOWN_NUMBERS,
    *(f"whatsapp:{n}" for n in KNOWN_NUMBERS[:3]),
    "+14155550134, +14155550160",
    "+15005550006",
)
PAGE_SIZES = st.one_of(
    st.sampled_from(
        [
            "-1",
            "0",
            "1",
            "30",
            "200",
            "201",
            "1e9",
            "abc",
            "99999999999999999999",
            "999999999999999999999",
            "+5",
            " 7 ",
            "07",
            "5.0",
            "\u0663",
            "\U0001d7d7",
            "\u00b2",
            "1_000",
            "0x10",
            "--1",
            "-0",
        ]
    ),
    st.integers(-(10**30), 10**30).map(str),
    hostile_text(),
)
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        hostile_text(),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
CHANNEL = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(
            st.sampled_from(["sms", "whatsapp", "email", "SMS", " Email ", "chat", "", "fax"]),
            JSON_VALUES,
        ),
        "value": st.one_of(
            st.sampled_from(
                [
                    "+14155550199",
                    "(415) 555-0198",
                    "whatsapp:+14155550197",
                    "x@example.com",
                    "not an email",
                    "a @b.c",
                    "+1" + "9" * 300,
                    "@",
                ]
            ),
            JSON_VALUES,
        ),
    },
)
CHANNELS = st.one_of(
    st.lists(CHANNEL, max_size=4).map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.sampled_from(
        [
            "[",
            "{",
            "[{]",
            '[{"type": "sms"}]',
            "null",
            "1e999",
            '"sms"',
            "[[]]",
            '[{"type": "sms", "value": "' + "9" * 300 + '"}]',
            "NaN",
            "[1, 2",
            "\u0000",
            "[" * 20 + "]" * 20,
        ]
    ),
    hostile_text(),
)
LIST_FIELDS = {"Location", "Worker", "PageSize", "Query", "NextPageToken", "Anchor"}


# --- /callbacks/crm -------------------------------------------------------------------------


def assert_only_own_customers(
    deployment: Deployment, worker: str | None, body: Any, label: str
) -> None:
    """A 200 list holds only customers the requesting worker owns."""
    owners = deployment.owners()
    listed = [c["customer_id"] for c in body["objects"]["customers"]]
    assert worker is not None, label
    mine = worker_key(worker)
    foreign = [c for c in listed if owners.get(c) != mine]
    assert not foreign, f"{label}: {worker!r} was shown others' customers {foreign}"


@HOSTILE
@given(
    worker=maybe(WORKERS),
    page_size=maybe(PAGE_SIZES),
    query=maybe(hostile_text()),
    token=maybe(hostile_text()),
    anchor=maybe(with_known(*KNOWN_IDS)),
)
def test_customers_list(
    deployment: Deployment,
    worker: str | None,
    page_size: str | None,
    query: str | None,
    token: str | None,
    anchor: str | None,
) -> None:
    params = {
        "Location": "GetCustomersList",
        "Worker": worker,
        "PageSize": page_size,
        "Query": query,
        "NextPageToken": token,
        "Anchor": anchor,
    }
    response = call(deployment, "crm", params)
    body = check(response, f"list {params!r:.200}", fields=LIST_FIELDS, allowed={200, 400})
    if response.status_code == 200:
        assert body["objects"]["searchable"] is True
        assert_only_own_customers(deployment, worker, body, "list")


@HOSTILE
@given(worker=maybe(WORKERS), customer_id=maybe(CUSTOMER_IDS))
def test_customer_details(
    deployment: Deployment, worker: str | None, customer_id: str | None
) -> None:
    params = {
        "Location": "GetCustomerDetailsByCustomerId",
        "Worker": worker,
        "CustomerId": customer_id,
    }
    response = call(deployment, "crm", params)
    body = check(
        response, f"details {params!r:.200}", fields={"CustomerId"}, allowed={200, 400, 404}
    )
    if response.status_code == 200:
        assert body["objects"]["customer"]["customer_id"] == (customer_id or "").strip()


@settings(HOSTILE, max_examples=50)
@given(worker=maybe(WORKERS), name=maybe(hostile_text()), channels=maybe(CHANNELS))
@example(worker=ALICE, name="Bad JSON", channels="[{]")
@example(
    worker=ALICE,
    name="Formula ') , TRUE()) & ('",
    channels='[{"type": "sms", "value": "+14155550188"}]',
)
def test_create_customer(
    deployment: Deployment, worker: str | None, name: str | None, channels: str | None
) -> None:
    params = {
        "Location": "CreateCustomer",
        "Worker": worker,
        "DisplayName": name,
        "Channels": channels,
    }
    response = call(deployment, "crm", params)
    body = check(
        response,
        f"create {params!r:.200}",
        fields={"Worker", "DisplayName", "Channels"},
        allowed={200, 400},
    )
    if response.status_code == 400 and body["error"]["field"] != "Worker":
        assert isinstance(body.get("friendly_error_message"), str)
    if response.status_code == 200:
        created = body["objects"]["customer"]
        assert deployment.owners()[created["customer_id"]] == worker_key(worker or "")


@FEW
@given(worker=maybe(WORKERS), customer_id=maybe(CUSTOMER_IDS))
def test_delete_customer_stays_refused(
    deployment: Deployment, worker: str | None, customer_id: str | None
) -> None:
    params = {"Location": "DeleteCustomer", "Worker": worker, "CustomerId": customer_id}
    response = call(deployment, "crm", params)
    check(response, f"delete {params!r:.200}", fields={"Worker", "CustomerId"}, allowed={400, 403})


@FEW
@given(
    callback=st.sampled_from(["crm", "outgoing-conversation", "templates"]),
    location=maybe(hostile_text()),
)
def test_unknown_location(deployment: Deployment, callback: str, location: str | None) -> None:
    params = {"Location": location, "Worker": ALICE}
    response = call(deployment, callback, params)
    body = check(
        response, f"{callback} Location={location!r:.100}", fields={"Location"}, allowed={400, 422}
    )
    if response.status_code == 422:
        assert body["error"]["field"] == "Location"


# --- page sizes and page tokens ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("page_size", "status", "count"),
    [
        ("-1", 200, 1),
        ("0", 200, 1),
        ("1", 200, 1),
        ("5", 200, 5),
        ("99999999999999999999", 200, 200),
        ("1e9", 400, None),
        ("abc", 400, None),
        ("999999999999999999999", 400, None),
        ("5.0", 400, None),
        ("", 200, 30),
    ],
)
def test_page_size_is_clamped_or_refused(
    deployment: Deployment, page_size: str, status: int, count: int | None
) -> None:
    """`count` is the page size the value means (the list may be shorter)."""
    params = {"Location": "GetCustomersList", "Worker": ALICE, "PageSize": page_size}
    response = call(deployment, "crm", params)
    body = check(response, f"PageSize={page_size}", fields={"PageSize"}, allowed={status})
    if status == 400:
        assert body["error"]["field"] == "PageSize"
    else:
        assert count is not None
        alices = sum(1 for owner in deployment.owners().values() if owner == ALICE)
        assert len(body["objects"]["customers"]) == min(count, alices)
        assert ("next_page_token" in body["objects"]) == (alices > count)


def first_page(deployment: Deployment, worker: str, query: str | None = None) -> Any:
    params = {"Location": "GetCustomersList", "Worker": worker, "PageSize": "3", "Query": query}
    body = check(call(deployment, "crm", params), "first page", allowed={200})
    assert "next_page_token" in body["objects"], body
    return body["objects"]


def test_a_real_page_token_continues_the_list(deployment: Deployment) -> None:
    first = first_page(deployment, ALICE)
    params = {
        "Location": "GetCustomersList",
        "Worker": ALICE,
        "PageSize": "3",
        "NextPageToken": first["next_page_token"],
    }
    second = check(call(deployment, "crm", params), "second page", allowed={200})["objects"]
    seen = {c["customer_id"] for c in first["customers"]}
    assert second["customers"]
    assert not seen & {c["customer_id"] for c in second["customers"]}


@HOSTILE
@given(data=st.data())
def test_a_tampered_page_token_is_refused(deployment: Deployment, data: st.DataObject) -> None:
    token = first_page(deployment, ALICE)["next_page_token"]
    position = data.draw(st.integers(0, len(token) - 1), label="position")
    replacement = data.draw(
        st.sampled_from(string.ascii_letters + string.digits + "-_.=+/ %\x00\u00e9").filter(
            lambda c: c != token[position]
        ),
        label="replacement",
    )
    tampered = token[:position] + replacement + token[position + 1 :]
    assume(tampered.strip() != token)  # a space at either end is trimmed: not a change
    params = {
        "Location": "GetCustomersList",
        "Worker": ALICE,
        "PageSize": "3",
        "NextPageToken": tampered,
    }
    body = check(
        call(deployment, "crm", params),
        f"tampered token {tampered!r}",
        fields={"NextPageToken"},
        allowed={400},
    )
    assert body["error"]["field"] == "NextPageToken"


@pytest.mark.parametrize("where", ["last character", "whole signature", "made up"])
def test_a_page_token_with_non_ascii_characters_is_refused(
    deployment: Deployment, where: str
) -> None:
    token = first_page(deployment, ALICE)["next_page_token"]
    payload, signature = token.split(".")
    edited = {
        "last character": token[:-1] + "\u00e9",
        "whole signature": payload + "." + "\u00e9" * len(signature),
        "made up": "\u00e9.\u00e9",
    }[where]
    params = {"Location": "GetCustomersList", "Worker": ALICE, "NextPageToken": edited}
    body = check(call(deployment, "crm", params), where, fields={"NextPageToken"}, allowed={400})
    assert body["error"]["field"] == "NextPageToken"


@pytest.mark.parametrize(
    "edit",
    ["drop last char", "append char", "drop signature", "swap halves", "double", "empty payload"],
)
def test_an_edited_page_token_is_refused(deployment: Deployment, edit: str) -> None:
    token = first_page(deployment, ALICE)["next_page_token"]
    payload, signature = token.split(".")
    edited = {
        "drop last char": token[:-1],
        "append char": token + "A",
        "drop signature": payload + ".",
        "swap halves": f"{signature}.{payload}",
        "double": f"{token}{token}",
        "empty payload": f".{signature}",
    }[edit]
    params = {"Location": "GetCustomersList", "Worker": ALICE, "NextPageToken": edited}
    body = check(call(deployment, "crm", params), edit, fields={"NextPageToken"}, allowed={400})
    assert body["error"]["field"] == "NextPageToken"


@HOSTILE
@given(other=with_known(BOB, CAROL, "nobody@example.com", "alice@example.org", "alice", "@"))
@example(other=BOB)
def test_another_workers_page_token_never_reveals_their_customers(
    deployment: Deployment, other: str
) -> None:
    """Worker B presenting worker A's token gets 400, never A's customers."""
    if worker_key(other) == worker_key(ALICE):
        return  # the same worker in another case: not another worker
    token = first_page(deployment, ALICE)["next_page_token"]
    params = {
        "Location": "GetCustomersList",
        "Worker": other,
        "PageSize": "3",
        "NextPageToken": token,
    }
    response = call(deployment, "crm", params)
    body = check(response, f"{other!r} with Alice's token", fields={"Worker", "NextPageToken"})
    assert response.status_code == 400, f"{other!r} used Alice's token: {response.text[:300]}"
    alice_ids = {c[0] for c in ALICE_CUSTOMERS}
    assert not any(customer_id in response.text for customer_id in alice_ids)
    if other.strip() and len(other) < 256 and other.isprintable():
        assert body["error"]["field"] == "NextPageToken"


def test_a_page_token_of_another_search_is_refused(deployment: Deployment) -> None:
    token = first_page(deployment, ALICE, query="e")["next_page_token"]
    for query in (None, "a", "E ", "é"):
        params = {
            "Location": "GetCustomersList",
            "Worker": ALICE,
            "Query": query,
            "NextPageToken": token,
        }
        response = call(deployment, "crm", params)
        if query is not None and fold(query) == "e":
            check(response, "same search, other spelling", allowed={200})
            continue
        body = check(response, f"token of 'e' with {query!r}", allowed={400})
        assert body["error"]["field"] == "NextPageToken"


def test_bobs_own_token_still_works_for_bob(deployment: Deployment) -> None:
    params = {"Location": "GetCustomersList", "Worker": BOB, "PageSize": "1"}
    first = check(call(deployment, "crm", params), "bob first", allowed={200})["objects"]
    token = first["next_page_token"]
    params["NextPageToken"] = token
    second = check(call(deployment, "crm", params), "bob second", allowed={200})
    assert_only_own_customers(deployment, BOB, second, "bob second")


# --- outgoing conversation, templates, routing ------------------------------------------------


@HOSTILE
@given(worker=maybe(WORKERS), channel=maybe(with_known("sms", "whatsapp", "SMS", "chat", "email")))
def test_proxy_address(deployment: Deployment, worker: str | None, channel: str | None) -> None:
    params = {
        "Location": "GetProxyAddress",
        "Worker": worker,
        "ChannelType": channel,
        "CustomerId": "cust-ana",
        "ChannelValue": "+14155550134",
    }
    response = call(deployment, "outgoing-conversation", params)
    body = check(
        response,
        f"proxy {params!r:.200}",
        fields={"Worker", "ChannelType"},
        allowed={200, 400, 422},
    )
    if response.status_code == 422:
        assert body["error"]["field"] == "ChannelType"


@HOSTILE
@given(worker=maybe(WORKERS), customer_id=maybe(CUSTOMER_IDS), conversation=maybe(hostile_text()))
def test_templates(
    deployment: Deployment, worker: str | None, customer_id: str | None, conversation: str | None
) -> None:
    params = {
        "Location": "GetTemplatesByCustomerId",
        "Worker": worker,
        "CustomerId": customer_id,
        "ConversationSid": conversation,
    }
    response = call(deployment, "templates", params)
    body = check(
        response,
        f"templates {params!r:.200}",
        fields={"Worker", "CustomerId"},
        allowed={200, 400, 404},
    )
    if response.status_code == 200:
        assert isinstance(body, list)
        for category in body:
            assert category["templates"], category


@HOSTILE
@given(
    conversation=maybe(with_known("CH" + "0" * 32, "CH" + "F" * 32, "CHxyz", "ch" + "a" * 32)),
    address=maybe(ADDRESSES),
    proxy=maybe(hostile_text()),
    real_conversation=st.booleans(),
)
def test_routing(
    deployment: Deployment,
    conversation: str | None,
    address: str | None,
    proxy: str | None,
    real_conversation: bool,
) -> None:
    if real_conversation:
        conversation = deployment.twilio.create_conversation("routing")
    params = {
        "ConversationSid": conversation,
        "MessagingBinding.Address": address,
        "MessagingBinding.ProxyAddress": proxy,
    }
    response = call(deployment, "routing", params)
    check(
        response,
        f"routing {params!r:.200}",
        fields={"ConversationSid", "MessagingBinding.Address"},
        allowed={200, 400, 404},
    )


# --- the Conversations webhooks ------------------------------------------------------------

WEBHOOK_FIELDS = {
    "EventType",
    "MessagingBinding.Address",
    "Identity",
    "ConversationSid",
    "ParticipantSid",
    "ClientIdentity",
    "Body",
    "Author",
}
EVENT_TYPES = with_known(
    "onConversationAdd",
    "onParticipantAdded",
    "onMessageAdded",
    "onMessageAdd",
    "onConversationAdded",
    "onconversationadd",
    "onDeliveryUpdated",
)


@HOSTILE
@given(event=maybe(EVENT_TYPES), address=maybe(ADDRESSES))
def test_webhook_event_types(
    deployment: Deployment, event: str | None, address: str | None
) -> None:
    params = {"EventType": event, "MessagingBinding.Address": address}
    response = call(deployment, "twilio-conversations", params)
    body = check(response, f"webhook {params!r:.200}", fields=WEBHOOK_FIELDS, allowed={200, 400})
    known = {"onConversationAdd", "onParticipantAdded", "onMessageAdded", "onMessageAdd"}
    if response.status_code == 200 and (event or "").strip() not in known:
        assert body == {}, "an unknown event is acknowledged with {}"


@HOSTILE
@given(address=maybe(ADDRESSES))
def test_conversation_add(deployment: Deployment, address: str | None) -> None:
    params = {"EventType": "onConversationAdd", "MessagingBinding.Address": address}
    response = call(deployment, "twilio-conversations", params)
    body = check(response, f"conversation add {address!r:.100}", fields=WEBHOOK_FIELDS)
    # A pre-event: anything but 200 would block the conversation; bad input is ignored.
    if response.status_code == 200 and body:
        assert isinstance(body["friendly_name"], str)
        assert isinstance(json.loads(body["attributes"]), dict)


@HOSTILE
@given(
    address=maybe(ADDRESSES),
    identity=maybe(hostile_text()),
    conversation=maybe(with_known("CH" + "0" * 32)),
    participant=maybe(with_known("MB" + "0" * 32)),
    real=st.booleans(),
)
def test_participant_added(
    deployment: Deployment,
    address: str | None,
    identity: str | None,
    conversation: str | None,
    participant: str | None,
    real: bool,
) -> None:
    if real:
        conversation, participant = (
            deployment.conversation_sid,
            deployment.customer_participant_sid,
        )
    params = {
        "EventType": "onParticipantAdded",
        "MessagingBinding.Address": address,
        "Identity": identity,
        "ConversationSid": conversation,
        "ParticipantSid": participant,
    }
    response = call(deployment, "twilio-conversations", params)
    check(
        response,
        f"participant added {params!r:.200}",
        fields=WEBHOOK_FIELDS,
        allowed={200, 400, 404},
    )


@HOSTILE
@given(
    client=maybe(hostile_text()),
    body=maybe(with_known("STOP", " stop ", "START", "Stop\n", "STOP please", "UNSUBSCRIBE")),
    author=maybe(with_known(STOPPER_SMS, f"whatsapp:{STOPPER_SMS}", "+14155550189")),
)
def test_message_added(
    deployment: Deployment, client: str | None, body: str | None, author: str | None
) -> None:
    params = {
        "EventType": "onMessageAdded",
        "ClientIdentity": client,
        "Body": body,
        "Author": author,
    }
    response = call(deployment, "twilio-conversations", params)
    check(response, f"message added {params!r:.200}", fields=WEBHOOK_FIELDS, allowed={200, 400})


@HOSTILE
@given(
    client=maybe(with_known(ALICE)),
    conversation=maybe(ADDRESSES | with_known("CH" + "0" * 32, "CH/../..", "CH?x=1", "CH#x")),
    which=st.sampled_from(["given", "real", "opted out"]),
)
def test_message_add(
    deployment: Deployment, client: str | None, conversation: str | None, which: str
) -> None:
    if which == "real":
        conversation = deployment.conversation_sid
    elif which == "opted out":
        conversation = deployment.opted_out_conversation_sid
    params = {
        "EventType": "onMessageAdd",
        "ClientIdentity": client,
        "ConversationSid": conversation,
    }
    response = call(deployment, "twilio-conversations", params)
    body = check(
        response, f"message add {params!r:.200}", fields=WEBHOOK_FIELDS, allowed={200, 400, 403}
    )
    if response.status_code == 403:
        assert body.get("reason") == "customer_opted_out"


# --- JSON bodies (signed through bodySHA256) with values of every JSON type -----------------

ROUTE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "crm": ("Location", "Worker", "PageSize", "Query", "NextPageToken", "Anchor", "CustomerId",
            "DisplayName", "Channels"),
    "outgoing-conversation": ("Location", "Worker", "ChannelType"),
    "routing": ("ConversationSid", "MessagingBinding.Address"),
    "templates": ("Location", "Worker", "CustomerId"),
    "twilio-conversations": ("EventType", "MessagingBinding.Address", "Identity",
                             "ConversationSid", "ParticipantSid", "ClientIdentity", "Body",
                             "Author"),
}  # fmt: skip
BASE_PARAMS: dict[str, dict[str, Any]] = {
    "crm": {"Location": "GetCustomersList", "Worker": ALICE},
    "outgoing-conversation": {"Location": "GetProxyAddress", "Worker": ALICE, "ChannelType": "sms"},
    "routing": {"ConversationSid": "CH" + "0" * 32, "MessagingBinding.Address": "+14155550134"},
    "templates": {
        "Location": "GetTemplatesByCustomerId",
        "Worker": ALICE,
        "CustomerId": "cust-ana",
    },
    "twilio-conversations": {"EventType": "onConversationAdd"},
}


@HOSTILE
@given(data=st.data())
def test_json_bodies_with_values_of_any_type(deployment: Deployment, data: st.DataObject) -> None:
    callback = data.draw(st.sampled_from(sorted(ROUTE_PARAMETERS)), label="callback")
    body = dict(BASE_PARAMS[callback])
    names = data.draw(
        st.lists(st.sampled_from(ROUTE_PARAMETERS[callback]), min_size=1, max_size=3, unique=True),
        label="names",
    )
    for name in names:
        body[name] = data.draw(JSON_VALUES, label=name)
    response = call_json(deployment, callback, body)
    check(
        response,
        f"{callback} JSON {body!r:.200}",
        fields=set(ROUTE_PARAMETERS[callback]),
        allowed={200, 400, 403, 404, 422},
    )


@pytest.mark.parametrize(
    "body",
    ["", "not json", "[]", "[1, 2]", "\"text\"", "42", "null", "{", "{\"Location\": }",
     "\ufeff{}"],
)  # fmt: skip
def test_malformed_json_bodies(deployment: Deployment, body: str) -> None:
    response = call_json(deployment, "crm", body)
    check(response, f"JSON body {body!r}", allowed={400})


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_deeply_nested_json_body_is_a_400(deployment: Deployment, depth: int, signed: bool) -> None:
    body = "[" * depth + "]" * depth
    if signed:
        response = call_json(deployment, "crm", body)
    else:
        response = requests.post(
            deployment.service.url("/callbacks/crm"),
            data=body.encode(),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
    label = f"{depth}-deep JSON body, {'signed' if signed else 'unsigned'}"
    check(response, label, allowed={400}, signed=signed)


@pytest.mark.parametrize("depth", [1_000, 5_000])
def test_deeply_nested_channels_is_a_400_naming_channels(
    deployment: Deployment, depth: int
) -> None:
    params = {
        "Location": "CreateCustomer",
        "Worker": ALICE,
        "DisplayName": "Deep Nesting",
        "Channels": "[" * depth + "]" * depth,
    }
    body = check(call(deployment, "crm", params), f"{depth}-deep Channels", allowed={400})
    assert body["error"]["field"] == "Channels"
    assert isinstance(body.get("friendly_error_message"), str)


# --- separators-only addresses, conversations Twilio cannot list, SIDs with URL characters ---


@pytest.mark.parametrize("address", [",", " , ", ",,,", ", ,"])
def test_routing_an_address_list_of_separators_only_is_a_400(
    deployment: Deployment, address: str
) -> None:
    conversation = deployment.twilio.create_conversation("separators")
    params = {"ConversationSid": conversation, "MessagingBinding.Address": address}
    body = check(call(deployment, "routing", params), f"routing {address!r}", allowed={400})
    assert body["error"]["field"] == "MessagingBinding.Address"


@pytest.mark.parametrize(
    "conversation", ["CH" + "0" * 32, "CHnotreal", "CH/../..", "CH?x=1", "CH#x", "\u00fc"]
)
def test_message_add_for_a_conversation_twilio_cannot_list_lets_the_message_through(
    deployment: Deployment, conversation: str
) -> None:
    """onMessageAdd is a pre-event: a failed opt-out lookup must not block the rep's message."""
    params = {"EventType": "onMessageAdd", "ClientIdentity": ALICE, "ConversationSid": conversation}
    response = call(deployment, "twilio-conversations", params)
    check(response, f"onMessageAdd {conversation!r}", fields=WEBHOOK_FIELDS, allowed={200, 400})


@pytest.mark.parametrize("status", [404, 429, 500, 503])
def test_message_add_when_twilio_fails_to_list_participants_lets_the_message_through(
    deployment: Deployment, status: int
) -> None:
    deployment.twilio.fail_next(method="GET", path=r"/Participants$", status=status)
    params = {
        "EventType": "onMessageAdd",
        "ClientIdentity": ALICE,
        "ConversationSid": deployment.conversation_sid,
    }
    response = call(deployment, "twilio-conversations", params)
    body = check(response, f"onMessageAdd, Twilio {status}", allowed={200})
    assert body == {}


@pytest.mark.parametrize(
    "participant",
    [
        "MB?x=1",
        "MB#x",
        "../../Conversations",
        "MB%2F..",
        "MB x",
        "MB/" + "0" * 32,
    ],
)
def test_participant_sid_with_url_characters_is_not_a_5xx(
    deployment: Deployment, participant: str
) -> None:
    params = {
        "EventType": "onParticipantAdded",
        "MessagingBinding.Address": "+14155550134",
        "ConversationSid": deployment.conversation_sid,
        "ParticipantSid": participant,
    }
    response = call(deployment, "twilio-conversations", params)
    check(
        response, f"ParticipantSid {participant!r}", fields=WEBHOOK_FIELDS, allowed={200, 400, 404}
    )


# --- methods, paths and headers ---------------------------------------------------------------

CALLBACKS = ("crm", "outgoing-conversation", "routing", "templates", "twilio-conversations")
METHODS = ("GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "path", [*(f"/callbacks/{c}" for c in CALLBACKS), "/tasks/refresh", "/healthz", "/"]
)
def test_every_method_on_every_path_answers_json(
    deployment: Deployment, path: str, method: str
) -> None:
    if path == "/healthz" and method in ("GET", "HEAD"):
        return  # served (see test_privacy)
    response = requests.request(method, deployment.service.url(path), timeout=30)
    TALLY.record(f"{method} {path}", response.status_code)
    assert response.status_code in (404, 405), response.text[:300]
    if method != "HEAD":
        check(response, f"{method} {path}", allowed={404, 405}, signed=False)


HOSTILE_PATHS = [
    "/callbacks/crm/../templates",
    "//callbacks//crm",
    "/callbacks/./crm",
    "/frontline/frontline/callbacks/crm",
    "/callbacks/crm%00",
    "/callbacks/%2e%2e/tasks/refresh",
    "/callbacks/CRM",
    "/callbacks/crm;x=1",
    "/" + "a" * 10_000,
    "/callbacks/\u00e9\u202e",
    "/%ff%fe",
    "/tasks/refresh/../../callbacks/crm",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_paths_answer_json(deployment: Deployment, path: str) -> None:
    params = {"Location": "GetCustomersList", "Worker": ALICE}
    response = requests.post(
        deployment.service.url(path),
        data=params,
        headers={"X-Twilio-Signature": signature_for(deployment.service.url(path), params)},
        timeout=30,
    )
    check(response, f"POST {path[:80]}", allowed={200, 400, 403, 404, 405}, signed=False)


HEADER_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "x",
            "0/0;o=1",
            "/",
            ";",
            "a" * 8_000,
            "https, http",
            "evil.example.com:99999",
            "[::1]:80",
            "localhost:abc",
            "\u00e9\u00ff",
            "application/json; charset=\u00e9",
            "multipart/form-data; boundary=",
            "text/plain; charset=utf-7",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=200),
).filter(lambda value: not value[:1].isspace())  # HTTP clients refuse leading whitespace


@HOSTILE
@given(
    header=st.sampled_from(
        ["X-Cloud-Trace-Context", "X-Forwarded-Proto", "X-Forwarded-Host", "Content-Type"]
    ),
    value=HEADER_VALUES,
    callback=st.sampled_from(CALLBACKS),
)
def test_hostile_headers(deployment: Deployment, header: str, value: str, callback: str) -> None:
    """Signed for the local URL; a changed proxy header may well make it a 403. (Host is left
    to the HTTP servers: the local one refuses odd values itself, as Google's front end does.)"""
    path = f"/callbacks/{callback}"
    params = {"Location": "GetProxyAddress", "Worker": ALICE, "ChannelType": "sms"}
    headers = {
        "X-Twilio-Signature": signature_for(deployment.service.url(path), params),
        header: value,
    }
    response = requests.post(deployment.service.url(path), data=params, headers=headers, timeout=30)
    check(
        response,
        f"{header}: {value[:80]!r} on {path}",
        allowed={200, 400, 403, 404, 413, 422},
        signed=False,
    )


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Forwarded-Host", "evil.example.com:99999"),
        ("X-Forwarded-Host", "frontline.example.com:abc"),
        ("X-Forwarded-Host", "[::1"),
        ("X-Forwarded-Proto", "https://["),
    ],
)
def test_proxy_headers_naming_an_impossible_port_are_refused(
    deployment: Deployment, header: str, value: str
) -> None:
    """Any caller, with any signature: a 403 (or 400), not a crash."""
    response = requests.post(
        deployment.service.url("/callbacks/crm"),
        data={"Location": "GetCustomersList", "Worker": ALICE},
        headers={"X-Twilio-Signature": "forged", header: value},
        timeout=30,
    )
    check(response, f"{header}: {value}", allowed={400, 403}, signed=False)


# --- bodies the HTTP layer must turn away ------------------------------------------------------


def raw_post(
    deployment: Deployment, path: str, data: Any, content_type: str | None
) -> requests.Response:
    headers = {"X-Twilio-Signature": "forged"}
    if content_type:
        headers["Content-Type"] = content_type
    return requests.post(deployment.service.url(path), data=data, headers=headers, timeout=60)


def _chunked(first: bytes, count: int) -> Iterator[bytes]:
    yield first
    for _ in range(count):
        yield b"a" * 100_000


FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data; boundary=b"


def _parts(count: int) -> bytes:
    part = '--b\r\nContent-Disposition: form-data; name="f{}"\r\n\r\nv\r\n'
    return "".join(part.format(i) for i in range(count)).encode() + b"--b--\r\n"


RAW_BODIES: dict[str, tuple[Any, str | None]] = {
    "invalid UTF-8 in a form": (b"Location=%ff%fe&Worker=%zz&\xff=1", FORM),
    "NUL bytes in a form": (b"Location=\x00&Worker=a%00b", FORM),
    "1,500 form fields": (urlencode([(f"k{i}", "v") for i in range(1500)]), FORM),
    "multipart without boundary": (b"x=1", "multipart/form-data"),
    "truncated multipart": (
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nxx',
        MULTIPART,
    ),
    "multipart with 1,000 parts": (_parts(1000), MULTIPART),
    "multipart with 1,001 parts": (_parts(1001), MULTIPART),
    "JSON in UTF-16": ('{"Location": "x"}'.encode("utf-16"), "application/json"),
    "JSON with a bad charset": (b'{"Location": "x"}', "application/json; charset=klingon"),
    "no content type": (b"Location=GetCustomersList", None),
    "XML": (b"<Location>GetCustomersList</Location>", "text/xml"),
    "300 KB form": (b"a=" + b"a" * 300_000, FORM),
    "300 KB JSON": (b'{"a": "' + b"a" * 300_000 + b'"}', "application/json"),
}


@pytest.mark.parametrize("kind", list(RAW_BODIES))
@pytest.mark.parametrize("path", ["/callbacks/crm", "/callbacks/twilio-conversations"])
def test_malformed_request_bodies_are_refused_cleanly(
    deployment: Deployment, path: str, kind: str
) -> None:
    data, content_type = RAW_BODIES[kind]
    response = raw_post(deployment, path, data, content_type)
    check(response, f"{path}: {kind}", allowed={400, 403, 413}, signed=False)


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_chunked_body_over_the_size_limit_is_a_413(
    deployment: Deployment, content_type: str
) -> None:
    """The 256 KB limit holds when no Content-Length is sent (chunked transfer encoding)."""
    first = b'{"a": "' if content_type == "application/json" else b"a="
    response = raw_post(deployment, "/callbacks/crm", _chunked(first, 30), content_type)
    check(response, f"3 MB chunked {content_type}", allowed={413}, signed=False)


# --- the tally ---------------------------------------------------------------------------------


def test_zz_no_input_was_answered_with_a_5xx() -> None:
    """Runs last in the module: the tally of every input above."""
    print(TALLY.summary())
    assert TALLY.errors == 0, "5xx answers: " + "; ".join(TALLY.failures[:20])
