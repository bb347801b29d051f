"""The five Frontline callbacks over HTTP with signed requests, the Firestore emulator, the
Airtable stand-in and the Twilio Conversations stand-in. Every reply is checked against the
JSON schema of its shape (tests/schemas)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from service.clock import ManualClock
from standins.airtable import AirtableStandIn, Table
from standins.twilio import ConversationsStandIn
from tests.support import BASE_ID, SMS_NUMBER, WHATSAPP_NUMBER, RunningService

ServiceFactory = Any
ALICE = "alice@example.com"
BOB = "bob@example.com"
SCHEMAS = Path(__file__).parent / "schemas"


def check(response: requests.Response, schema: str, status: int = 200) -> Any:
    """Assert the status and that the body matches tests/schemas/<schema>.json."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    jsonschema.validate(body, json.loads((SCHEMAS / f"{schema}.json").read_text()))
    return body


@pytest.fixture
def customers(airtable: AirtableStandIn) -> Table:
    table = airtable.table(BASE_ID, "Customers")
    rows = [
        {"id": "C-1", "name": "Ana Ruiz", "sms": "(415) 555-0134", "email": "ana@example.com",
         "owner": ALICE, "avatar": "https://example.com/ana.png", "notes": "Prefers mornings",
         "linkedin": "linkedin.com/in/ana"},
        {"id": "C-2", "name": "Mariana Li", "whatsapp": "whatsapp:+14155550142", "owner": ALICE},
        {"id": "C-3", "name": "Juan Anaya", "sms": "+14155550143", "owner": BOB},
        {"id": "C-4", "name": "Zoe Quinn", "sms": "415.555.0144", "email": "zoe@example.com",
         "owner": ALICE},
    ]  # fmt: skip
    for row in rows:
        table.create(row)
    templates = airtable.table(BASE_ID, "Templates")
    template_rows: list[dict[str, object]] = [
        {
            "category": "Openers",
            "text": "Hi {{first_name}}, {{owner}} here.",
            "whatsAppApproved": True,
        },
        {"category": "Openers", "text": "Your e-mail is {{email}}?"},
        {"category": "Closing", "text": "Thanks, {{Name}}!", "whatsAppApproved": True},
        {"category": "Empty for some", "text": "About {{notes}}"},
        {"category": "Closing", "text": "Bye {{name}, see you"},  # malformed: left out
        {"category": "Closing", "text": "Bye {{}} and {{ name }}"},  # malformed: left out
        {"category": "Closing", "text": "Long {{first_name}} " + "x" * 1_600},  # over 1,600
    ]
    for template in template_rows:
        templates.create(template)
    return table


@pytest.fixture
def synced(service: RunningService, customers: Table, clock: ManualClock) -> RunningService:
    clock.advance(60)
    assert service.task(full=True).json()["status"] == "ok"
    clock.advance(5)
    return service


def customers_list(service: RunningService, worker: str = ALICE, **params: str) -> Any:
    response = service.call("crm", Location="GetCustomersList", Worker=worker, **params)
    return check(response, "customer_list")["objects"]


def details(service: RunningService, customer_id: str, worker: str = ALICE) -> requests.Response:
    return service.call(
        "crm", Location="GetCustomerDetailsByCustomerId", Worker=worker, CustomerId=customer_id
    )


# CRM: the list


def test_the_list_holds_only_the_workers_customers_by_name(synced: RunningService) -> None:
    objects = customers_list(synced)
    assert [c["display_name"] for c in objects["customers"]] == [
        "Ana Ruiz",
        "Mariana Li",
        "Zoe Quinn",
    ]
    assert objects["customers"][0]["avatar"] == "https://example.com/ana.png"
    assert objects["searchable"] is True
    assert "next_page_token" not in objects


def test_page_size_arrives_as_a_string_and_is_an_integer(synced: RunningService) -> None:
    objects = customers_list(synced, PageSize="2")
    assert len(objects["customers"]) == 2
    assert objects["next_page_token"]


