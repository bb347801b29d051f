"""Failing dependencies, injected at the real parts: Firestore paused or killed and restarted,
Airtable failing, slow, rate limited or unreachable, Twilio failing or timing out. Each outcome
is specified: served (stale or directly from Airtable), 503 with Retry-After, or retried; and
after the faults end and one refresh runs, the cache matches the table exactly."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
from google.cloud import firestore

from cache.guard import FirestoreGuard
from service.clock import ManualClock
from service.instance import Instance
from service.settings import Settings
from standins.airtable import AirtableStandIn, Table
from standins.twilio import ConversationsStandIn
from tests.support import BASE_ID, SMS_NUMBER, RunningService, serve_instance, service_env
from tools.firestore_emulator import FirestoreEmulator

pytestmark = pytest.mark.slow  # long: faults, processes; make test still runs it

ALICE, BOB = "alice@example.com", "bob@example.com"
FAULT_SCENARIOS: list[str] = []


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Deployment:
    service: RunningService
    airtable: AirtableStandIn
    twilio: ConversationsStandIn
    emulator: FirestoreEmulator | None
    clock: ManualClock
    breaker_time: FakeMonotonic

    @property
    def customers(self) -> Table:
        return self.airtable.table(BASE_ID, "Customers")

    def call(self, callback: str, **params: str) -> requests.Response:
        return self.service.call(callback, **params)

    def sync(self) -> None:
        self.clock.advance(60)
        response = self.service.task(full=True)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "ok", response.text
        self.clock.advance(5)


def deploy(
    airtable: AirtableStandIn,
    twilio: ConversationsStandIn,
    clock: ManualClock,
    emulator: FirestoreEmulator | None,
) -> Deployment:
    breaker_time = FakeMonotonic()
    env = service_env(airtable.url, twilio.base_url, FULL_SWEEP_SECONDS="60")
    instance = Instance(
        Settings.from_env(env), clock=clock, firestore_guard=FirestoreGuard(monotonic=breaker_time)
    )
    instance.wiring()  # its Firestore client binds to FIRESTORE_EMULATOR_HOST now
    table = airtable.table(BASE_ID, "Customers")
    for n in range(40):
        table.create(
            {"id": f"C-{n}", "name": f"Person {n:02d}", "sms": f"+1415555{n:04d}",
             "owner": ALICE if n % 2 else BOB}
        )  # fmt: skip
    airtable.table(BASE_ID, "Templates").create({"category": "Hi", "text": "Hello {{first_name}}"})
    return Deployment(serve_instance(instance), airtable, twilio, emulator, clock, breaker_time)


@pytest.fixture
def deployment(
    airtable: AirtableStandIn, twilio: ConversationsStandIn, clock: ManualClock
) -> Iterator[Deployment]:
    """A service on the shared Firestore emulator."""
    deployed = deploy(airtable, twilio, clock, None)
    yield deployed
    deployed.service.stop()


@pytest.fixture
def isolated(
    airtable: AirtableStandIn,
    twilio: ConversationsStandIn,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Deployment]:
    """A service on a Firestore emulator of its own, so the test can pause or kill it."""
    emulator = FirestoreEmulator().start()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
    warm_up(emulator)
    deployed = deploy(airtable, twilio, clock, emulator)
    yield deployed
    deployed.service.stop()
    assert deployed.emulator is not None
    deployed.emulator.stop()


def warm_up(emulator: FirestoreEmulator) -> None:
    """The emulator's first requests are slow (its JVM warms up); make them before the test."""
    client = firestore.Client(project="demo-frontline")
    client.collection("warm-up").document("x").get(timeout=60)


def whole_list(service: RunningService, worker: str) -> list[str]:
    ids: list[str] = []
    params = {"PageSize": "7"}
    while True:
        response = service.call("crm", Location="GetCustomersList", Worker=worker, **params)
        assert response.status_code == 200, response.text
        objects = response.json()["objects"]
        ids += [c["customer_id"] for c in objects["customers"]]
        if not objects.get("next_page_token"):
            return ids
        params["NextPageToken"] = objects["next_page_token"]


def assert_cache_matches_table(deployment: Deployment) -> None:
    """Every worker's list, every customer's details and the number index agree with the table."""
    expected: dict[str, list[str]] = defaultdict(list)
    for record in deployment.customers.records():
        fields = record["fields"]
        expected[fields["owner"]].append(fields.get("id") or record["id"])
    for owner, ids in expected.items():
        listed = whole_list(deployment.service, owner)
        assert sorted(listed) == sorted(ids), owner  # nothing lost
        assert len(listed) == len(set(listed)), owner  # nothing listed twice
    directory = deployment.service.directory
    for record in deployment.customers.records():
        fields = record["fields"]
        customer_id = fields.get("id") or record["id"]
        customer = directory.customer(customer_id)
        assert (customer.display_name, customer.owner) == (fields["name"], fields["owner"])
        if "sms" in fields:
            owners = directory.owners_of_address(fields["sms"])
            assert [o.customer_id for o in owners] == [customer_id]


