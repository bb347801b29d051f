"""The Twilio Conversations stand-in, exercised over HTTP through the real twilio helper library."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from standins.twilio import ConversationsStandIn, TwilioApiError, load_spec
from standins.twilio.render import CONVERSATION_SCHEMA, MESSAGE_SCHEMA, PARTICIPANT_SCHEMA
from standins.twilio.spec import Spec

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token"
ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
REPO = Path(__file__).resolve().parents[2]
CREDENTIAL_ARGS = ("--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN)


@pytest.fixture(scope="session")
def spec() -> Spec:
    return load_spec()


@pytest.fixture(scope="module")
def running(spec: Spec) -> Iterator[ConversationsStandIn]:
    with ConversationsStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, spec=spec) as s:
        yield s


@pytest.fixture
def standin(running: ConversationsStandIn) -> ConversationsStandIn:
    running.reset()
    return running


def make_client(standin: ConversationsStandIn, token: str = AUTH_TOKEN, timeout: float = 3) -> Any:
    client = Client(ACCOUNT_SID, token, http_client=TwilioHttpClient(timeout=timeout))
    client.conversations.base_url = standin.base_url
    return client


@pytest.fixture
def client(standin: ConversationsStandIn) -> Any:
    return make_client(standin)


def raw(standin: ConversationsStandIn, method: str, path: str, **kwargs: Any) -> requests.Response:
    """A request made without the helper library, to see exactly what goes over the wire."""
    kwargs.setdefault("auth", (ACCOUNT_SID, AUTH_TOKEN))
    return requests.request(method, f"{standin.base_url}{path}", timeout=5, **kwargs)


def assert_sid(value: str, prefix: str) -> None:
    assert re.fullmatch(prefix + r"[0-9a-f]{32}", value), value


# Conversations


def test_conversation_create_fetch_update_through_the_library(
    standin: ConversationsStandIn, client: Any
) -> None:
    created = client.conversations.v1.conversations.create(friendly_name="Alice")
    assert_sid(created.sid, "CH")
    assert created.account_sid == ACCOUNT_SID
    assert created.state == "active"
    assert created.attributes == "{}"
    assert created.url == f"{standin.base_url}/v1/Conversations/{created.sid}"
    assert created.links["participants"] == f"{created.url}/Participants"

    updated = client.conversations.v1.conversations(created.sid).update(
        friendly_name="Alice Smith", attributes=json.dumps({"customer_id": "rec1"})
    )
    assert updated.friendly_name == "Alice Smith"

    fetched = client.conversations.v1.conversations(created.sid).fetch()
    assert fetched.friendly_name == "Alice Smith"
    assert json.loads(fetched.attributes) == {"customer_id": "rec1"}
    assert standin.conversation(created.sid)["friendly_name"] == "Alice Smith"


def test_conversations_list_and_delete(standin: ConversationsStandIn, client: Any) -> None:
    sids = [standin.create_conversation(friendly_name=f"c{i}") for i in range(3)]
    listed = client.conversations.v1.conversations.list()
    assert [c.sid for c in listed] == sids

    assert client.conversations.v1.conversations(sids[0]).delete() is True
    assert [c.sid for c in client.conversations.v1.conversations.list()] == sids[1:]


def test_fetch_conversation_by_unique_name(client: Any) -> None:
    created = client.conversations.v1.conversations.create(unique_name="support-42")
    assert client.conversations.v1.conversations("support-42").fetch().sid == created.sid
    with pytest.raises(TwilioRestException) as caught:
        client.conversations.v1.conversations.create(unique_name="support-42")
    assert (caught.value.status, caught.value.code) == (409, 50353)


# Participants


def test_participant_create_fetch_update_through_the_library(
    standin: ConversationsStandIn, client: Any
) -> None:
    sid = standin.create_conversation()
    participants = client.conversations.v1.conversations(sid).participants
    created = participants.create(identity="rep@example.com")
    assert_sid(created.sid, "MB")
    assert created.conversation_sid == sid
    assert created.identity == "rep@example.com"
    assert created.attributes == "{}"
    assert created.messaging_binding is None
    assert created.date_created is not None

    attributes = {"avatar": "https://example.com/a.png", "nested": {"n": [1, 2]}}
    updated = participants(created.sid).update(attributes=json.dumps(attributes))
    assert json.loads(updated.attributes) == attributes

    fetched = participants(created.sid).fetch()
    assert json.loads(fetched.attributes) == attributes
    assert participants("rep@example.com").fetch().sid == created.sid
    assert [p["sid"] for p in standin.participants(sid)] == [created.sid]


def test_sms_participant_has_a_messaging_binding(
    standin: ConversationsStandIn, client: Any
) -> None:
    sid = standin.create_conversation()
    created = client.conversations.v1.conversations(sid).participants.create(
        messaging_binding_address="+15551230001",
        messaging_binding_proxy_address="+15559990000",
    )
    assert created.identity is None
    assert created.messaging_binding == {
        "type": "sms",
        "address": "+15551230001",
        "proxy_address": "+15559990000",
    }


def test_participant_list_follows_every_page(standin: ConversationsStandIn, client: Any) -> None:
    sid = standin.create_conversation()
    expected = [standin.add_participant(sid, identity=f"rep{i}")["sid"] for i in range(23)]

    listed = client.conversations.v1.conversations(sid).participants.list(page_size=5)

    assert [p.sid for p in listed] == expected
    pages = [r for r in standin.requests if r.method == "GET"]
    assert len(pages) == math.ceil(23 / 5)
    assert all(r.status == 200 for r in pages)


def test_list_response_has_twilio_paging_meta(standin: ConversationsStandIn) -> None:
    sid = standin.create_conversation()
    for i in range(3):
        standin.add_participant(sid, identity=f"rep{i}")
    path = f"/v1/Conversations/{sid}/Participants"

    first = raw(standin, "GET", path, params={"PageSize": 2}).json()
    meta = first["meta"]
    assert meta["key"] == "participants"
    assert (meta["page"], meta["page_size"]) == (0, 2)
    assert meta["first_page_url"] == f"{standin.base_url}{path}?PageSize=2&Page=0"
    assert meta["previous_page_url"] is None
    assert len(first["participants"]) == 2

    second = requests.get(meta["next_page_url"], auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).json()
    assert [p["identity"] for p in second["participants"]] == ["rep2"]
    assert second["meta"]["next_page_url"] is None
    assert second["meta"]["previous_page_url"] is not None


def test_duplicate_identity_is_a_409(standin: ConversationsStandIn, client: Any) -> None:
    sid = standin.create_conversation()
    client.conversations.v1.conversations(sid).participants.create(identity="rep@example.com")

    with pytest.raises(TwilioRestException) as caught:
        client.conversations.v1.conversations(sid).participants.create(identity="rep@example.com")

    assert (caught.value.status, caught.value.code) == (409, 50433)
    assert len(standin.participants(sid)) == 1


def test_duplicate_binding_is_a_409(standin: ConversationsStandIn, client: Any) -> None:
    first, second = standin.create_conversation(), standin.create_conversation()
    standin.add_participant(first, address="+15551230001", proxy_address="+15559990000")

    for sid in (first, second):  # same conversation, and the same pair in another one
        with pytest.raises(TwilioRestException) as caught:
            client.conversations.v1.conversations(sid).participants.create(
                messaging_binding_address="+15551230001",
                messaging_binding_proxy_address="+15559990000",
            )
        assert (caught.value.status, caught.value.code) == (409, 50416)
        assert first in caught.value.msg


def test_concurrent_adds_of_one_identity_let_exactly_one_through(
    standin: ConversationsStandIn,
) -> None:
    sid = standin.create_conversation()
    path = f"/v1/Conversations/{sid}/Participants"

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(
                lambda _: raw(standin, "POST", path, data={"Identity": "rep"}).status_code, range(8)
            )
        )

    assert sorted(statuses) == [201] + [409] * 7
    assert len(standin.participants(sid)) == 1


def test_removing_a_participant_frees_its_binding(
    standin: ConversationsStandIn, client: Any
) -> None:
    sid = standin.create_conversation()
    participant = standin.add_participant(sid, address="+15551230001", proxy_address="+15559990000")
    participants = client.conversations.v1.conversations(sid).participants
    assert participants(participant["sid"]).delete() is True

    again = participants.create(
        messaging_binding_address="+15551230001", messaging_binding_proxy_address="+15559990000"
    )
    assert again.sid != participant["sid"]


def test_direct_add_participant_enforces_conflicts_and_is_not_recorded(
    standin: ConversationsStandIn,
) -> None:
    sid = standin.create_conversation(friendly_name="direct")
    standin.add_participant(sid, identity="rep@example.com", attributes='{"a": 1}')

    with pytest.raises(TwilioApiError) as caught:
        standin.add_participant(sid, identity="rep@example.com")

    assert (caught.value.status, caught.value.code) == (409, 50433)
    assert standin.requests == []


# Messages


def test_messages_create_and_list(standin: ConversationsStandIn, client: Any) -> None:
    sid = standin.create_conversation()
    rep = standin.add_participant(sid, identity="rep@example.com")
    messages = client.conversations.v1.conversations(sid).messages

    sent = messages.create(author="rep@example.com", body="Hello")
    messages.create(body="Second")

    assert_sid(sent.sid, "IM")
    assert (sent.index, sent.participant_sid) == (0, rep["sid"])
    listed = messages.list()
    assert [(m.body, m.author) for m in listed] == [
        ("Hello", "rep@example.com"),
        ("Second", "system"),
    ]


# Errors


def test_unknown_conversation_and_participant_are_404(
    standin: ConversationsStandIn, client: Any
) -> None:
    missing = "CH" + "f" * 32
    with pytest.raises(TwilioRestException) as caught:
        client.conversations.v1.conversations(missing).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)

    sid = standin.create_conversation()
    with pytest.raises(TwilioRestException) as caught:
        client.conversations.v1.conversations(sid).participants("MB" + "f" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)

    with pytest.raises(TwilioRestException) as caught:
        client.conversations.v1.conversations(missing).participants.create(identity="rep")
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_wrong_token_is_a_401_with_twilios_body(standin: ConversationsStandIn) -> None:
    sid = standin.create_conversation()
    with pytest.raises(TwilioRestException) as caught:
        make_client(standin, token="wrong").conversations.v1.conversations(sid).fetch()
    assert (caught.value.status, caught.value.code) == (401, 20003)

    response = raw(standin, "GET", f"/v1/Conversations/{sid}", auth=None)
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_unknown_parameter_is_rejected(standin: ConversationsStandIn) -> None:
    sid = standin.create_conversation()
    response = raw(
        standin, "POST", f"/v1/Conversations/{sid}/Participants", data={"Identiy": "rep"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 20001
    assert "Identiy" in body["message"]
    assert standin.participants(sid) == []


def test_value_against_the_spec_schema_is_rejected(standin: ConversationsStandIn) -> None:
    sid = standin.create_conversation()
    path = f"/v1/Conversations/{sid}/Participants"
    bad_role = raw(standin, "POST", path, data={"Identity": "rep", "RoleSid": "RL123"})
    bad_json = raw(standin, "POST", path, data={"Identity": "rep", "Attributes": "{oops"})
    assert (bad_role.status_code, bad_json.status_code) == (400, 400)
    assert bad_json.json()["code"] == 50304
    assert standin.participants(sid) == []


def test_paths_and_methods_outside_the_spec(standin: ConversationsStandIn) -> None:
    unknown = raw(standin, "GET", "/v1/Conversationz")
    wrong_method = raw(standin, "PUT", "/v1/Conversations")
    not_modelled = raw(standin, "GET", "/v1/Credentials")
    assert (unknown.status_code, unknown.json()["code"]) == (404, 20404)
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, 20004)
    assert not_modelled.status_code == 501
    assert set(not_modelled.json()) == {"code", "message", "more_info", "status"}


# The spec's schemas


def test_responses_carry_every_property_of_the_spec_schema(
    standin: ConversationsStandIn, spec: Spec
) -> None:
    sid = standin.create_conversation()
    path = f"/v1/Conversations/{sid}"
    created = raw(standin, "POST", f"{path}/Participants", data={"Identity": "rep"}).json()
    fetched = raw(standin, "GET", f"{path}/Participants/{created['sid']}").json()
    listed = raw(standin, "GET", f"{path}/Participants").json()["participants"]
    message = raw(standin, "POST", f"{path}/Messages", data={"Body": "hi"}).json()
    conversation = raw(standin, "GET", path).json()

    participant_keys = set(spec.properties(PARTICIPANT_SCHEMA))
    assert "messaging_binding" in participant_keys
    for body in (created, fetched, *listed):
        assert set(body) == participant_keys
    assert set(message) == set(spec.properties(MESSAGE_SCHEMA))
    assert set(conversation) == set(spec.properties(CONVERSATION_SCHEMA))

    assert_sid(created["sid"], "MB")
    assert_sid(message["sid"], "IM")
    assert_sid(conversation["sid"], "CH")
    for body in (created, message, conversation):
        assert ISO_DATE.match(body["date_created"])
        assert body["url"].startswith(f"{standin.base_url}/v1/Conversations/{sid}")


# Fault injection and recording


def test_fail_next_answers_a_twilio_error_then_recovers(
    standin: ConversationsStandIn, client: Any
) -> None:
    sid = standin.create_conversation()
    participants = client.conversations.v1.conversations(sid).participants
    standin.fail_next(method="POST", path=r"/Participants$", status=503, count=2)

    for _ in range(2):
        with pytest.raises(TwilioRestException) as caught:
            participants.create(identity="rep")
        assert (caught.value.status, caught.value.code) == (503, 20503)
    assert participants.list() == []  # a GET is not matched
    assert participants.create(identity="rep").identity == "rep"


def test_fail_next_with_a_chosen_code_and_message(
    standin: ConversationsStandIn, client: Any
) -> None:
    sid = standin.create_conversation()
    standin.fail_next(method="GET", path=sid + "$", status=429, code=20429, message="Too many")
    with pytest.raises(TwilioRestException) as caught:
        client.conversations.v1.conversations(sid).fetch()
    assert (caught.value.status, caught.value.code) == (429, 20429)
    assert "Too many" in caught.value.msg


def test_delay_next_trips_a_client_timeout_and_still_takes_effect(
    standin: ConversationsStandIn,
) -> None:
    sid = standin.create_conversation()
    impatient = make_client(standin, timeout=0.3)
    standin.delay_next(method="POST", path=r"/Participants$", seconds=1.0)

    with pytest.raises(requests.exceptions.Timeout):
        impatient.conversations.v1.conversations(sid).participants.create(identity="rep")

    assert standin.requests[-1].status is None  # still being held
    assert standin.wait_idle(timeout=5)
    assert standin.requests[-1].status == 201
    assert [p["identity"] for p in standin.participants(sid)] == ["rep"]


def test_requests_are_recorded(standin: ConversationsStandIn, client: Any) -> None:
    sid = standin.create_conversation()
    participants = client.conversations.v1.conversations(sid).participants
    created = participants.create(identity="rep", attributes="{}")
    participants(created.sid).update(attributes='{"x": 1}')
    with pytest.raises(TwilioRestException):
        participants.create(identity="rep")

    path = f"/v1/Conversations/{sid}/Participants"
    assert [(r.method, r.path, r.params, r.status) for r in standin.requests] == [
        ("POST", path, {"Identity": "rep", "Attributes": "{}"}, 201),
        ("POST", f"{path}/{created.sid}", {"Attributes": '{"x": 1}'}, 200),
        ("POST", path, {"Identity": "rep"}, 409),
    ]
    assert all("Authorization" not in r.headers for r in standin.requests)


def test_reset_forgets_everything(standin: ConversationsStandIn, client: Any) -> None:
    sid = standin.create_conversation()
    client.conversations.v1.conversations(sid).fetch()
    standin.fail_next(method=None, path=".", status=500)

    standin.reset()

    assert standin.requests == []
    with pytest.raises(TwilioApiError):
        standin.conversation(sid)
    assert client.conversations.v1.conversations.list() == []


# Command line


def test_command_line_serves_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "standins.twilio", "--port", "0", *CREDENTIAL_ARGS],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url
        response = requests.get(
            f"{url}/v1/Conversations", auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5
        )
        assert response.json()["conversations"] == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