def ninety_five_people_synced(
    service: RunningService, table: Table, clock: ManualClock
) -> list[str]:
    """Alice's Person 000 … Person 094, fully synced; their record ids in that order."""
    ids = [table.create({"name": f"Person {n:03d}", "owner": ALICE})["id"] for n in range(95)]
    clock.advance(60)
    service.task(full=True)
    return ids


def test_95_customers_in_pages_of_30_even_when_the_list_changes_between_pages(
    service: RunningService, airtable: AirtableStandIn, clock: ManualClock
) -> None:
    table = airtable.table(BASE_ID, "Customers")
    ids = ninety_five_people_synced(service, table, clock)
    objects = customers_list(service, PageSize="30")
    seen = [c["display_name"] for c in objects["customers"]]
    objects = customers_list(service, PageSize="30", NextPageToken=objects["next_page_token"])
    seen += [c["display_name"] for c in objects["customers"]]
    token = objects["next_page_token"]
    # Between page 2 and 3: one customer added and one (not yet seen) deleted.
    clock.advance(120)
    table.create({"name": "Person 070a", "owner": ALICE})
    table.delete(ids[80])
    clock.advance(3600)
    assert service.task().status_code == 200
    pages = 2
    while token:
        objects = customers_list(service, PageSize="30", NextPageToken=token)
        seen += [c["display_name"] for c in objects["customers"]]
        token = objects.get("next_page_token")
        pages += 1
    unchanged = [f"Person {n:03d}" for n in range(95) if n != 80]
    assert pages == 4
    assert [name for name in seen if name in unchanged] == unchanged  # each once, in order
    assert "Person 080" not in seen
    assert "Person 070a" in seen


def test_anchor_paging_continues_after_an_anchor_deleted_or_reassigned_between_pages(
    service: RunningService, airtable: AirtableStandIn, clock: ManualClock
) -> None:
    table = airtable.table(BASE_ID, "Customers")
    ids = ninety_five_people_synced(service, table, clock)
    objects = customers_list(service, PageSize="30")
    seen = [c["display_name"] for c in objects["customers"]]
    anchor = objects["customers"][-1]["customer_id"]
    objects = customers_list(service, PageSize="30", Anchor=anchor)
    seen += [c["display_name"] for c in objects["customers"]]
    anchor = objects["customers"][-1]["customer_id"]
    assert anchor == ids[59]
    # Between page 2 and 3 the anchor itself is deleted; before page 4 the next anchor moves
    # to another rep.
    clock.advance(120)
    table.delete(ids[59])
    table.create({"name": "Person 070a", "owner": ALICE})
    clock.advance(3600)
    assert service.task().status_code == 200
    objects = customers_list(service, PageSize="30", Anchor=anchor)
    seen += [c["display_name"] for c in objects["customers"]]
    anchor = objects["customers"][-1]["customer_id"]
    assert anchor == ids[88]
    clock.advance(120)
    table.update(ids[88], {"owner": BOB})
    clock.advance(120)
    assert service.task().status_code == 200
    objects = customers_list(service, PageSize="30", Anchor=anchor)
    seen += [c["display_name"] for c in objects["customers"]]
    unchanged = [f"Person {n:03d}" for n in range(95)]
    assert [name for name in seen if name in unchanged] == unchanged  # each once, in order
    assert "Person 070a" in seen


def test_anchor_pagination_continues_after_the_anchor(synced: RunningService) -> None:
    first = customers_list(synced, PageSize="1")["customers"]
    rest = customers_list(synced, PageSize="5", Anchor=first[-1]["customer_id"])["customers"]
    assert [c["display_name"] for c in first + rest] == ["Ana Ruiz", "Mariana Li", "Zoe Quinn"]


def test_a_page_token_of_another_worker_is_refused(synced: RunningService) -> None:
    token = customers_list(synced, PageSize="1")["next_page_token"]
    response = synced.call(
        "crm", Location="GetCustomersList", Worker=BOB, PageSize="1", NextPageToken=token
    )
    body = check(response, "error", 400)
    assert body["error"]["field"] == "NextPageToken"


