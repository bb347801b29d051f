"""The shared contact cache, against the Firestore emulator and the Airtable stand-in over HTTP:
instances share snapshots, refreshes see edits, moves and deletions, one puller at a time, and a
full sync that resumes where it stopped."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from google.cloud import firestore

from cache.layout import Layout
from cache.lease import Leases
from cache.snapshots import WorkerSnapshots
from contacts.model import Customer
from service.clock import ManualClock
from standins.airtable import AirtableStandIn, Table
from tests.support import BASE_ID, RunningService

ServiceFactory = Any
ALICE = "alice@example.com"
BOB = "bob@example.com"


@pytest.fixture
def customers(airtable: AirtableStandIn) -> Table:
    return airtable.table(BASE_ID, "Customers")


def add_customers(table: Table, owner: str, count: int, prefix: str = "Customer") -> list[str]:
    return [
        str(table.create({"name": f"{prefix} {n:05d}", "owner": owner})["id"]) for n in range(count)
    ]


def list_page(service: RunningService, worker: str, **params: str) -> dict[str, Any]:
    response = service.call("crm", Location="GetCustomersList", Worker=worker, **params)
    assert response.status_code == 200, response.text
    objects: dict[str, Any] = response.json()["objects"]
    return objects


def whole_list(service: RunningService, worker: str, page_size: int = 200) -> list[str]:
    """Every customer id of a worker's list, following next_page_token."""
    names: list[str] = []
    params: dict[str, str] = {"PageSize": str(page_size)}
    while True:
        objects = list_page(service, worker, **params)
        names += [c["display_name"] for c in objects["customers"]]
        token = objects.get("next_page_token")
        if not token:
            return names
        params["NextPageToken"] = token


def details(service: RunningService, customer_id: str) -> dict[str, Any]:
    response = service.call(
        "crm", Location="GetCustomerDetailsByCustomerId", Worker=ALICE, CustomerId=customer_id
    )
    assert response.status_code == 200, response.text
    customer: dict[str, Any] = response.json()["objects"]["customer"]
    return customer


def synced(service: RunningService, clock: ManualClock) -> RunningService:
    """Run the full sync to completion, then let a refresh interval pass."""
    clock.advance(60)
    response = service.task(full=True)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok", response.text
    clock.advance(5)
    return service


def test_a_second_instance_serves_the_first_ones_snapshot_without_airtable(
    make_service: ServiceFactory, airtable: AirtableStandIn, customers: Table
) -> None:
    add_customers(customers, ALICE, 40)
    first, second = make_service(), make_service()
    assert len(whole_list(first, ALICE)) == 40
    airtable.stats.reset()
    assert len(whole_list(second, ALICE)) == 40
    assert airtable.stats.count() == 0


def test_steady_state_reads_make_no_airtable_requests(
    service: RunningService, airtable: AirtableStandIn, customers: Table, clock: ManualClock
) -> None:
    customers.create({"id": "C-1", "name": "Ana Ruiz", "sms": "+14155550134", "owner": ALICE})
    airtable.table(BASE_ID, "Templates").create({"category": "Hi", "text": "Hello {{name}}"})
    synced(service, clock)
    airtable.stats.reset()
    whole_list(service, ALICE)
    details(service, "C-1")
    service.call("templates", Location="GetTemplatesByCustomerId", Worker=ALICE, CustomerId="C-1")
    service.call(
        "twilio-conversations",
        EventType="onConversationAdd",
        **{"MessagingBinding.Address": "+14155550134"},
    )
    assert airtable.stats.count() == 0