def route(deployment: Deployment, address: str) -> tuple[requests.Response, str]:
    conversation = deployment.twilio.create_conversation()
    response = deployment.call(
        "routing", ConversationSid=conversation,
        **{"MessagingBinding.Address": address, "MessagingBinding.ProxyAddress": SMS_NUMBER},
    )  # fmt: skip
    return response, conversation


def served_callbacks(deployment: Deployment) -> None:
    """The callbacks a rep and Twilio make, each expected to succeed."""
    first = deployment.call("crm", Location="GetCustomersList", Worker=ALICE, PageSize="5")
    assert first.status_code == 200, first.text
    assert [c["customer_id"] for c in first.json()["objects"]["customers"]] == [
        "C-1", "C-3", "C-5", "C-7", "C-9"
    ]  # fmt: skip
    details = deployment.call(
        "crm", Location="GetCustomerDetailsByCustomerId", Worker=ALICE, CustomerId="C-3"
    )
    assert details.json()["objects"]["customer"]["display_name"] == "Person 03"
    templates = deployment.call(
        "templates", Location="GetTemplatesByCustomerId", Worker=ALICE, CustomerId="C-3"
    )
    assert templates.json()[0]["templates"][0]["content"] == "Hello Person"
    response, conversation = route(deployment, "+14155550003")
    assert response.status_code == 200, response.text
    assert [p["identity"] for p in deployment.twilio.participants(conversation)] == [ALICE]
    named = deployment.call(
        "twilio-conversations", EventType="onConversationAdd",
        **{"MessagingBinding.Address": "+14155550003"},
    )  # fmt: skip
    assert named.json()["friendly_name"] == "Person 03"


def paging_without_firestore(deployment: Deployment) -> None:
    """Both paging styles continue within Airtable's first page; a page beyond it is a 503
    to retry, never a list that silently ends early."""
    alice = [f"C-{n}" for n in range(1, 40, 2)]  # Person 01, 03, … 39
    assert whole_list(deployment.service, ALICE) == alice
    first = deployment.call("crm", Location="GetCustomersList", Worker=ALICE, PageSize="7")
    assert [c["customer_id"] for c in first.json()["objects"]["customers"]] == alice[:7]
    anchored = deployment.call(
        "crm", Location="GetCustomersList", Worker=ALICE, PageSize="7", Anchor=alice[6]
    )
    assert [c["customer_id"] for c in anchored.json()["objects"]["customers"]] == alice[7:14]

    carol = "carol@example.com"
    for n in range(110):
        deployment.customers.create({"id": f"K-{n:03d}", "name": f"Carol {n:03d}", "owner": carol})
    params = {"PageSize": "50"}
    seen: list[str] = []
    for _ in range(2):
        page = deployment.call("crm", Location="GetCustomersList", Worker=carol, **params)
        assert page.status_code == 200, page.text
        seen += [c["customer_id"] for c in page.json()["objects"]["customers"]]
        params["NextPageToken"] = page.json()["objects"]["next_page_token"]
    assert seen == [f"K-{n:03d}" for n in range(100)]
    beyond = deployment.call("crm", Location="GetCustomersList", Worker=carol, **params)
    assert beyond.status_code == 503, beyond.text
    assert "Retry-After" in beyond.headers


def test_firestore_paused_callbacks_are_answered_from_airtable_directly(
    isolated: Deployment,
) -> None:
    deployment = isolated
    assert deployment.emulator is not None
    deployment.sync()
    deployment.emulator.pause()
    try:
        deployment.airtable.stats.reset()
        served_callbacks(deployment)
        # At most two Airtable requests per callback (five callbacks above).
        assert deployment.airtable.stats.count() <= 10
        refresh = deployment.service.task()
        assert refresh.status_code == 503
        assert "Retry-After" in refresh.headers
        # A burst on one instance: answered or 503, never more than one Airtable request a
        # second from it (every instance falls back at once in an outage).
        deployment.airtable.stats.reset()
        with ThreadPoolExecutor(max_workers=6) as pool:
            burst = list(pool.map(lambda n: deployment.call(
                "crm", Location="GetCustomerDetailsByCustomerId", Worker=ALICE, CustomerId=f"C-{n}"
            ), range(6)))  # fmt: skip
        assert {r.status_code for r in burst} <= {200, 503}
        assert max(deployment.airtable.stats.per_second().values()) == 1
        paging_without_firestore(deployment)
    finally:
        deployment.emulator.resume()
    deployment.breaker_time.now += 10
    deployment.airtable.stats.reset()
    served_callbacks(deployment)
    assert deployment.airtable.stats.count() == 0  # back on the cache
    FAULT_SCENARIOS.append("Firestore paused")