def test_search_finds_names_of_this_worker_only(synced: RunningService) -> None:
    objects = customers_list(synced, Query="ana")
    assert [c["display_name"] for c in objects["customers"]] == ["Ana Ruiz", "Mariana Li"]
    assert objects["searchable"] is True


def test_search_matches_phone_digits_in_any_format_and_email(synced: RunningService) -> None:
    assert [c["customer_id"] for c in customers_list(synced, Query="555-0144")["customers"]] == [
        "C-4"
    ]
    assert [
        c["customer_id"] for c in customers_list(synced, Query="(415) 5550134")["customers"]
    ] == ["C-1"]
    assert [c["customer_id"] for c in customers_list(synced, Query="ZOE@EXAMPLE")["customers"]] == [
        "C-4"
    ]


def test_search_results_page_like_the_list(synced: RunningService) -> None:
    first = customers_list(synced, Query="a", PageSize="1")
    second = customers_list(synced, Query="a", PageSize="1", NextPageToken=first["next_page_token"])
    assert first["customers"][0]["display_name"] == "Ana Ruiz"
    assert second["customers"][0]["display_name"] == "Mariana Li"


# CRM: details, create, delete


def test_details_of_any_customer_with_channels_links_and_notes(synced: RunningService) -> None:
    customer = check(details(synced, "C-1", worker=BOB), "customer_details")["objects"]["customer"]
    assert customer["channels"] == [{"type": "sms", "value": "+14155550134"}]
    assert {
        "type": "Email",
        "value": "mailto:ana@example.com",
        "display_name": "ana@example.com",
    } in customer["links"]
    assert {
        "type": "LinkedIn",
        "value": "https://linkedin.com/in/ana",
        "display_name": "LinkedIn",
    } in customer["links"]
    assert customer["details"]["content"] == "Prefers mornings"
    assert customer["avatar"] == "https://example.com/ana.png"
    whatsapp = check(details(synced, "C-2"), "customer_details")["objects"]["customer"]
    assert whatsapp["channels"] == [{"type": "whatsapp", "value": "whatsapp:+14155550142"}]
    assert whatsapp["links"] == []
    assert "details" not in whatsapp


def test_details_of_an_unknown_customer_is_a_404(synced: RunningService) -> None:
    body = check(details(synced, "C-404"), "error", 404)
    assert body["error"]["code"] == "not_found"


def test_create_customer_writes_to_airtable_and_lists_at_once(
    synced: RunningService, customers: Table
) -> None:
    channels = json.dumps(
        [{"type": "sms", "value": "(415) 555-0150"}, {"type": "email", "value": "new@example.com"}]
    )
    response = synced.call(
        "crm", Location="CreateCustomer", Worker=ALICE, DisplayName="Nia New", Channels=channels
    )
    created = check(response, "customer_details")["objects"]["customer"]
    assert created["channels"] == [{"type": "sms", "value": "+14155550150"}]
    stored = [r for r in customers.records() if r["fields"].get("name") == "Nia New"]
    assert stored[0]["fields"]["owner"] == ALICE
    assert stored[0]["fields"]["sms"] == "+14155550150"
    names = [c["display_name"] for c in customers_list(synced)["customers"]]
    assert "Nia New" in names


@pytest.mark.parametrize(
    ("display_name", "channels"),
    [
        ("", "[]"),
        ("Bad Channels", "not json"),
        ("Bad Channels", '{"type": "sms"}'),
        ("Bad Number", '[{"type": "sms", "value": "call me maybe"}]'),
        ("Bad Type", '[{"type": "pigeon", "value": "coo"}]'),
    ],
)
def test_create_customer_refuses_bad_input_with_a_friendly_message(
    synced: RunningService, display_name: str, channels: str
) -> None:
    response = synced.call(
        "crm", Location="CreateCustomer", Worker=ALICE, DisplayName=display_name, Channels=channels
    )
    body = check(response, "error", 400)
    assert body["friendly_error_message"]