def test_edits_moves_deletions_and_additions_show_after_one_refresh(
    make_service: ServiceFactory, airtable: AirtableStandIn, customers: Table, clock: ManualClock
) -> None:
    edited = customers.create(
        {"id": "C-1", "name": "Old Name", "sms": "+14155550101", "owner": ALICE}
    )
    moved = customers.create({"id": "C-2", "name": "Moving", "sms": "+14155550102", "owner": ALICE})
    deleted = customers.create(
        {"id": "C-3", "name": "Leaving", "sms": "+14155550103", "owner": ALICE}
    )
    customers.create({"id": "C-4", "name": "Staying", "owner": BOB})
    service = synced(make_service(FULL_SWEEP_SECONDS="60"), clock)
    other = make_service(FULL_SWEEP_SECONDS="60")
    assert whole_list(other, ALICE) == ["Leaving", "Moving", "Old Name"]

    clock.advance(120)
    customers.update(edited["id"], {"name": "New Name", "sms": "+14155550199"})
    customers.update(moved["id"], {"owner": BOB})
    customers.delete(deleted["id"])
    customers.create({"id": "C-5", "name": "Arriving", "owner": ALICE})
    clock.advance(1)
    assert service.task().json()["status"] == "ok"

    for instance in (service, other):
        assert whole_list(instance, ALICE) == ["Arriving", "New Name"]
        assert whole_list(instance, BOB) == ["Moving", "Staying"]
        assert details(instance, "C-1")["display_name"] == "New Name"
        assert details(instance, "C-2")["display_name"] == "Moving"
        gone = instance.call(
            "crm", Location="GetCustomerDetailsByCustomerId", Worker=ALICE, CustomerId="C-3"
        )
        assert gone.status_code == 404
    directory = service.directory
    assert [o.customer_id for o in directory.owners_of_address("+14155550199")] == ["C-1"]
    assert directory.owners_of_address("+14155550101") == []
    assert [o.owner for o in directory.owners_of_address("+14155550102")] == [BOB]
    assert directory.owners_of_address("+14155550103") == []


def test_deletions_arrive_through_the_webhook_without_listing_the_table(
    service: RunningService, airtable: AirtableStandIn, customers: Table, clock: ManualClock
) -> None:
    ids = add_customers(customers, ALICE, 250)
    synced(service, clock)
    clock.advance(120)
    customers.delete(ids[7])
    airtable.stats.reset()
    assert service.task().json()["kind"] == "incremental"
    assert len(whole_list(service, ALICE)) == 249
    assert airtable.stats.count(kind="list", table="Customers") == 1  # the changes, no sweep
    assert airtable.stats.count(kind="webhook") == 1  # the payloads since the last refresh


def test_without_the_webhook_scope_a_sweep_finds_deletions(
    make_service: ServiceFactory, airtable: AirtableStandIn, customers: Table, clock: ManualClock
) -> None:
    airtable.webhooks_allowed = False
    ids = add_customers(customers, ALICE, 250)
    service = synced(make_service(FULL_SWEEP_SECONDS="60"), clock)
    clock.advance(120)
    customers.delete(ids[7])
    airtable.stats.reset()
    assert service.task().json()["kind"] == "incremental+sweep"
    assert len(whole_list(service, ALICE)) == 249
    assert airtable.stats.count(kind="list", table="Customers") == 1 + 3  # changes + 3 id pages


def test_a_refresh_costs_one_list_request_per_hundred_changes(
    service: RunningService, airtable: AirtableStandIn, customers: Table, clock: ManualClock
) -> None:
    ids = add_customers(customers, ALICE, 300)
    synced(service, clock)
    clock.advance(120)
    for record_id in ids[:150]:
        customers.update(record_id, {"notes": "edited"})
    airtable.stats.reset()
    assert service.task().status_code == 200
    assert airtable.stats.count(kind="list", table="Customers") == 2
    assert airtable.stats.count(kind="list", table="Templates") == 1


def test_a_refresh_cut_off_midway_leaves_the_snapshot_and_watermark_untouched(
    service: RunningService, airtable: AirtableStandIn, customers: Table, clock: ManualClock
) -> None:
    ids = add_customers(customers, ALICE, 150)
    synced(service, clock)
    before = service.directory.refresher._state.get(fresh=True)
    clock.advance(120)
    for record_id in ids:
        customers.update(record_id, {"name": "Renamed " + record_id})
    airtable.set_fault(status=503, after=1)  # the second page of changes fails, retries too
    failed = service.task()
    airtable.clear_faults()
    assert failed.status_code == 503
    assert "Retry-After" in failed.headers
    assert service.directory.refresher._state.get(fresh=True).watermark == before.watermark
    # Read the snapshot directly: a callback would start a refresh of its own.
    page = service.directory.customers_page(ALICE, after=None, limit=200)
    assert [e.display_name for e in page.entries] == [f"Customer {n:05d}" for n in range(150)]
    clock.advance(60)
    assert service.task().status_code == 200
    assert all(name.startswith("Renamed ") for name in whole_list(service, ALICE))