def test_firestore_killed_and_restarted_empty_is_rebuilt_by_one_full_sync(
    isolated: Deployment,
) -> None:
    deployment = isolated
    assert deployment.emulator is not None
    deployment.sync()
    port = deployment.emulator.port
    deployment.emulator.stop()
    served_callbacks(deployment)
    deployment.emulator = FirestoreEmulator(port=port).start()
    warm_up(deployment.emulator)
    deployment.breaker_time.now += 10
    deployment.clock.advance(120)
    deployment.customers.update(
        next(r["id"] for r in deployment.customers.records() if r["fields"]["id"] == "C-1"),
        {"name": "Person 01 renamed"},
    )
    # The state went with the data, so the task starts a full sync; the client's connection
    # comes back on gRPC's reconnect schedule, so the scheduler's next calls are what heal it.
    deployment.clock.advance(60)
    for _ in range(60):
        deployment.breaker_time.now += 10
        if deployment.service.task().status_code == 200:
            break
    while (result := deployment.service.task().json())["status"] != "ok":
        assert result["status"] == "in_progress"
    assert_cache_matches_table(deployment)
    FAULT_SCENARIOS.append("Firestore killed and restarted empty")


@pytest.mark.parametrize(
    ("fault", "task_status"),
    [
        ({"status": 500}, 503),
        ({"status": 503}, 503),
        ({"status": 429}, 503),
        # Slower than a refresh started by a callback may take; the task has minutes.
        ({"status": None, "delay_seconds": 5.0}, 200),
    ],
)
def test_airtable_failing_keeps_the_cache_serving_and_loses_nothing(
    deployment: Deployment, fault: dict[str, Any], task_status: int
) -> None:
    deployment.sync()
    deployment.clock.advance(120)  # the next callback finds the cache due for a refresh
    records = {r["fields"]["id"]: r["id"] for r in deployment.customers.records()}
    deployment.customers.update(records["C-3"], {"name": "Person 03 edited"})
    deployment.customers.update(records["C-5"], {"owner": BOB})
    deployment.customers.delete(records["C-7"])
    deployment.customers.create(
        {"id": "C-99", "name": "Newcomer", "sms": "+14155550099", "owner": ALICE}
    )
    deployment.airtable.set_fault(**fault)
    try:
        listed = deployment.call("crm", Location="GetCustomersList", Worker=ALICE, PageSize="5")
        assert listed.status_code == 200  # served stale: the refresh failed quietly
        assert "C-7" in [c["customer_id"] for c in listed.json()["objects"]["customers"]]
        refresh = deployment.service.task()
        assert refresh.status_code == task_status
        if task_status == 503:
            assert "Retry-After" in refresh.headers
        created = deployment.call(
            "crm", Location="CreateCustomer", Worker=ALICE, DisplayName="Slow One", Channels="[]"
        )
        assert created.status_code == task_status
    finally:
        deployment.airtable.clear_faults()
    deployment.clock.advance(120)
    assert deployment.service.task().status_code == 200
    assert_cache_matches_table(deployment)
    FAULT_SCENARIOS.append(f"Airtable {fault}")


def test_airtable_slower_than_the_budget_serves_stale_or_503_and_loses_nothing(
    deployment: Deployment,
) -> None:
    deployment.sync()
    deployment.clock.advance(120)
    records = {r["fields"]["id"]: r["id"] for r in deployment.customers.records()}
    deployment.customers.update(records["C-3"], {"name": "Person 03 edited"})
    deployment.airtable.set_fault(status=None, delay_seconds=12.0)  # past the 8 s budget
    try:
        listed = deployment.call("crm", Location="GetCustomersList", Worker=ALICE, PageSize="5")
        assert listed.status_code == 200, listed.text  # served stale
        names = [c["display_name"] for c in listed.json()["objects"]["customers"]]
        assert "Person 03" in names
        created = deployment.call(
            "crm", Location="CreateCustomer", Worker=ALICE, DisplayName="Late One", Channels="[]"
        )
        assert created.status_code == 503, created.text
        assert "Retry-After" in created.headers
    finally:
        deployment.airtable.clear_faults()
    # Airtable may still create the record after we gave up; the next refresh picks it up.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(
        r["fields"].get("name") == "Late One" for r in deployment.customers.records()
    ):
        time.sleep(0.5)
    deployment.clock.advance(120)
    assert deployment.service.task().status_code == 200
    assert_cache_matches_table(deployment)
    FAULT_SCENARIOS.append("Airtable slower than the time budget")


