"""What each callback and refresh costs in Firestore documents and Airtable requests, measured
on a warm cache. The bounds below are the figures README's cost table is built from."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from service.clock import ManualClock
from standins.airtable import AirtableStandIn
from standins.twilio import ConversationsStandIn
from tests.support import BASE_ID, RunningService

ALICE = "alice@example.com"


@pytest.fixture
def warm(service: RunningService, airtable: AirtableStandIn, clock: ManualClock) -> RunningService:
    table = airtable.table(BASE_ID, "Customers")
    for n in range(300):
        table.create(
            {"id": f"C-{n}", "name": f"Person {n:03d}", "sms": f"+1415555{n:04d}", "owner": ALICE}
        )
    airtable.table(BASE_ID, "Templates").create({"category": "Hi", "text": "Hello {{first_name}}"})
    clock.advance(60)
    assert service.task(full=True).json()["status"] == "ok"
    clock.advance(5)
    # One call of each kind first: the instance's chunk memory and state are then warm.
    for call in CALLS.values():
        call(service, "")
    return service


CALLS: dict[str, Callable[[RunningService, str], requests.Response]] = {
    "GetCustomersList (first page)": lambda s, c: s.call(
        "crm", Location="GetCustomersList", Worker=ALICE, PageSize="30"
    ),
    "GetCustomersList (search)": lambda s, c: s.call(
        "crm", Location="GetCustomersList", Worker=ALICE, Query="person 1"
    ),
    "GetCustomerDetailsByCustomerId": lambda s, c: s.call(
        "crm", Location="GetCustomerDetailsByCustomerId", Worker=ALICE, CustomerId="C-7"
    ),
    "GetTemplatesByCustomerId": lambda s, c: s.call(
        "templates", Location="GetTemplatesByCustomerId", Worker=ALICE, CustomerId="C-7"
    ),
    "GetProxyAddress": lambda s, c: s.call(
        "outgoing-conversation", Location="GetProxyAddress", Worker=ALICE, ChannelType="sms"
    ),
    "routing": lambda s, c: s.call(
        "routing",
        ConversationSid=c or "CH" + "0" * 32,
        **{"MessagingBinding.Address": "+14155550007"},
    ),
    "onConversationAdd": lambda s, c: s.call(
        "twilio-conversations",
        EventType="onConversationAdd",
        **{"MessagingBinding.Address": "+14155550007"},
    ),
}
# Upper bounds on Firestore documents read per warm callback (writes are zero).
MAX_READS = {
    "GetCustomersList (first page)": 2,
    "GetCustomersList (search)": 2,
    "GetCustomerDetailsByCustomerId": 2,
    "GetTemplatesByCustomerId": 3,
    "GetProxyAddress": 0,
    "routing": 2,
    "onConversationAdd": 3,
}


def test_warm_callbacks_read_a_few_documents_and_write_none(
    warm: RunningService, airtable: AirtableStandIn, twilio: ConversationsStandIn
) -> None:
    meter = warm.instance.wiring().firestore_meter
    rows = []
    for name, call in CALLS.items():
        conversation = twilio.create_conversation()
        reads, writes, airtable_requests = meter.reads, meter.writes, airtable.stats.count()
        assert call(warm, conversation).status_code == 200
        cost = (
            meter.reads - reads,
            meter.writes - writes,
            airtable.stats.count() - airtable_requests,
        )
        rows.append((name, *cost))
        assert cost[0] <= MAX_READS[name], (name, cost)
        assert cost[1] == 0, (name, cost)
        assert cost[2] == 0, (name, cost)
    print("\ncallback | Firestore reads | writes | Airtable requests")
    for row in rows:
        print(" | ".join(str(v) for v in row))


def test_a_refresh_with_k_changes_costs_about_four_writes_per_change(
    warm: RunningService, airtable: AirtableStandIn, clock: ManualClock
) -> None:
    meter = warm.instance.wiring().firestore_meter
    clock.advance(120)
    reads, writes = meter.reads, meter.writes
    assert warm.task().status_code == 200
    idle = (meter.reads - reads, meter.writes - writes)
    table = airtable.table(BASE_ID, "Customers")
    clock.advance(120)
    for record in table.records()[:10]:
        table.update(record["id"], {"sms": "+1212555" + record["fields"]["id"][2:].zfill(4)})
    reads, writes = meter.reads, meter.writes
    assert warm.task().status_code == 200
    changed = (meter.reads - reads, meter.writes - writes)
    print(f"\nrefresh with no change: {idle[0]} reads, {idle[1]} writes")
    print(f"refresh with 10 changed numbers: {changed[0]} reads, {changed[1]} writes")
    assert idle[1] <= 6  # lease, state and templates
    # Per change: its customer document, its listing and two number-index entries; plus the
    # worker's snapshot (one chunk and the header), the state, the templates and the lease.
    assert changed[1] <= 10 * 4 + 12
