"""The Airtable stand-in over HTTP, driven by pyairtable as the service drives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from pyairtable import Api, Table
from pyairtable import formulas as fm

from demo.generate import TEMPLATES, generate_base
from demo.generate import main as generate_main
from standins.airtable import AirtableStandIn

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "base.json"
BASE = "appStandInTests01"
FIELDS = ["id", "name", "sms", "owner", "notes", "opt_out", "rank"]
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


class FakeClock:
    """Wall clock for createdTime and last-modified times; moves only when told."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeTicks:
    """Monotonic clock for the rate limiter and list iterators; moves only when told."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ticks() -> FakeTicks:
    return FakeTicks()


@pytest.fixture
def standin(clock: FakeClock, ticks: FakeTicks) -> Iterator[AirtableStandIn]:
    with AirtableStandIn(rate_limit_per_second=None, clock=clock, monotonic=ticks) as running:
        running.table(BASE, "Customers", fields=FIELDS)
        yield running


@pytest.fixture
def api(standin: AirtableStandIn) -> Api:
    return Api("test-token", endpoint_url=standin.url, retry_strategy=None)


@pytest.fixture
def customers(api: Api) -> Table:
    return api.table(BASE, "Customers")


def http_error(call: Any, *args: Any, **kwargs: Any) -> requests.Response:
    """Run a pyairtable call that must fail; return the HTTP answer."""
    with pytest.raises(requests.HTTPError) as caught:
        call(*args, **kwargs)
    response = caught.value.response
    assert response is not None
    return response


def error_type(response: requests.Response) -> Any:
    body = response.json()
    return body["error"]["type"] if isinstance(body["error"], dict) else body["error"]


def seed(standin: AirtableStandIn, count: int) -> list[str]:
    table = standin.table(BASE, "Customers")
    owners = ("alice@example.com", "bob@example.com")
    return [
        table.create({"name": f"Customer {i:03d}", "owner": owners[i % 2], "rank": i})["id"]
        for i in range(count)
    ]


# --- listing ---------------------------------------------------------------------------------


def test_paging_250_records_takes_three_list_requests(
    standin: AirtableStandIn, customers: Table
) -> None:
    ids = seed(standin, 250)
    pages = list(customers.iterate())
    assert [len(page) for page in pages] == [100, 100, 50]
    assert [r["id"] for page in pages for r in page] == ids  # creation order by default
    assert standin.stats.count(kind="list") == 3
    assert standin.stats.count(kind="list", base=BASE, table="Customers") == 3


def test_offset_is_an_iterator_and_absent_on_the_last_page(
    standin: AirtableStandIn, api: Api
) -> None:
    ids = seed(standin, 5)
    url = f"{standin.url}/v0/{BASE}/Customers"
    headers = {"Authorization": "Bearer test-token"}
    first = requests.get(url, params={"pageSize": 3}, headers=headers, timeout=5).json()
    assert first["offset"].startswith("itr")
    assert first["offset"].endswith("/" + ids[3])
    second = requests.get(
        url, params={"pageSize": 3, "offset": first["offset"]}, headers=headers, timeout=5
    ).json()
    assert [r["id"] for r in second["records"]] == ids[3:]
    assert "offset" not in second


def test_pages_come_from_the_result_set_of_the_first_page(
    standin: AirtableStandIn, customers: Table
) -> None:
    ids = seed(standin, 6)
    pages = customers.iterate(page_size=2, formula=fm.match({"owner": "alice@example.com"}))
    first = next(pages)
    table = standin.table(BASE, "Customers")
    table.create({"name": "late", "owner": "alice@example.com"})
    table.delete(ids[2])
    rest = [r["id"] for page in pages for r in page]
    assert [r["id"] for r in first] == [ids[0], ids[2]]
    assert rest == [ids[4]]


def test_fields_parameter_limits_fields_and_rejects_unknown_names(
    standin: AirtableStandIn, customers: Table
) -> None:
    seed(standin, 3)
    records = customers.all(fields=["name"])
    assert all(set(r["fields"]) == {"name"} for r in records)
    assert all(set(r) == {"id", "createdTime", "fields"} for r in records)
    response = http_error(customers.all, fields=["name", "nope"])
    assert response.status_code == 422
    assert response.json() == {
        "error": {"type": "UNKNOWN_FIELD_NAME", "message": 'Unknown field name: "nope"'}
    }


def test_sort_and_unknown_sort_field(standin: AirtableStandIn, customers: Table) -> None:
    table = standin.table(BASE, "Customers")
    for name, rank in [("b", 2), ("a", 3), ("c", 1), ("A2", 3)]:
        table.create({"name": name, "rank": rank})
    assert [r["fields"]["name"] for r in customers.all(sort=["name"])] == ["a", "A2", "b", "c"]
    assert [r["fields"]["name"] for r in customers.all(sort=["-rank", "name"])] == [
        "a",
        "A2",
        "b",
        "c",
    ]
    assert [r["fields"]["rank"] for r in customers.all(sort=["rank"])] == [1, 2, 3, 3]
    assert http_error(customers.all, sort=["nope"]).status_code == 422


def test_max_records_and_page_size_bounds(standin: AirtableStandIn, customers: Table) -> None:
    seed(standin, 150)
    assert len(customers.all(max_records=5)) == 5
    standin.stats.reset()
    assert len(customers.all(max_records=120, page_size=50)) == 120
    assert standin.stats.count(kind="list") == 3
    assert customers.first(formula=fm.match({"rank": 7}))["fields"]["rank"] == 7  # type: ignore[index]
    for size in (0, 101):
        response = http_error(customers.all, page_size=size)
        assert response.status_code == 422
        assert error_type(response) == "INVALID_REQUEST_UNKNOWN"


def test_post_list_records(standin: AirtableStandIn, customers: Table) -> None:
    ids = seed(standin, 30)
    url = f"{standin.url}/v0/{BASE}/Customers/listRecords"
    headers = {"Authorization": "Bearer test-token"}
    body: dict[str, Any] = {
        "pageSize": 10,
        "fields": ["name"],
        "sort": [{"field": "rank", "direction": "desc"}],
        "filterByFormula": "{owner} = 'alice@example.com'",
    }
    first = requests.post(url, json=body, headers=headers, timeout=5).json()
    second = requests.post(
        url, json={**body, "offset": first["offset"]}, headers=headers, timeout=5
    ).json()
    got = [r["id"] for r in first["records"] + second["records"]]
    assert got == [ids[i] for i in range(28, -1, -2)]
    assert "offset" not in second
    assert standin.stats.count(kind="list") == 2
    # pyairtable itself switches to POST listRecords when the URL would pass 16,000 characters.
    many = [fm.Field("sms").eq(f"+1415555{i:04d}") for i in range(1100)]
    formula = fm.OR(*many, fm.Field("name").eq("Customer 004"))
    assert len(str(formula)) > 16_000
    assert [r["id"] for r in customers.all(formula=formula)] == [ids[4]]


def test_views_filter_and_order_and_a_sort_parameter_overrides_them(
    standin: AirtableStandIn, customers: Table
) -> None:
    ids = seed(standin, 10)
    table = standin.table(BASE, "Customers")
    table.add_view("Alice, by rank down", "{owner} = 'alice@example.com'", [("rank", "desc")])
    alice_down = [ids[i] for i in (8, 6, 4, 2, 0)]
    assert [r["id"] for r in customers.all(view="Alice, by rank down")] == alice_down
    assert [r["id"] for r in customers.all(view="Grid view")] == ids  # every table has it
    in_view = customers.all(view="Alice, by rank down", sort=["rank"], formula="{rank} > 3")
    assert [r["id"] for r in in_view] == [ids[4], ids[6], ids[8]]
    url = f"{standin.url}/v0/{BASE}/Customers/listRecords"
    posted = requests.post(
        url,
        json={"view": "Alice, by rank down", "pageSize": 2},
        headers={"Authorization": "Bearer test-token"},
        timeout=5,
    ).json()
    assert [r["id"] for r in posted["records"]] == alice_down[:2]
    missing = http_error(customers.all, view="No such view")
    assert missing.status_code == 422
    assert error_type(missing) == "VIEW_NAME_NOT_FOUND"


def test_long_get_url_is_rejected(standin: AirtableStandIn) -> None:
    url = f"{standin.url}/v0/{BASE}/Customers"
    formula = "OR(" + ", ".join(f"{{sms}}='{i}'" for i in range(2000)) + ")"
    response = requests.get(
        url,
        params={"filterByFormula": formula},
        headers={"Authorization": "Bearer test-token"},
        timeout=5,
    )
    assert response.status_code == 414


def test_offset_expires(standin: AirtableStandIn, customers: Table, ticks: FakeTicks) -> None:
    seed(standin, 5)
    pages = customers.iterate(page_size=2)
    assert len(next(pages)) == 2
    assert len(next(pages)) == 2  # still fresh
    ticks.advance(601)
    response = http_error(next, pages)
    assert response.status_code == 422
    assert error_type(response) == "LIST_RECORDS_ITERATOR_NOT_AVAILABLE"
    garbage = http_error(customers.all, offset="not-an-offset")
    assert error_type(garbage) == "INVALID_OFFSET_VALUE"


def test_table_names_are_url_encoded(standin: AirtableStandIn, api: Api) -> None:
    name = "Notes/2024 ✓ & more"
    standin.table(BASE, name).create({"text": "hello"})
    table = api.table(BASE, name)
    assert [r["fields"] for r in table.all()] == [{"text": "hello"}]
    assert standin.stats.count(table=name) == 1


def test_cell_format_string(standin: AirtableStandIn, customers: Table) -> None:
    standin.table(BASE, "Customers").create({"name": "x", "rank": 3, "opt_out": True})
    records = customers.all(cell_format="string", time_zone="UTC", user_locale="en-us")
    assert records[0]["fields"] == {"name": "x", "rank": "3", "opt_out": "1"}
    assert http_error(customers.all, cell_format="string").status_code == 422


# --- single and batch writes -----------------------------------------------------------------


def test_get_create_update_delete_one(standin: AirtableStandIn, customers: Table) -> None:
    created = customers.create({"name": "Ana", "owner": "alice@example.com", "opt_out": False})
    assert created["fields"] == {"name": "Ana", "owner": "alice@example.com"}  # empty omitted
    assert created["id"].startswith("rec")
    assert len(created["id"]) == 17
    assert created["createdTime"] == "2024-05-01T10:00:00.000Z"
    assert customers.get(created["id"]) == created
    updated = customers.update(created["id"], {"name": "Ana R.", "notes": "n"})
    assert updated["fields"] == {"name": "Ana R.", "owner": "alice@example.com", "notes": "n"}
    cleared = customers.update(created["id"], {"notes": "", "opt_out": True})
    assert cleared["fields"] == {"name": "Ana R.", "owner": "alice@example.com", "opt_out": True}
    replaced = customers.update(created["id"], {"name": "Only"}, replace=True)
    assert replaced["fields"] == {"name": "Only"}
    assert customers.delete(created["id"]) == {"id": created["id"], "deleted": True}
    missing = http_error(customers.get, created["id"])
    assert missing.status_code == 404
    assert missing.json() == {"error": "NOT_FOUND"}
    assert http_error(customers.update, created["id"], {"name": "x"}).status_code == 404
    assert http_error(customers.delete, created["id"]).status_code == 404
    assert standin.stats.count(kind="create") == 1
    assert standin.stats.count(kind="update") == 4
    assert standin.stats.count(kind="delete") == 2
    assert standin.stats.count(kind="get") == 2


def test_batches_and_the_limit_of_ten(standin: AirtableStandIn, customers: Table) -> None:
    created = customers.batch_create([{"name": f"n{i}", "rank": i} for i in range(25)])
    assert len(created) == 25
    assert standin.stats.count(kind="create") == 3
    updated = customers.batch_update([{"id": r["id"], "fields": {"notes": "x"}} for r in created])
    assert all(r["fields"]["notes"] == "x" for r in updated)
    assert standin.stats.count(kind="update") == 3
    url = f"{standin.url}/v0/{BASE}/Customers"
    headers = {"Authorization": "Bearer test-token"}
    eleven = {"records": [{"fields": {"name": str(i)}} for i in range(11)]}
    too_many = requests.post(url, json=eleven, headers=headers, timeout=5)
    assert too_many.status_code == 422
    assert too_many.json()["error"]["type"] == "INVALID_RECORDS"
    ids = [r["id"] for r in created]
    delete_eleven = requests.delete(url, params={"records[]": ids[:11]}, headers=headers, timeout=5)
    assert delete_eleven.status_code == 422
    unknown = customers.batch_update  # a batch naming a missing record changes nothing
    response = http_error(
        unknown, [{"id": ids[0], "fields": {"notes": "y"}}, {"id": "recNOPE", "fields": {}}]
    )
    assert error_type(response) == "ROW_DOES_NOT_EXIST"
    assert customers.get(ids[0])["fields"]["notes"] == "x"
    deleted = customers.batch_delete(ids)
    assert deleted == [{"id": i, "deleted": True} for i in ids]
    assert standin.stats.count(kind="delete") == 4
    assert customers.all() == []


def test_upsert_merges_on_fields(standin: AirtableStandIn, customers: Table) -> None:
    existing = customers.create({"id": "C-1", "name": "old"})
    result = customers.batch_upsert(
        [{"fields": {"id": "C-1", "name": "new"}}, {"fields": {"id": "C-2", "name": "two"}}],
        key_fields=["id"],
    )
    assert result["updatedRecords"] == [existing["id"]]
    assert len(result["createdRecords"]) == 1
    assert {r["fields"]["name"] for r in customers.all()} == {"new", "two"}


def test_unknown_field_in_a_write_is_rejected(customers: Table) -> None:
    response = http_error(customers.create, {"name": "x", "colour": "red"})
    assert response.status_code == 422
    assert error_type(response) == "UNKNOWN_FIELD_NAME"


# --- errors ----------------------------------------------------------------------------------


def test_authentication(standin: AirtableStandIn) -> None:
    wrong = Api("wrong-token", endpoint_url=standin.url, retry_strategy=None)
    response = http_error(wrong.table(BASE, "Customers").all)
    assert response.status_code == 401
    assert response.json() == {
        "error": {"type": "AUTHENTICATION_REQUIRED", "message": "Authentication required"}
    }
    bare = requests.get(f"{standin.url}/v0/{BASE}/Customers", timeout=5)
    assert bare.status_code == 401


def test_unknown_base_and_table(api: Api) -> None:
    base = http_error(api.table("appNoSuchBase0000", "Customers").all)
    assert base.status_code == 403
    assert error_type(base) == "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND"
    table = http_error(api.table(BASE, "Nope").all)
    assert table.status_code == 404
    assert table.json() == {
        "error": {
            "type": "TABLE_NOT_FOUND",
            "message": f"Could not find table Nope in application {BASE}",
        }
    }


@pytest.mark.parametrize("formula", ["{name} = ", "NOPE({name})", "{nope} = 'x'"])
def test_invalid_formula_is_422(standin: AirtableStandIn, customers: Table, formula: str) -> None:
    seed(standin, 1)
    response = http_error(customers.all, formula=formula)
    assert response.status_code == 422
    assert error_type(response) == "INVALID_FILTER_BY_FORMULA"


# --- timestamps ------------------------------------------------------------------------------


def test_last_modified_time_moves_on_edits_only(
    standin: AirtableStandIn, customers: Table, clock: FakeClock
) -> None:
    record = customers.create({"name": "Ana", "owner": "alice@example.com"})
    table = standin.table(BASE, "Customers")
    clock.advance(60)
    customers.update(record["id"], {"name": "Ana"})  # a no-op
    assert table.last_modified(record["id"]) == T0
    since = fm.IS_AFTER(fm.LAST_MODIFIED_TIME(), T0 + timedelta(seconds=30))
    assert customers.all(formula=since) == []
    customers.update(record["id"], {"name": "Ana Ruiz"})
    assert table.last_modified(record["id"]) == T0 + timedelta(seconds=60)
    assert [r["id"] for r in customers.all(formula=since)] == [record["id"]]
    clock.advance(60)
    table.update(record["id"], {"notes": "edited in the UI"})  # a person's edit counts too
    assert table.last_modified(record["id"]) == T0 + timedelta(seconds=120)
    by_field = fm.IS_AFTER(fm.LAST_MODIFIED_TIME(fm.Field("name")), T0 + timedelta(seconds=90))
    assert customers.all(formula=by_field) == []


def test_created_time(standin: AirtableStandIn, customers: Table, clock: FakeClock) -> None:
    first = customers.create({"name": "first"})
    clock.advance(3600)
    second = customers.create({"name": "second"})
    given = standin.table(BASE, "Customers").create({"name": "old"}, created_time="2020-01-01")
    assert second["createdTime"] == "2024-05-01T11:00:00.000Z"
    assert given["createdTime"] == "2020-01-01T00:00:00.000Z"
    after = fm.IS_AFTER(fm.CREATED_TIME(), T0 + timedelta(minutes=30))
    assert [r["id"] for r in customers.all(formula=after)] == [second["id"]]
    before = fm.IS_BEFORE(fm.CREATED_TIME(), T0 + timedelta(minutes=30))
    assert {r["id"] for r in customers.all(formula=before)} == {first["id"], given["id"]}


# --- rate limit, latency, faults -------------------------------------------------------------


def test_rate_limit_and_penalty(standin: AirtableStandIn, api: Api, ticks: FakeTicks) -> None:
    standin.rate_limit_per_second = 5
    standin.penalty_seconds = 30
    standin.table("appOtherBase00000", "Customers")
    table = api.table(BASE, "Customers")
    for _ in range(5):
        table.all()
    limited = http_error(table.all)
    assert limited.status_code == 429
    assert limited.json() == {
        "errors": [
            {
                "error": "RATE_LIMIT_REACHED",
                "message": "Rate limit exceeded. Please try again later",
            }
        ]
    }
    ticks.advance(2)  # the window has passed, the penalty has not
    assert http_error(table.all).status_code == 429
    assert api.table("appOtherBase00000", "Customers").all() == []  # limits are per base
    ticks.advance(28.5)
    assert table.all() == []
    assert standin.stats.http_429 == 2
    # A sliding window: five a second, second after second, is fine.
    for _ in range(3):
        ticks.advance(1.01)
        for _ in range(5):
            table.all()
    assert standin.stats.http_429 == 2


def test_pyairtable_default_retries_429(standin: AirtableStandIn, ticks: FakeTicks) -> None:
    standin.rate_limit_per_second = 1
    standin.penalty_seconds = 0.05
    table = Api("test-token", endpoint_url=standin.url).table(BASE, "Customers")
    table.all()
    ticks.advance(0.01)
    # The next call is limited; pyairtable retries after its backoff (wall time), by which
    # point the fake monotonic clock is moved on by a background thread.
    mover = threading.Timer(0.05, ticks.advance, args=(5,))
    mover.start()
    assert table.all() == []
    mover.join()
    assert standin.stats.http_429 >= 1


def test_latency_is_applied_per_request(standin: AirtableStandIn, customers: Table) -> None:
    standin.latency_seconds = 0.2
    started = time.perf_counter()
    customers.all()
    assert time.perf_counter() - started >= 0.2
    threads = [threading.Thread(target=customers.all) for _ in range(5)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.perf_counter() - started < 0.6  # answers overlap
    requests.put(f"{standin.url}/_standin/latency", json={"seconds": 0}, timeout=5)
    assert standin.latency_seconds == 0


def test_faults(standin: AirtableStandIn, customers: Table) -> None:
    standin.set_fault(503, count=2)
    for _ in range(2):
        response = http_error(customers.all)
        assert response.status_code == 503
        assert error_type(response) == "SERVICE_UNAVAILABLE"
    assert customers.all() == []
    standin.set_fault(500)
    for _ in range(3):
        assert http_error(customers.all).status_code == 500
    standin.clear_faults()
    assert customers.all() == []
    standin.set_fault(429, count=1)
    assert http_error(customers.all).status_code == 429
    assert standin.stats.http_429 == 1
    standin.set_fault(None, count=1, delay_seconds=0.2)
    started = time.perf_counter()
    assert customers.all() == []
    assert time.perf_counter() - started >= 0.2
    standin.set_fault(502, count=1, delay_seconds=0.1)
    assert http_error(customers.all).status_code == 502


# --- stats and the admin API -----------------------------------------------------------------


def test_counts_by_kind(standin: AirtableStandIn, customers: Table) -> None:
    record = customers.create({"name": "a"})
    customers.get(record["id"])
    customers.update(record["id"], {"name": "b"})
    customers.all()
    customers.delete(record["id"])
    assert {
        k: standin.stats.count(kind=k) for k in ("list", "get", "create", "update", "delete")
    } == {
        "list": 1,
        "get": 1,
        "create": 1,
        "update": 1,
        "delete": 1,
    }
    assert standin.stats.count() == 5
    assert standin.stats.count(base="appSomewhereElse0") == 0
    assert sum(standin.stats.per_second().values()) == 5
    standin.stats.reset()
    assert standin.stats.count() == 0
    assert standin.stats.per_second() == {}


def test_admin_endpoints_are_not_counted_nor_limited(
    standin: AirtableStandIn, customers: Table
) -> None:
    standin.rate_limit_per_second = 1
    admin = f"{standin.url}/_standin"
    records = f"{admin}/bases/{BASE}/tables/Customers/records"
    loaded = requests.post(
        f"{admin}/load",
        json={
            "base_id": BASE,
            "schema": {"Customers": FIELDS},
            "tables": {"Customers": [{"fields": {"name": "loaded"}}]},
        },
        timeout=5,
    )
    assert loaded.json() == {"loaded": {"Customers": 1}}
    made = requests.post(records, json={"fields": {"name": "made"}}, timeout=5).json()
    patched = requests.patch(f"{records}/{made['id']}", json={"fields": {"notes": "n"}}, timeout=5)
    assert patched.json()["fields"] == {"name": "made", "notes": "n"}
    listed = requests.get(records, timeout=5).json()["records"]
    assert [r["fields"]["name"] for r in listed] == ["loaded", "made"]
    assert requests.delete(f"{records}/{made['id']}", timeout=5).json()["deleted"] is True
    requests.post(f"{admin}/faults", json={"status": 503, "count": 1}, timeout=5)
    assert http_error(customers.all).status_code == 503
    requests.post(f"{admin}/faults", json={"status": 500}, timeout=5)
    requests.delete(f"{admin}/faults", timeout=5)
    stats = requests.get(f"{admin}/stats", timeout=5).json()
    assert stats["total"] == 1
    assert stats["by_kind"]["list"] == 1
    assert stats["statuses"] == {"503": 1}
    requests.post(f"{admin}/stats/reset", timeout=5)
    assert requests.get(f"{admin}/stats", timeout=5).json()["total"] == 0
    assert standin.stats.count() == 0


# --- data files ------------------------------------------------------------------------------


def test_demo_base(standin: AirtableStandIn, api: Api) -> None:
    loaded = standin.load(DEMO)
    assert loaded["Customers"] >= 55
    assert loaded["Templates"] == 8
    data = json.loads(DEMO.read_text(encoding="utf-8"))
    customers = api.table(data["base_id"], "Customers")
    mine = fm.AND(
        fm.Field("owner").eq("alice@example.com"),
        fm.FIND("ana", fm.LOWER(fm.Field("name"))),
    )
    names = {r["fields"]["name"] for r in customers.all(formula=mine)}
    assert {"Ana Ruiz", "Mariana Li"} <= names
    assert "Juan Anaya" not in names
    everyone = customers.all()
    owners = {r["fields"]["owner"] for r in everyone}
    assert owners == {"alice@example.com", "bob@example.com", "carol@example.com"}
    assert any("id" not in r["fields"] for r in everyone)
    assert any(r["fields"].get("opt_out") for r in everyone)
    assert any(isinstance(r["fields"].get("avatar"), list) for r in everyone)
    assert any(r["fields"].get("sms") == "ext. 12" for r in everyone)
    assert any("email" not in r["fields"] for r in everyone)
    sms = [r["fields"]["sms"] for r in everyone if "sms" in r["fields"]]
    assert len(sms) == len(set(sms))
    templates = api.table(data["base_id"], "Templates").all()
    assert [r["fields"] for r in templates] == TEMPLATES
    assert {t["category"] for t in TEMPLATES} == {"Openers", "Follow-up", "Closing"}


def test_generator_is_deterministic_and_loads(tmp_path: Path) -> None:
    first = generate_base(customers=3000, workers=40, seed=3)
    assert generate_base(customers=3000, workers=40, seed=3) == first
    assert generate_base(customers=3000, workers=40, seed=4) != first
    records = first["tables"]["Customers"]
    assert len(records) == 3000
    sms = [r["fields"]["sms"] for r in records]
    assert len(sms) == len(set(sms))
    books: dict[str, int] = {}
    for record in records:
        books[record["fields"]["owner"]] = books.get(record["fields"]["owner"], 0) + 1
    assert set(books) <= {f"rep{i:04d}@example.com" for i in range(1, 41)}
    assert max(books.values()) > 3 * sorted(books.values())[len(books) // 2]  # skewed
    assert [r["fields"] for r in first["tables"]["Templates"]] == TEMPLATES
    out = tmp_path / "base.json"
    assert generate_main(["--customers", "500", "--workers", "10", "--out", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == generate_base(500, 10, 7)
    with AirtableStandIn(rate_limit_per_second=None) as standin:
        assert standin.load(out) == {"Customers": 500, "Templates": 8}


def test_command_line_process(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "standins.airtable", "--port", "0", "--load", str(DEMO)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            table = Api("test-token", endpoint_url=url).table("appDemoFrontline1", "Templates")
            assert len(table.all()) == 8
            stats = requests.get(f"{url}/_standin/stats", timeout=5).json()
            assert stats["by_kind"]["list"] == 1
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0


def test_a_fault_can_spare_the_first_requests() -> None:
    with AirtableStandIn(token="test-token", rate_limit_per_second=None) as standin:
        table = Api("test-token", endpoint_url=standin.url).table("appFaultsAfter001", "T")
        standin.table("appFaultsAfter001", "T").create({"name": "x"})
        standin.set_fault(status=503, count=1, after=2)
        assert len(table.all()) == 1
        assert len(table.all()) == 1
        with pytest.raises(requests.HTTPError):
            table.all()
        assert len(table.all()) == 1