def test_airtable_unreachable_with_a_warm_cache_serves_it_and_loses_nothing(
    deployment: Deployment,
) -> None:
    deployment.sync()
    before = whole_list(deployment.service, ALICE)
    port = urlparse(deployment.airtable.url).port
    deployment.clock.advance(120)  # every callback finds the cache due for a refresh
    deployment.airtable.stop()
    try:
        served_callbacks(deployment)
        assert whole_list(deployment.service, ALICE) == before
        refresh = deployment.service.task()
        assert refresh.status_code == 503
        assert "Retry-After" in refresh.headers
        created = deployment.call(
            "crm", Location="CreateCustomer", Worker=ALICE, DisplayName="Nobody", Channels="[]"
        )
        assert created.status_code == 503
    finally:
        deployment.airtable.start(port=port or 0)
    deployment.customers.update(
        next(r["id"] for r in deployment.customers.records() if r["fields"]["id"] == "C-1"),
        {"name": "Person 01 renamed"},
    )
    deployment.clock.advance(120)
    assert deployment.service.task().status_code == 200
    assert_cache_matches_table(deployment)
    FAULT_SCENARIOS.append("Airtable unreachable, warm cache")


def test_airtable_unreachable_before_the_first_sync_is_a_503(deployment: Deployment) -> None:
    deployment.airtable.stop()
    response = deployment.call("crm", Location="GetCustomersList", Worker=ALICE)
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert response.json()["error"]["code"] == "unavailable"
    FAULT_SCENARIOS.append("Airtable unreachable, cold cache")


def test_an_opt_out_that_airtable_could_not_take_is_taken_on_twilios_retry(
    deployment: Deployment,
) -> None:
    deployment.sync()
    stop = {"EventType": "onMessageAdded", "ConversationSid": "CH" + "1" * 32,
            "Author": "+14155550003", "Body": "STOP"}  # fmt: skip
    deployment.airtable.set_fault(status=503)
    assert deployment.call("twilio-conversations", **stop).status_code == 503
    deployment.airtable.clear_faults()
    assert deployment.call("twilio-conversations", **{**stop, "RetryCount": "1"}).status_code == 200
    record = next(r for r in deployment.customers.records() if r["fields"]["id"] == "C-3")
    assert record["fields"]["opt_out"] is True
    assert deployment.service.directory.customer("C-3").opt_out is True
    FAULT_SCENARIOS.append("Airtable failing during an opt-out")


def test_twilio_failing_or_timing_out_on_routing_is_a_503_and_the_retry_adds_once(
    deployment: Deployment,
) -> None:
    deployment.sync()
    conversation = deployment.twilio.create_conversation()
    params = {"ConversationSid": conversation, "MessagingBinding.Address": "+14155550003"}
    deployment.twilio.fail_next(method="POST", path=r"/Participants$", status=500)
    assert deployment.call("routing", **params).status_code == 503
    deployment.twilio.delay_next(method="POST", path=r"/Participants$", seconds=5.0)
    timed_out = deployment.call("routing", **params)
    assert timed_out.status_code == 503
    assert "Retry-After" in timed_out.headers
    deployment.twilio.wait_idle()  # the slow request still went through at Twilio
    assert deployment.call("routing", **params).status_code == 200  # 409: already added
    assert [p["identity"] for p in deployment.twilio.participants(conversation)] == [ALICE]
    FAULT_SCENARIOS.append("Twilio 5xx, timeout and 409 on routing")


def test_twilio_failing_on_a_participant_update_is_a_503(deployment: Deployment) -> None:
    deployment.sync()
    conversation = deployment.twilio.create_conversation()
    participant = deployment.twilio.add_participant(
        conversation, address="+14155550003", proxy_address=SMS_NUMBER
    )
    deployment.twilio.fail_next(method="GET", path=r"/Participants/", status=503)
    response = deployment.call(
        "twilio-conversations", EventType="onParticipantAdded", ConversationSid=conversation,
        ParticipantSid=participant["sid"], **{"MessagingBinding.Address": "+14155550003"},
    )  # fmt: skip
    assert response.status_code == 503
    FAULT_SCENARIOS.append("Twilio 5xx on a participant update")


def test_report_fault_scenarios_survived() -> None:
    print(
        f"\nfailing dependencies: {len(FAULT_SCENARIOS)} fault scenarios survived, 0 contacts lost"
    )
    assert len(FAULT_SCENARIOS) >= 10
