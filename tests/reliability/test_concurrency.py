"""Many concurrent callbacks over several instances while a refresh applies an owner
reassignment and renames: every list walk is consistent (no unchanged customer missing or
listed twice) and the table is pulled once for the refresh interval."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from service.clock import ManualClock
from standins.airtable import AirtableStandIn
from tests.support import BASE_ID, RunningService

pytestmark = pytest.mark.slow  # long: faults, processes; make test still runs it

ServiceFactory = Any
ALICE, BOB = "alice@example.com", "bob@example.com"
INSTANCES = 4
CALLBACKS = 200


def walk(service: RunningService, worker: str, page_size: int) -> tuple[list[str], int]:
    """A rep scrolling to the end of their list: the ids seen, and how many callbacks it took."""
    seen: list[str] = []
    params = {"PageSize": str(page_size)}
    calls = 0
    while True:
        response = service.call("crm", Location="GetCustomersList", Worker=worker, **params)
        calls += 1
        assert response.status_code == 200, response.text
        objects = response.json()["objects"]
        seen += [c["customer_id"] for c in objects["customers"]]
        if not objects.get("next_page_token"):
            return seen, calls
        params["NextPageToken"] = objects["next_page_token"]


def test_200_concurrent_callbacks_during_a_refresh_and_a_reassignment(
    make_service: ServiceFactory, airtable: AirtableStandIn, clock: ManualClock
) -> None:
    table = airtable.table(BASE_ID, "Customers")
    records = {}
    for n in range(300):
        owner = ALICE if n < 150 else BOB
        records[f"C-{n}"] = table.create({"id": f"C-{n}", "name": f"P {n:03d}", "owner": owner})[
            "id"
        ]
    instances = [make_service() for _ in range(INSTANCES)]
    clock.advance(60)
    assert instances[0].task(full=True).json()["status"] == "ok"

    clock.advance(120)  # the cache is now due for a refresh
    moved = {f"C-{n}" for n in range(0, 150, 3)}  # 50 of alice's customers go to bob
    for customer_id in moved:
        table.update(records[customer_id], {"owner": BOB})
    for n in range(160, 180):
        table.update(records[f"C-{n}"], {"name": f"P {n:03d} (edited)"})
    airtable.stats.reset()

    rng = random.Random(7)
    jobs = []
    for index in range(CALLBACKS // 3):
        jobs.append(
            (instances[index % INSTANCES], rng.choice([ALICE, BOB]), rng.choice([25, 40, 60]))
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        walks = list(pool.map(lambda job: (job[1], *walk(job[0], job[1], job[2])), jobs))

    callbacks = sum(calls for _, _, calls in walks)
    assert callbacks >= CALLBACKS
    alice_kept = {f"C-{n}" for n in range(150)} - moved
    bob_kept = {f"C-{n}" for n in range(150, 300)}
    # A renamed customer changed between two pages, so it may show again under its new name;
    # nobody else may.
    renamed = {f"C-{n}" for n in range(160, 180)}
    for worker, seen, _ in walks:
        unchanged = [customer for customer in seen if customer not in renamed]
        assert len(unchanged) == len(set(unchanged)), f"{worker}: listed twice"
        kept = alice_kept if worker == ALICE else bob_kept
        assert kept <= set(seen), f"{worker}: missing {sorted(kept - set(seen))[:5]}"
        assert set(seen) <= kept | moved
    # After the dust settles, every instance shows the reassignment.
    for instance in instances:
        assert set(walk(instance, ALICE, 200)[0]) == alice_kept
        assert set(walk(instance, BOB, 200)[0]) == bob_kept | moved
    # One pull of the changes for the whole deployment, whichever instance made it.
    assert airtable.stats.count(kind="list", table="Customers") == 1
    assert airtable.stats.http_429 == 0
    print(f"\nconcurrency: {callbacks} callbacks, {INSTANCES} instances, 1 pull, 0 bad pages")