def test_concurrent_cold_requests_across_instances_cause_one_pull(
    make_service: ServiceFactory, airtable: AirtableStandIn, customers: Table
) -> None:
    add_customers(customers, ALICE, 60)
    instances = [make_service() for _ in range(4)]
    airtable.stats.reset()
    results: list[int] = []
    lock = threading.Lock()

    def open_list(instance: RunningService) -> None:
        response = instance.call("crm", Location="GetCustomersList", Worker=ALICE, PageSize="100")
        with lock:
            results.append(len(response.json()["objects"]["customers"]))

    threads = [threading.Thread(target=open_list, args=(instances[n % 4],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [60] * 8
    assert airtable.stats.count(kind="list") == 1


def test_a_cold_worker_is_served_from_at_most_two_requests_sorted_by_name(
    service: RunningService, airtable: AirtableStandIn, customers: Table
) -> None:
    add_customers(customers, ALICE, 250)
    airtable.stats.reset()
    first = list_page(service, ALICE, PageSize="30")
    assert [c["display_name"] for c in first["customers"]] == [
        f"Customer {n:05d}" for n in range(30)
    ]
    assert airtable.stats.count() <= 2
    assert len(whole_list(service, ALICE)) == 200  # the first two pages, until the full sync
    assert airtable.stats.count() <= 2


def test_a_worker_with_20000_contacts_is_stored_in_small_documents_and_paged(
    service: RunningService,
) -> None:
    layout = Layout(
        firestore.Client(project="demo-frontline"), service.settings.firestore_collection_prefix
    )
    long_name = "Ø" * 200
    entries = [
        Customer(
            customer_id=f"C-{n:05d}",
            record_id=f"rec{n:014d}",
            display_name=f"{long_name} {n:05d}",
            owner=ALICE,
            sms=f"+1415555{n % 10000:04d}",
            email=f"person{n}@example.com",
            avatar=f"https://example.com/avatars/{n}.png",
        ).list_entry()
        for n in range(20_000)
    ]
    header = WorkerSnapshots(layout).replace(
        ALICE, entries, complete=True, pulled_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    largest = 0
    for ref in header.chunks:
        document = layout.chunk(ALICE, ref.id).get().to_dict()
        largest = max(largest, len(json.dumps(document, ensure_ascii=False).encode()))
    assert header.count == 20_000
    assert largest < 512 * 1024  # Firestore's limit is 1 MiB
    names = whole_list(service, ALICE, page_size=200)
    assert names == [e.display_name for e in entries]


def test_customers_with_huge_cells_are_synced_and_served(
    service: RunningService, customers: Table, clock: ManualClock
) -> None:
    huge = "x" * 100_000  # an Airtable long-text cell holds up to 100,000 characters
    for n in range(100):
        customers.create(
            {
                "name": f"Wide {n:03d} {huge}",
                "owner": ALICE,
                "email": f"{huge}@example.com",
                "linkedin": huge,
                "notes": huge,
            }
        )
    synced(service, clock)
    names = whole_list(service, ALICE)
    assert len(names) == 100
    assert all(name.startswith("Wide ") and len(name) <= 300 for name in names)
    first = list_page(service, ALICE, PageSize="1")["customers"][0]
    assert details(service, first["customer_id"])["display_name"] == first["display_name"]


def test_the_task_refuses_callers_without_credentials(service: RunningService) -> None:
    assert service.task(token="wrong").status_code == 403
    assert requests.post(service.url("/tasks/refresh"), timeout=10).status_code == 403


@pytest.mark.slow
def test_a_full_sync_of_10000_contacts_then_an_incremental_pull(
    service: RunningService, airtable: AirtableStandIn, customers: Table, clock: ManualClock
) -> None:
    for worker in range(50):
        add_customers(customers, f"rep{worker:02d}@example.com", 200, prefix=f"R{worker:02d}")
    airtable.stats.reset()
    synced(service, clock)
    assert airtable.stats.count(kind="list", table="Customers") == 100
    assert airtable.stats.http_429 == 0
    assert len(whole_list(service, "rep07@example.com")) == 200
    clock.advance(120)
    airtable.stats.reset()
    second = service.task()
    assert second.json()["kind"] == "incremental"
    assert airtable.stats.count(kind="list", table="Customers") == 1


def test_a_full_sync_cut_off_by_its_budget_resumes_where_it_stopped(
    make_service: ServiceFactory, airtable: AirtableStandIn, customers: Table, clock: ManualClock
) -> None:
    add_customers(customers, ALICE, 1_000)
    service = make_service(TASK_BUDGET_SECONDS="10", AIRTABLE_REQUESTS_PER_SECOND="1")
    airtable.stats.reset()
    first = service.task(full=True).json()
    assert first["status"] == "in_progress"
    assert 0 < first["pages"] < 10
    while (result := service.task().json())["status"] != "ok":
        assert result["pages"] > first["pages"]
    assert airtable.stats.count(kind="list", table="Customers") == 10  # no page pulled twice
    assert len(whole_list(service, ALICE)) == 1_000


def test_a_full_sync_whose_offset_expired_starts_over(
    make_service: ServiceFactory, airtable: AirtableStandIn, customers: Table
) -> None:
    add_customers(customers, ALICE, 600)
    service = make_service(TASK_BUDGET_SECONDS="10", AIRTABLE_REQUESTS_PER_SECOND="0.5")
    assert service.task(full=True).json()["status"] == "in_progress"
    airtable.expire_iterators()
    while service.task().json()["status"] != "ok":
        pass
    assert len(whole_list(service, ALICE)) == 600


def test_template_edits_show_after_a_refresh_and_unchanged_ones_are_not_rewritten(
    service: RunningService, airtable: AirtableStandIn, customers: Table, clock: ManualClock
) -> None:
    customers.create({"id": "C-1", "name": "Ana Ruiz", "owner": ALICE})
    templates = airtable.table(BASE_ID, "Templates")
    template = templates.create({"category": "Hi", "text": "Hello {{first_name}}"})
    synced(service, clock)
    meter = service.instance.wiring().firestore_meter

    def offered() -> list[str]:
        response = service.call(
            "templates", Location="GetTemplatesByCustomerId", Worker=ALICE, CustomerId="C-1"
        )
        return [t["content"] for c in response.json() for t in c["templates"]]

    assert offered() == ["Hello Ana"]
    clock.advance(120)
    writes = meter.writes
    assert service.task().status_code == 200
    unchanged_writes = meter.writes - writes
    clock.advance(120)
    templates.update(template["id"], {"text": "Welcome back, {{first_name}}"})
    writes = meter.writes
    assert service.task().status_code == 200
    assert meter.writes - writes == unchanged_writes + 1  # the templates document, once
    assert offered() == ["Welcome back, Ana"]


def test_a_sweep_in_progress_elsewhere_does_not_hold_up_refreshes(
    make_service: ServiceFactory, customers: Table, clock: ManualClock
) -> None:
    record = customers.create({"id": "C-1", "name": "Before", "owner": ALICE})
    service = synced(make_service(FULL_SWEEP_SECONDS="60"), clock)
    layout = Layout(
        firestore.Client(project="demo-frontline"), service.settings.firestore_collection_prefix
    )
    assert Leases(layout, clock).acquire("sweep", 3600) is not None  # another instance sweeps
    clock.advance(120)
    customers.update(record["id"], {"name": "After"})
    result = service.task().json()
    assert result["kind"] == "incremental"  # refreshed; the sweep was left to its holder
    assert whole_list(service, ALICE) == ["After"]