def test_delete_customer_is_refused_unless_allowed(synced: RunningService) -> None:
    response = synced.call("crm", Location="DeleteCustomer", Worker=ALICE, CustomerId="C-4")
    assert check(response, "error", 403)["error"]["message"].count("ALLOW_CUSTOMER_DELETE") == 1


def test_delete_customer_when_allowed_removes_it_everywhere(
    make_service: ServiceFactory, customers: Table, clock: ManualClock
) -> None:
    service = make_service(ALLOW_CUSTOMER_DELETE="true")
    clock.advance(60)
    service.task(full=True)
    not_owner = service.call("crm", Location="DeleteCustomer", Worker=BOB, CustomerId="C-4")
    check(not_owner, "error", 403)
    response = service.call("crm", Location="DeleteCustomer", Worker=ALICE, CustomerId="C-4")
    check(response, "empty")
    assert not [r for r in customers.records() if r["fields"].get("id") == "C-4"]
    assert "C-4" not in [c["customer_id"] for c in customers_list(service)["customers"]]
    check(details(service, "C-4"), "error", 404)


# Outgoing conversation


def proxy(service: RunningService, channel: str, worker: str = ALICE) -> requests.Response:
    return service.call(
        "outgoing-conversation", Location="GetProxyAddress", Worker=worker,
        CustomerId="C-1", ChannelType=channel, ChannelValue="+14155550134",
    )  # fmt: skip


def test_proxy_address_for_sms_and_whatsapp(service: RunningService) -> None:
    assert check(proxy(service, "sms"), "proxy_address") == {"proxy_address": SMS_NUMBER}
    assert check(proxy(service, "whatsapp"), "proxy_address") == {
        "proxy_address": f"whatsapp:{WHATSAPP_NUMBER}"
    }


def test_proxy_address_accepts_a_whatsapp_setting_with_its_prefix(
    make_service: ServiceFactory,
) -> None:
    service = make_service(TWILIO_WHATSAPP_NUMBER="whatsapp:+14155550111")
    assert proxy(service, "whatsapp").json() == {"proxy_address": "whatsapp:+14155550111"}


def test_per_worker_proxy_numbers(make_service: ServiceFactory) -> None:
    service = make_service(PROXY_NUMBERS='{"Alice@Example.com": "+14155550177"}')
    assert proxy(service, "sms").json() == {"proxy_address": "+14155550177"}
    assert proxy(service, "whatsapp").json() == {"proxy_address": "whatsapp:+14155550177"}
    assert proxy(service, "sms", worker=BOB).json() == {"proxy_address": SMS_NUMBER}


def test_no_number_for_the_channel_is_a_403_naming_the_setting(
    make_service: ServiceFactory,
) -> None:
    service = make_service(TWILIO_WHATSAPP_NUMBER="")
    body = check(proxy(service, "whatsapp"), "error", 403)
    assert "TWILIO_WHATSAPP_NUMBER" in body["error"]["message"]


# Routing


def route(service: RunningService, conversation: str, address: str) -> requests.Response:
    return service.call(
        "routing",
        ConversationSid=conversation,
        **{"MessagingBinding.Address": address, "MessagingBinding.ProxyAddress": SMS_NUMBER},
    )


def identities(twilio: ConversationsStandIn, conversation: str) -> list[str]:
    return [p["identity"] for p in twilio.participants(conversation) if p["identity"]]


def test_a_number_typed_any_way_is_routed_to_its_owner_from_whatsapp(
    synced: RunningService, twilio: ConversationsStandIn
) -> None:
    conversation = twilio.create_conversation()
    check(route(synced, conversation, "whatsapp:+14155550134"), "empty")
    assert identities(twilio, conversation) == [ALICE]


def test_a_retried_routing_callback_succeeds(
    synced: RunningService, twilio: ConversationsStandIn
) -> None:
    conversation = twilio.create_conversation()
    check(route(synced, conversation, "+14155550143"), "empty")
    check(route(synced, conversation, "+14155550143"), "empty")
    assert identities(twilio, conversation) == [BOB]


