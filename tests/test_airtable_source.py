"""The Airtable module against the stand-in over HTTP: paging, changes, safe formulas, phone
numbers in any format, rate limits and failures."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contacts.model import NewCustomer
from integrations.airtable import AirtableSource
from integrations.rate_limit import RateLimiter
from service.clock import ManualClock
from service.deadline import deadline_scope
from service.errors import DependencyFailed, DependencyUnavailable
from service.settings import Settings
from standins.airtable import AirtableStandIn, Table
from tests.support import AIRTABLE_TOKEN, BASE_ID, service_env


@pytest.fixture
def source(airtable: AirtableStandIn) -> AirtableSource:
    settings = Settings.from_env(service_env(airtable.url, "http://127.0.0.1:9"))
    return AirtableSource(settings, AIRTABLE_TOKEN, RateLimiter(5))


@pytest.fixture
def customers(airtable: AirtableStandIn) -> Table:
    return airtable.table(BASE_ID, "Customers")


def add(table: Table, **fields: object) -> str:
    return str(table.create(fields)["id"])


def test_a_full_pull_of_250_customers_takes_three_list_requests(
    source: AirtableSource, airtable: AirtableStandIn, customers: Table
) -> None:
    for n in range(250):
        add(customers, name=f"Customer {n:03d}", owner="alice@example.com")
    airtable.stats.reset()
    offset, seen = None, []
    while True:
        page = source.customers_page(offset)
        seen += page.customers
        offset = page.offset
        if offset is None:
            break
    assert len({c.record_id for c in seen}) == 250
    assert airtable.stats.count(kind="list") == 3


def test_changed_since_returns_exactly_the_edited_records(
    source: AirtableSource, airtable: AirtableStandIn, customers: Table, clock: ManualClock
) -> None:
    ids = [add(customers, name=f"C{n}", owner="alice@example.com") for n in range(20)]
    clock.advance(120)
    since = clock.now()
    clock.advance(60)
    for record_id in ids[:3]:
        customers.update(record_id, {"notes": "called back"})
    changed, complete = source.customers_changed_since(since, max_pages=10)
    assert complete
    assert sorted(c.record_id for c in changed) == sorted(ids[:3])


def test_changed_since_is_deduplicated_and_reports_remaining_pages(
    source: AirtableSource, customers: Table, clock: ManualClock
) -> None:
    for n in range(150):
        add(customers, name=f"C{n}", owner="bob@example.com")
    changed, complete = source.customers_changed_since(clock.now() - timedelta(hours=1), 1)
    assert len(changed) == 100
    assert not complete
    changed, complete = source.customers_changed_since(clock.now() - timedelta(hours=1), 5)
    assert len({c.record_id for c in changed}) == 150
    assert complete


HOSTILE_WORKER = "o'brien\\\"}@example.com"
HOSTILE_TEXTS = [
    HOSTILE_WORKER,
    "') , TRUE()) & ('",
    "x' OR TRUE() OR '",
    '" & "',
    "}{owner}",
    "\\",
    "a\nb",
]


@pytest.mark.parametrize("identity", HOSTILE_TEXTS)
def test_a_hostile_worker_identity_matches_only_literally(
    source: AirtableSource, customers: Table, identity: str
) -> None:
    add(customers, name="Theirs", owner=identity)
    add(customers, name="Someone else's", owner="alice@example.com")
    found, complete = source.worker_customers(identity, max_pages=2)
    assert complete
    assert [c.display_name for c in found] == ["Theirs"]


@pytest.mark.parametrize("query", HOSTILE_TEXTS)
def test_a_hostile_search_text_matches_only_literally(
    source: AirtableSource, customers: Table, query: str
) -> None:
    add(customers, name="Ana Ruiz", owner="alice@example.com")
    add(customers, name=f"Odd {query} name", owner="alice@example.com")
    add(customers, name=f"Bob's {query}", owner="bob@example.com")
    found = source.search_customers("alice@example.com", query, limit=30)
    assert [c.display_name for c in found] == [f"Odd {query} name"]


@pytest.mark.parametrize("customer_id", ["C-1", "x' OR TRUE() OR '", "') , TRUE()) & ('"])
def test_customer_ids_match_literally(
    source: AirtableSource, customers: Table, customer_id: str
) -> None:
    add(customers, id=customer_id, name="Wanted", owner="alice@example.com")
    add(customers, id="C-2", name="Other", owner="alice@example.com")
    found = source.customer_by_id(customer_id)
    assert found is not None
    assert found.display_name == "Wanted"
    assert source.customer_by_id("C-404") is None


def test_a_record_without_id_column_is_found_by_its_record_id(
    source: AirtableSource, customers: Table
) -> None:
    record_id = add(customers, name="No id column", owner="alice@example.com")
    found = source.customer_by_id(record_id)
    assert found is not None
    assert found.customer_id == record_id


def test_a_number_typed_any_way_is_found_from_twilio_addresses(
    source: AirtableSource, customers: Table
) -> None:
    add(customers, name="Typed", sms="(415) 555-0134", owner="alice@example.com")
    add(customers, name="Dotted", whatsapp="415.555.0199", owner="bob@example.com")
    add(customers, name="Near miss", sms="+1 415 555 0135", owner="carol@example.com")
    typed = source.customers_by_number("+14155550134")
    assert [c.display_name for c in typed] == ["Typed"]
    assert typed[0].sms == "+14155550134"
    dotted = source.customers_by_number("+14155550199")
    assert [c.display_name for c in dotted] == ["Dotted"]
    assert dotted[0].whatsapp == "whatsapp:+14155550199"


def test_unparsable_numbers_are_kept_as_written(source: AirtableSource, customers: Table) -> None:
    add(customers, name="Odd", sms="ext. 12", owner="alice@example.com")
    (customer,) = source.worker_customers("alice@example.com", 1)[0]
    assert customer.sms == "ext. 12"
    assert customer.numbers("US") == []


def test_column_mapping_reads_every_column_of_the_quickstart_layout(
    source: AirtableSource, customers: Table
) -> None:
    record_id = add(
        customers,
        id="C-7",
        name="Full Record",
        sms="+14155550170",
        whatsapp="whatsapp:+14155550171",
        email="full@example.com",
        linkedin="linkedin.com/in/full",
        notes="Likes tea",
        owner="alice@example.com",
        opt_out=True,
        avatar=[{"id": "att1", "url": "https://example.com/a.png", "filename": "a.png"}],
    )
    customer = source.customer_by_id("C-7")
    assert customer is not None
    assert (customer.record_id, customer.customer_id, customer.owner) == (
        record_id,
        "C-7",
        "alice@example.com",
    )
    assert customer.whatsapp == "whatsapp:+14155550171"
    assert customer.email == "full@example.com"
    assert customer.notes == "Likes tea"
    assert customer.opt_out is True
    assert customer.avatar == "https://example.com/a.png"


def test_renamed_columns_come_from_settings(airtable: AirtableStandIn) -> None:
    table = airtable.table(BASE_ID, "People")
    table.create({"Full name": "Renamed", "Rep": "alice@example.com"})
    env = service_env(
        airtable.url,
        "http://127.0.0.1:9",
        AIRTABLE_CUSTOMERS_TABLE="People",
        AIRTABLE_FIELDS='{"customers": {"name": "Full name", "owner": "Rep"}}',
    )
    source = AirtableSource(Settings.from_env(env), AIRTABLE_TOKEN, RateLimiter(5))
    found, _ = source.worker_customers("alice@example.com", 1)
    assert [c.display_name for c in found] == ["Renamed"]


def test_create_and_opt_out_and_delete_write_to_the_table(
    source: AirtableSource, customers: Table
) -> None:
    created = source.create_customer(
        NewCustomer("New Person", "alice@example.com", sms="+14155550150", email="n@example.com")
    )
    stored = customers.get(created.record_id)
    assert stored is not None
    assert stored["fields"]["owner"] == "alice@example.com"
    assert source.set_opt_out(created.record_id, True).opt_out is True
    updated = customers.get(created.record_id)
    assert updated is not None
    assert updated["fields"]["opt_out"] is True
    source.delete_customer(created.record_id)
    assert customers.get(created.record_id) is None


def test_record_ids_ask_for_one_field_only(
    source: AirtableSource, airtable: AirtableStandIn, customers: Table
) -> None:
    ids = {add(customers, name=f"C{n}", owner="a@example.com", notes="x" * 500) for n in range(120)}
    airtable.stats.reset()
    assert source.record_ids() == ids
    assert airtable.stats.count(kind="list") == 2
    # Ids and owners only: nowhere near the 60,000 bytes of notes the records hold.
    assert airtable.stats.response_bytes < 120 * 200


def test_templates_in_table_order(source: AirtableSource, airtable: AirtableStandIn) -> None:
    templates = airtable.table(BASE_ID, "Templates")
    templates.create({"category": "Openers", "text": "Hi {{first_name}}", "whatsAppApproved": True})
    templates.create({"category": "Closing", "text": "Bye"})
    templates.create({"category": "Openers", "text": "Hello again"})
    found = source.templates()
    assert [(t.category, t.text, t.whatsapp_approved) for t in found] == [
        ("Openers", "Hi {{first_name}}", True),
        ("Closing", "Bye", False),
        ("Openers", "Hello again", False),
    ]


def test_a_burst_of_40_lookups_causes_no_429(
    source: AirtableSource, airtable: AirtableStandIn, customers: Table
) -> None:
    add(customers, id="C-1", name="One", owner="alice@example.com")
    airtable.stats.reset()
    with deadline_scope(30):
        for _ in range(40):
            assert source.customer_by_id("C-1") is not None
    assert airtable.stats.count() == 40
    assert airtable.stats.http_429 == 0


def test_a_lookup_that_cannot_get_a_slot_in_its_budget_fails_fast(
    source: AirtableSource, customers: Table
) -> None:
    add(customers, id="C-1", name="One", owner="alice@example.com")

    def ten_lookups() -> None:
        for _ in range(10):
            source.customer_by_id("C-1")

    with deadline_scope(0.5), pytest.raises(DependencyUnavailable) as raised:
        ten_lookups()
    assert raised.value.retry_after is not None


@pytest.mark.parametrize("status", [500, 502, 503])
def test_airtable_server_errors_become_503(
    source: AirtableSource, airtable: AirtableStandIn, status: int
) -> None:
    airtable.set_fault(status=status)
    with deadline_scope(2), pytest.raises(DependencyUnavailable):
        source.customer_by_id("C-1")


def test_a_429_is_retried_within_the_budget_then_fails_with_retry_after(
    source: AirtableSource, airtable: AirtableStandIn
) -> None:
    airtable.set_fault(status=429)
    with deadline_scope(1.5), pytest.raises(DependencyUnavailable) as raised:
        source.customer_by_id("C-1")
    assert raised.value.retry_after == 30
    assert airtable.stats.count() >= 2  # retried at least once before giving up


def test_a_transient_429_is_retried_and_succeeds(
    source: AirtableSource, airtable: AirtableStandIn, customers: Table
) -> None:
    add(customers, id="C-1", name="One", owner="alice@example.com")
    airtable.set_fault(status=429, count=1)
    with deadline_scope(8):
        assert source.customer_by_id("C-1") is not None


def test_a_wrong_token_is_a_502_naming_airtable(airtable: AirtableStandIn) -> None:
    settings = Settings.from_env(service_env(airtable.url, "http://127.0.0.1:9"))
    source = AirtableSource(settings, "wrong-token", RateLimiter(5))
    with pytest.raises(DependencyFailed) as raised:
        source.customer_by_id("C-1")
    assert "Airtable" in raised.value.message


def test_slow_airtable_is_abandoned_at_the_deadline(
    source: AirtableSource, airtable: AirtableStandIn
) -> None:
    airtable.set_fault(status=None, delay_seconds=3)
    with deadline_scope(1), pytest.raises(DependencyUnavailable):
        source.customer_by_id("C-1")


def test_unreachable_airtable_is_a_503(airtable: AirtableStandIn) -> None:
    settings = Settings.from_env(service_env("http://127.0.0.1:9", "http://127.0.0.1:9"))
    source = AirtableSource(settings, AIRTABLE_TOKEN, RateLimiter(5))
    with deadline_scope(2), pytest.raises(DependencyUnavailable):
        source.customer_by_id("C-1")