def test_an_unknown_number_goes_to_the_default_worker(
    make_service: ServiceFactory, customers: Table, twilio: ConversationsStandIn
) -> None:
    service = make_service(DEFAULT_WORKER="desk@example.com")
    conversation = twilio.create_conversation()
    check(route(service, conversation, "+14155559999"), "empty")
    assert identities(twilio, conversation) == ["desk@example.com"]


def test_without_a_default_worker_the_choice_is_stable(
    synced: RunningService, twilio: ConversationsStandIn
) -> None:
    chosen = []
    for address in ("+14155559999", "whatsapp:+14155559999", "(415) 555-9999", "+14155559999"):
        conversation = twilio.create_conversation()
        check(route(synced, conversation, address), "empty")
        chosen += identities(twilio, conversation)
    assert len(set(chosen)) == 1
    assert chosen[0] in (ALICE, BOB)


def test_with_nobody_to_route_to_the_admin_is_told_to_set_default_worker(
    service: RunningService, twilio: ConversationsStandIn, clock: ManualClock
) -> None:
    clock.advance(60)
    service.task(full=True)
    body = check(route(service, twilio.create_conversation(), "+14155559999"), "error", 503)
    assert "DEFAULT_WORKER" in body["error"]["message"]


def test_twilio_failing_to_add_the_worker_is_a_503_so_twilio_retries(
    synced: RunningService, twilio: ConversationsStandIn
) -> None:
    conversation = twilio.create_conversation()
    twilio.fail_next(method="POST", path=r"/Participants$", status=503)
    response = route(synced, conversation, "+14155550134")
    check(response, "error", 503)
    assert "Retry-After" in response.headers


# Templates


def templates(service: RunningService, customer_id: str) -> requests.Response:
    return service.call(
        "templates", Location="GetTemplatesByCustomerId", Worker=ALICE, CustomerId=customer_id,
        ConversationSid="CH" + "0" * 32,
    )  # fmt: skip


def test_templates_are_rendered_for_the_customer_in_table_order(synced: RunningService) -> None:
    categories = check(templates(synced, "C-1"), "templates")
    assert categories == [
        {
            "display_name": "Openers",
            "templates": [
                {"content": f"Hi Ana, {ALICE} here.", "whatsAppApproved": True},
                {"content": "Your e-mail is ana@example.com?", "whatsAppApproved": False},
            ],
        },
        {
            "display_name": "Closing",
            "templates": [{"content": "Thanks, Ana Ruiz!", "whatsAppApproved": True}],
        },
        {
            "display_name": "Empty for some",
            "templates": [{"content": "About Prefers mornings", "whatsAppApproved": False}],
        },
    ]


def test_a_template_with_a_missing_merge_field_is_left_out(synced: RunningService) -> None:
    categories = check(templates(synced, "C-2"), "templates")
    contents = [t["content"] for c in categories for t in c["templates"]]
    assert contents == [f"Hi Mariana, {ALICE} here.", "Thanks, Mariana Li!"]


def test_templates_for_an_unknown_customer_is_a_404(synced: RunningService) -> None:
    check(templates(synced, "C-404"), "error", 404)


# Conversations webhooks


def webhook(service: RunningService, **params: str) -> requests.Response:
    return service.call("twilio-conversations", **params)


def test_a_new_inbound_conversation_is_named_after_the_customer(synced: RunningService) -> None:
    body = check(
        webhook(
            synced, EventType="onConversationAdd", **{"MessagingBinding.Address": "+14155550134"}
        ),
        "conversation_add",
    )
    assert body["friendly_name"] == "Ana Ruiz"
    assert json.loads(body["attributes"]) == {"avatar": "https://example.com/ana.png"}
    unknown = check(
        webhook(
            synced, EventType="onConversationAdd", **{"MessagingBinding.Address": "+14155559999"}
        ),
        "conversation_add",
    )
    assert unknown["friendly_name"] == "+14155559999"
    check(webhook(synced, EventType="onConversationAdd"), "empty")


def test_a_customer_participant_gets_its_crm_record_merged_in(
    synced: RunningService, twilio: ConversationsStandIn
) -> None:
    conversation = twilio.create_conversation()
    participant = twilio.add_participant(
        conversation, address="whatsapp:+14155550134", proxy_address=f"whatsapp:{WHATSAPP_NUMBER}",
        attributes='{"source": "inbound"}',
    )  # fmt: skip
    params = {
        "EventType": "onParticipantAdded",
        "ConversationSid": conversation,
        "ParticipantSid": participant["sid"],
        "MessagingBinding.Address": "whatsapp:+14155550134",
    }
    check(webhook(synced, **params), "empty")
    (stored,) = twilio.participants(conversation)
    assert json.loads(stored["attributes"]) == {
        "source": "inbound",
        "customer_id": "C-1",
        "display_name": "Ana Ruiz",
        "avatar": "https://example.com/ana.png",
    }
    updates = [r for r in twilio.requests if r.method == "POST" and participant["sid"] in r.path]
    check(webhook(synced, **params), "empty")
    again = [r for r in twilio.requests if r.method == "POST" and participant["sid"] in r.path]
    assert len(again) == len(updates) == 1  # nothing changed: no second update


def test_a_worker_participant_is_left_alone(
    synced: RunningService, twilio: ConversationsStandIn
) -> None:
    conversation = twilio.create_conversation()
    check(
        webhook(synced, EventType="onParticipantAdded", ConversationSid=conversation,
                ParticipantSid="MB" + "0" * 32, Identity=ALICE),
        "empty",
    )  # fmt: skip
    assert twilio.requests == []


def test_stop_opts_out_and_then_blocks_a_workers_message(
    synced: RunningService, customers: Table, twilio: ConversationsStandIn
) -> None:
    conversation = twilio.create_conversation()
    twilio.add_participant(conversation, address="+14155550134", proxy_address=SMS_NUMBER)
    twilio.add_participant(conversation, identity=ALICE)
    check(
        webhook(synced, EventType="onMessageAdded", ConversationSid=conversation,
                Author="+14155550134", Body=" stop "),
        "empty",
    )  # fmt: skip
    record = next(r for r in customers.records() if r["fields"].get("id") == "C-1")
    assert record["fields"]["opt_out"] is True
    assert "Opted out" in details(synced, "C-1").json()["objects"]["customer"]["details"]["content"]
    blocked = webhook(
        synced, EventType="onMessageAdd", ConversationSid=conversation, ClientIdentity=ALICE,
        Author=ALICE, Body="Hello?",
    )  # fmt: skip
    assert check(blocked, "error", 403)["reason"] == "customer_opted_out"
    customer_message = webhook(
        synced,
        EventType="onMessageAdd",
        ConversationSid=conversation,
        Author="+14155550134",
        Body="Hi",
    )
    check(customer_message, "empty")
    check(
        webhook(synced, EventType="onMessageAdded", ConversationSid=conversation,
                Author="+14155550134", Body="START"),
        "empty",
    )  # fmt: skip
    record = next(r for r in customers.records() if r["fields"].get("id") == "C-1")
    assert not record["fields"].get("opt_out")
    allowed = webhook(
        synced, EventType="onMessageAdd", ConversationSid=conversation, ClientIdentity=ALICE,
        Author=ALICE, Body="Welcome back",
    )  # fmt: skip
    check(allowed, "empty")


def test_an_ordinary_message_changes_nothing(
    synced: RunningService, airtable: AirtableStandIn
) -> None:
    airtable.stats.reset()
    check(
        webhook(synced, EventType="onMessageAdded", ConversationSid="CH" + "1" * 32,
                Author="+14155550134", Body="stop by tomorrow?"),
        "empty",
    )  # fmt: skip
    assert airtable.stats.count(kind="update") == 0
