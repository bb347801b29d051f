"""The Airtable stand-in's webhooks API over HTTP: webhooks, their payloads, expiry and limits."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from pyairtable import Api, Table

from standins.airtable import AirtableStandIn

ROOT = Path(__file__).resolve().parents[2]
BASE = "appWebhookTests01"
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
SPEC: dict[str, Any] = {"options": {"filters": {"dataTypes": ["tableData"]}}}
FORBIDDEN = {
    "error": {
        "type": "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
        "message": "Invalid permissions, or the requested model was not found. Check that both"
        " your user and your token have the required permissions, and that the model names"
        " and/or ids are correct.",
    }
}


class FakeClock:
    """Wall clock for createdTime, payload timestamps and webhook expiry; moves when told."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeTicks:
    """Monotonic clock for the rate limiter; moves only when told."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


class Http:
    """Authenticated JSON requests to a stand-in's webhooks API."""

    def __init__(self, standin: AirtableStandIn, token: str = "test-token") -> None:
        self.url = standin.url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.url}{path}", timeout=5, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def create_hook(self, spec: dict[str, Any] | None = None, url: str | None = None) -> Any:
        body = {"notificationUrl": url, "specification": SPEC if spec is None else spec}
        return self.ok("POST", f"/v0/bases/{BASE}/webhooks", json=body)

    def hooks(self) -> list[dict[str, Any]]:
        hooks: list[dict[str, Any]] = self.ok("GET", f"/v0/bases/{BASE}/webhooks")["webhooks"]
        return hooks

    def page(self, hook_id: str, **params: Any) -> Any:
        return self.ok("GET", f"/v0/bases/{BASE}/webhooks/{hook_id}/payloads", params=params)

    def payloads(self, hook_id: str, cursor: int = 1) -> list[dict[str, Any]]:
        """Every payload from ``cursor`` on, following mightHaveMore."""
        out: list[dict[str, Any]] = []
        while True:
            page = self.page(hook_id, cursor=cursor)
            out.extend(page["payloads"])
            cursor = page["cursor"]
            if not page["mightHaveMore"]:
                return out


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ticks() -> FakeTicks:
    return FakeTicks()


@pytest.fixture
def standin(clock: FakeClock, ticks: FakeTicks) -> Iterator[AirtableStandIn]:
    with AirtableStandIn(rate_limit_per_second=None, clock=clock, monotonic=ticks) as running:
        running.table(BASE, "Customers", fields=["name", "rank", "notes"])
        running.table(BASE, "Templates", fields=["category", "text"])
        yield running


@pytest.fixture
def http(standin: AirtableStandIn) -> Http:
    return Http(standin)


@pytest.fixture
def customers(standin: AirtableStandIn) -> Table:
    return Api("test-token", endpoint_url=standin.url, retry_strategy=None).table(BASE, "Customers")


def fid(standin: AirtableStandIn, name: str, table: str = "Customers") -> str:
    return standin.table(BASE, table).field_id(name)


def tbl(standin: AirtableStandIn, table: str = "Customers") -> str:
    return standin.table(BASE, table).id


def changes(payload: dict[str, Any], standin: AirtableStandIn, table: str = "Customers") -> Any:
    assert list(payload["changedTablesById"]) == [tbl(standin, table)]
    return payload["changedTablesById"][tbl(standin, table)]


# --- managing webhooks -----------------------------------------------------------------------


def test_create_list_refresh_delete(standin: AirtableStandIn, http: Http, clock: FakeClock) -> None:
    created = http.create_hook(url="https://example.com/ping")
    assert set(created) == {"id", "macSecretBase64", "expirationTime"}
    assert re.fullmatch(r"ach[A-Za-z0-9]{14}", created["id"])
    assert len(base64.b64decode(created["macSecretBase64"], validate=True)) >= 16
    assert created["expirationTime"] == "2024-05-08T10:00:00.000Z"
    quiet = http.create_hook()
    assert quiet["id"] != created["id"]
    assert quiet["macSecretBase64"] != created["macSecretBase64"]
    listed = http.hooks()
    assert listed[0] == {
        "id": created["id"],
        "areNotificationsEnabled": True,
        "cursorForNextPayload": 1,
        "isHookEnabled": True,
        "lastNotificationResult": None,
        "lastSuccessfulNotificationTime": None,
        "notificationUrl": "https://example.com/ping",
        "expirationTime": "2024-05-08T10:00:00.000Z",
        "specification": SPEC,
    }
    assert listed[1]["id"] == quiet["id"]
    assert listed[1]["notificationUrl"] is None
    assert listed[1]["areNotificationsEnabled"] is False
    assert standin.webhooks(BASE) == listed

    clock.advance(days=2, hours=3)
    path = f"/v0/bases/{BASE}/webhooks/{created['id']}"
    assert http.ok("POST", f"{path}/refresh") == {"expirationTime": "2024-05-10T13:00:00.000Z"}
    assert http.hooks()[0]["expirationTime"] == "2024-05-10T13:00:00.000Z"
    assert http.hooks()[1]["expirationTime"] == "2024-05-08T10:00:00.000Z"

    assert http.ok("POST", f"{path}/enableNotifications", json={"enable": False}) == {}
    assert http.hooks()[0]["areNotificationsEnabled"] is False

    assert http.ok("DELETE", path) == {}
    assert [hook["id"] for hook in http.hooks()] == [quiet["id"]]
    assert http.call("DELETE", path).status_code == 404
    assert http.call("GET", f"{path}/payloads").status_code == 404
    assert http.call("POST", f"{path}/refresh").status_code == 404
    assert http.call("GET", path).status_code == 404  # no such endpoint


def test_pyairtable_drives_the_webhooks_api(
    standin: AirtableStandIn, customers: Table, clock: FakeClock
) -> None:
    base = customers.base
    spec = {"options": {"filters": {"dataTypes": ["tableData"], "recordChangeScope": tbl(standin)}}}
    created = base.add_webhook("https://example.com/hook", spec)
    first = customers.create({"name": "Ana", "rank": 1})
    customers.update(first["id"], {"rank": 2})
    second = customers.batch_create([{"name": "Bo"}, {"name": "Cy"}])
    customers.batch_delete([first["id"], second[0]["id"]])

    webhook = base.webhook(created.id)
    assert webhook.cursor_for_next_payload == 5
    assert webhook.specification.options.filters.record_change_scope == tbl(standin)
    payloads = list(webhook.payloads())
    assert [p.cursor for p in payloads] == [1, 2, 3, 4]
    assert {p.action_metadata.source for p in payloads if p.action_metadata} == {"publicApi"}
    table_changes = [p.changed_tables_by_id[tbl(standin)] for p in payloads]
    assert list(table_changes[0].created_records_by_id) == [first["id"]]
    record = table_changes[0].created_records_by_id[first["id"]]
    assert record.cell_values_by_field_id == {fid(standin, "name"): "Ana", fid(standin, "rank"): 1}
    assert record.created_time == T0
    changed = table_changes[1].changed_records_by_id[first["id"]]
    assert changed.current.cell_values_by_field_id == {fid(standin, "rank"): 2}
    assert list(table_changes[2].created_records_by_id) == [r["id"] for r in second]
    assert table_changes[3].destroyed_record_ids == [first["id"], second[0]["id"]]
    assert [p.cursor for p in webhook.payloads(cursor=3)] == [3, 4]

    clock.advance(days=1)
    webhook.extend_expiration()
    assert base.webhook(created.id).expiration_time == T0 + timedelta(days=8)
    webhook.disable_notifications()
    assert base.webhook(created.id).are_notifications_enabled is False
    webhook.delete()
    assert base.webhooks() == []


# --- payloads --------------------------------------------------------------------------------


def test_each_api_write_makes_one_payload(
    standin: AirtableStandIn, http: Http, customers: Table, clock: FakeClock
) -> None:
    hook = http.create_hook()["id"]
    a = customers.create({"name": "A", "rank": 1})["id"]
    clock.advance(seconds=1)
    b, c, d = (r["id"] for r in customers.batch_create([{"name": n} for n in "BCD"]))
    customers.update(a, {"rank": 2})
    customers.batch_update([{"id": b, "fields": {"rank": 5}}, {"id": c, "fields": {"notes": "x"}}])
    customers.update(d, {"notes": "only this"}, replace=True)  # PUT: clears the name
    customers.delete(a)
    customers.batch_delete([b, c])
    # Nothing changes, so no payload: an identical update, a batch that fails as a whole.
    customers.update(d, {"notes": "only this"})
    bad = http.call(
        "PATCH",
        f"/v0/{BASE}/Customers",
        json={"records": [{"id": d, "fields": {"rank": 9}}, {"id": a, "fields": {"rank": 9}}]},
    )
    assert bad.status_code == 422

    payloads = http.payloads(hook)
    assert len(payloads) == 7
    assert http.hooks()[0]["cursorForNextPayload"] == 8
    for payload in payloads:
        assert payload["payloadFormat"] == "v0"
        assert payload["actionMetadata"]["source"] == "publicApi"
        assert set(payload["actionMetadata"]["sourceMetadata"]["user"]) >= {"id", "email"}
    numbers = [p["baseTransactionNumber"] for p in payloads]
    assert numbers == sorted(set(numbers))
    assert payloads[0]["timestamp"] == "2024-05-01T10:00:00.000Z"
    assert payloads[1]["timestamp"] == "2024-05-01T10:00:01.000Z"
    name, rank, notes = (fid(standin, n) for n in ("name", "rank", "notes"))
    assert changes(payloads[0], standin) == {
        "createdRecordsById": {
            a: {
                "createdTime": "2024-05-01T10:00:00.000Z",
                "cellValuesByFieldId": {name: "A", rank: 1},
            }
        }
    }
    created = changes(payloads[1], standin)["createdRecordsById"]
    assert list(created) == [b, c, d]
    assert created[c] == {
        "createdTime": "2024-05-01T10:00:01.000Z",
        "cellValuesByFieldId": {name: "C"},
    }
    assert changes(payloads[2], standin) == {
        "changedRecordsById": {a: {"current": {"cellValuesByFieldId": {rank: 2}}}}
    }
    assert changes(payloads[3], standin) == {
        "changedRecordsById": {
            b: {"current": {"cellValuesByFieldId": {rank: 5}}},
            c: {"current": {"cellValuesByFieldId": {notes: "x"}}},
        }
    }
    replaced = changes(payloads[4], standin)["changedRecordsById"][d]["current"]
    assert replaced["cellValuesByFieldId"] == {name: None, notes: "only this"}
    assert changes(payloads[5], standin) == {"destroyedRecordIds": [a]}
    assert changes(payloads[6], standin) == {"destroyedRecordIds": [b, c]}


def test_upserts_report_created_and_changed_records(
    standin: AirtableStandIn, http: Http, customers: Table
) -> None:
    existing = customers.create({"name": "Ana", "rank": 1})["id"]
    hook = http.create_hook()["id"]
    result = customers.batch_upsert(
        [{"fields": {"name": "Ana", "rank": 2}}, {"fields": {"name": "Bo", "rank": 3}}],
        key_fields=["name"],
    )
    (payload,) = http.payloads(hook)
    table_changes = changes(payload, standin)
    assert list(table_changes["createdRecordsById"]) == result["createdRecords"]
    assert table_changes["changedRecordsById"] == {
        existing: {"current": {"cellValuesByFieldId": {fid(standin, "rank"): 2}}}
    }


def test_admin_and_direct_edits_are_client_changes(standin: AirtableStandIn, http: Http) -> None:
    table = standin.table(BASE, "Customers")
    hook = http.create_hook()["id"]
    admin = f"{standin.url}/_standin/bases/{BASE}/tables/Customers/records"
    direct = table.create({"name": "Direct"})["id"]
    table.update(direct, {"rank": 4})
    table.delete(direct)
    posted = requests.post(admin, json={"fields": {"name": "Admin"}}, timeout=5).json()["id"]
    requests.patch(f"{admin}/{posted}", json={"fields": {"rank": 7}}, timeout=5)
    requests.delete(f"{admin}/{posted}", timeout=5)
    kept = table.create({"name": "Kept"})["id"]
    table.clear()
    assert table.delete("recNotThere000000") is False  # no change, no payload

    payloads = http.payloads(hook)
    assert [p["actionMetadata"]["source"] for p in payloads] == ["client"] * 8
    user = payloads[0]["actionMetadata"]["sourceMetadata"]["user"]
    assert re.fullmatch(r"usr[A-Za-z0-9]{14}", user["id"])
    kinds = [list(changes(p, standin)) for p in payloads]
    assert kinds == [
        ["createdRecordsById"],
        ["changedRecordsById"],
        ["destroyedRecordIds"],
        ["createdRecordsById"],
        ["changedRecordsById"],
        ["destroyedRecordIds"],
        ["createdRecordsById"],
        ["destroyedRecordIds"],
    ]
    assert changes(payloads[2], standin)["destroyedRecordIds"] == [direct]
    assert changes(payloads[4], standin)["changedRecordsById"] == {
        posted: {"current": {"cellValuesByFieldId": {fid(standin, "rank"): 7}}}
    }
    assert changes(payloads[5], standin)["destroyedRecordIds"] == [posted]
    assert changes(payloads[7], standin)["destroyedRecordIds"] == [kept]


def test_loading_a_data_file_reports_the_replaced_records(
    standin: AirtableStandIn, http: Http
) -> None:
    old = standin.table(BASE, "Templates").create({"category": "Old"})["id"]
    hook = http.create_hook()["id"]
    standin.load(
        {
            "base_id": BASE,
            "tables": {"Templates": [{"id": "recLoaded00000001", "fields": {"text": "hi"}}]},
        }
    )
    destroyed, created = http.payloads(hook)
    assert changes(destroyed, standin, "Templates") == {"destroyedRecordIds": [old]}
    assert list(changes(created, standin, "Templates")["createdRecordsById"]) == [
        "recLoaded00000001"
    ]


def test_previous_and_unchanged_values_only_when_included(
    standin: AirtableStandIn, http: Http, customers: Table
) -> None:
    record = customers.create({"name": "Ana", "rank": 1, "notes": "n"})["id"]
    name, rank = fid(standin, "name"), fid(standin, "rank")
    spec = {
        "options": {
            "filters": {"dataTypes": ["tableData"]},
            "includes": {"includePreviousCellValues": True, "includeCellValuesInFieldIds": [name]},
        }
    }
    rich = http.create_hook(spec)["id"]
    plain = http.create_hook()["id"]
    customers.update(record, {"rank": 2})
    (payload,) = http.payloads(rich)
    assert changes(payload, standin)["changedRecordsById"][record] == {
        "current": {"cellValuesByFieldId": {rank: 2}},
        "previous": {"cellValuesByFieldId": {rank: 1}},
        "unchanged": {"cellValuesByFieldId": {name: "Ana"}},
    }
    (payload,) = http.payloads(plain)
    assert changes(payload, standin)["changedRecordsById"][record] == {
        "current": {"cellValuesByFieldId": {rank: 2}}
    }


def test_change_type_source_and_field_filters(
    standin: AirtableStandIn, http: Http, customers: Table
) -> None:
    def hook(**filters: Any) -> str:
        spec = {"options": {"filters": {"dataTypes": ["tableData"], **filters}}}
        return str(http.create_hook(spec)["id"])

    removals = hook(changeTypes=["remove"])
    from_ui = hook(fromSources=["client"])
    ranks = hook(watchDataInFieldIds=[fid(standin, "rank")], changeTypes=["update"])
    schema_only = hook(dataTypes=["tableFields"])
    record = customers.create({"name": "Ana"})["id"]
    customers.update(record, {"name": "Ana B"})
    customers.update(record, {"rank": 3})
    standin.table(BASE, "Customers").update(record, {"rank": 4})
    customers.delete(record)
    assert [list(changes(p, standin)) for p in http.payloads(removals)] == [["destroyedRecordIds"]]
    (ui,) = http.payloads(from_ui)
    assert ui["actionMetadata"]["source"] == "client"
    assert [
        list(changes(p, standin)["changedRecordsById"][record]["current"]["cellValuesByFieldId"])
        for p in http.payloads(ranks)
    ] == [[fid(standin, "rank")], [fid(standin, "rank")]]
    assert http.payloads(schema_only) == []


def test_record_change_scope_limits_a_webhook_to_one_table(
    standin: AirtableStandIn, http: Http, customers: Table
) -> None:
    scoped = http.create_hook(
        {"options": {"filters": {"dataTypes": ["tableData"], "recordChangeScope": tbl(standin)}}}
    )["id"]
    everything = http.create_hook()["id"]
    templates = standin.table(BASE, "Templates")
    templates.create({"category": "Openers"})
    customers.create({"name": "Ana"})
    templates.create({"category": "Closing"})
    assert [list(p["changedTablesById"]) for p in http.payloads(scoped)] == [[tbl(standin)]]
    assert [list(p["changedTablesById"]) for p in http.payloads(everything)] == [
        [tbl(standin, "Templates")],
        [tbl(standin)],
        [tbl(standin, "Templates")],
    ]


def test_a_webhook_only_sees_changes_made_after_it(
    standin: AirtableStandIn, http: Http, customers: Table
) -> None:
    before = customers.create({"name": "Before"})["id"]
    first = http.create_hook()["id"]
    assert http.page(first) == {"payloads": [], "cursor": 1, "mightHaveMore": False}
    customers.update(before, {"rank": 1})
    second = http.create_hook()["id"]
    customers.delete(before)
    assert len(http.payloads(first)) == 2
    (only,) = http.payloads(second)
    assert changes(only, standin) == {"destroyedRecordIds": [before]}
    assert [h["cursorForNextPayload"] for h in http.hooks()] == [3, 2]


def test_cursor_paging(standin: AirtableStandIn, http: Http) -> None:
    hook = http.create_hook()["id"]
    table = standin.table(BASE, "Customers")
    for i in range(55):
        table.create({"name": f"Customer {i}"})

    def created_names(page: Any) -> list[str]:
        return [
            next(iter(changes(p, standin)["createdRecordsById"].values()))["cellValuesByFieldId"][
                fid(standin, "name")
            ]
            for p in page["payloads"]
        ]

    page = http.page(hook, cursor=1, limit=3)
    assert (page["cursor"], page["mightHaveMore"]) == (4, True)
    assert created_names(page) == ["Customer 0", "Customer 1", "Customer 2"]
    page = http.page(hook, cursor=page["cursor"], limit=3)
    assert (page["cursor"], page["mightHaveMore"]) == (7, True)
    assert created_names(page) == ["Customer 3", "Customer 4", "Customer 5"]
    page = http.page(hook, cursor=54, limit=3)
    assert (page["cursor"], page["mightHaveMore"]) == (56, False)
    assert created_names(page) == ["Customer 53", "Customer 54"]
    assert http.page(hook, cursor=56) == {"payloads": [], "cursor": 56, "mightHaveMore": False}
    page = http.page(hook)  # cursor 1, limit 50 by default
    assert (len(page["payloads"]), page["cursor"], page["mightHaveMore"]) == (50, 51, True)
    page = http.page(hook, cursor=51, limit=50)
    assert (len(page["payloads"]), page["cursor"], page["mightHaveMore"]) == (5, 56, False)
    for bad in ({"cursor": 0}, {"cursor": "x"}, {"limit": 0}, {"limit": 51}, {"limit": "2.5"}):
        response = http.call("GET", f"/v0/bases/{BASE}/webhooks/{hook}/payloads", params=bad)
        assert response.status_code == 422, bad
        assert response.json()["error"]["type"] == "INVALID_REQUEST_UNKNOWN"


# --- limits and lifetime ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"notificationUrl": None},
        {"specification": {}},
        {"specification": {"options": {}}},
        {"specification": {"options": {"filters": {}}}},
        {"specification": {"options": {"filters": {"dataTypes": []}}}},
        {"specification": {"options": {"filters": {"dataTypes": ["records"]}}}},
        {"specification": {"options": {"filters": {"dataTypes": "tableData"}}}},
        {"specification": {"options": {"filters": {"dataTypes": ["tableData"], "tables": []}}}},
        {"specification": {"options": {"filters": {"dataTypes": ["tableData"]}, "extra": 1}}},
        {
            "specification": {
                "options": {"filters": {"dataTypes": ["tableData"], "changeTypes": ["move"]}}
            }
        },
        {
            "specification": {
                "options": {
                    "filters": {"dataTypes": ["tableData"], "recordChangeScope": "Customers"}
                }
            }
        },
        {
            "specification": {
                "options": {
                    "filters": {"dataTypes": ["tableData"], "recordChangeScope": "viw0000000000000"}
                }
            }
        },
        {"notificationUrl": "ftp://example.com", "specification": SPEC},
        {"notificationUrl": 5, "specification": SPEC},
    ],
)
def test_invalid_webhooks_are_422(http: Http, body: dict[str, Any]) -> None:
    response = http.call("POST", f"/v0/bases/{BASE}/webhooks", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "INVALID_REQUEST_UNKNOWN"
    assert http.hooks() == []


def test_at_most_ten_webhooks_per_base(standin: AirtableStandIn, http: Http) -> None:
    ids = [http.create_hook()["id"] for _ in range(10)]
    response = http.call("POST", f"/v0/bases/{BASE}/webhooks", json={"specification": SPEC})
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "TOO_MANY_WEBHOOKS"
    assert len(http.hooks()) == 10
    http.ok("DELETE", f"/v0/bases/{BASE}/webhooks/{ids[0]}")
    http.create_hook()
    other = "appWebhookTests02"
    standin.table(other, "T")
    assert http.ok("POST", f"/v0/bases/{other}/webhooks", json={"specification": SPEC})["id"]


def test_expiry_after_seven_days(
    standin: AirtableStandIn, http: Http, customers: Table, clock: FakeClock
) -> None:
    hook = http.create_hook()["id"]
    path = f"/v0/bases/{BASE}/webhooks/{hook}"
    clock.advance(hours=1)
    customers.create({"name": "Seen"})
    clock.advance(days=6, hours=23, seconds=-1)  # one second before expiry
    assert standin.webhooks(BASE)[0]["isHookEnabled"] is True
    customers.create({"name": "Just in time"})
    clock.advance(seconds=1)
    # Expired: disabled, nothing new recorded, no refresh; still listed and readable.
    (listed,) = http.hooks()
    assert (listed["isHookEnabled"], listed["cursorForNextPayload"]) == (False, 3)
    customers.create({"name": "Unseen"})
    assert http.hooks()[0]["cursorForNextPayload"] == 3
    assert len(http.payloads(hook)) == 2
    assert http.hooks()[0]["expirationTime"] == "2024-05-08T10:00:00.000Z"  # not extended
    refused = http.call("POST", f"{path}/refresh")
    assert refused.status_code == 422
    # Seven more days: gone, as if deleted.
    clock.advance(days=7, seconds=-1)
    assert len(http.hooks()) == 1
    clock.advance(seconds=1)
    assert http.hooks() == []
    assert standin.webhooks(BASE) == []
    assert http.call("GET", f"{path}/payloads").status_code == 404
    assert http.call("POST", f"{path}/refresh").status_code == 404
    assert http.call("DELETE", path).status_code == 404


def test_listing_payloads_extends_an_active_webhook(
    standin: AirtableStandIn, http: Http, customers: Table, clock: FakeClock
) -> None:
    hook = http.create_hook()["id"]
    clock.advance(days=6)
    http.page(hook)
    assert http.hooks()[0]["expirationTime"] == "2024-05-14T10:00:00.000Z"
    clock.advance(days=6)
    customers.create({"name": "Still watched"})
    assert len(http.payloads(hook)) == 1
    assert http.hooks()[0]["isHookEnabled"] is True


def test_payloads_are_kept_seven_days(
    standin: AirtableStandIn, http: Http, customers: Table, clock: FakeClock
) -> None:
    hook = http.create_hook()["id"]
    path = f"/v0/bases/{BASE}/webhooks/{hook}"
    customers.create({"name": "Old"})
    clock.advance(days=5)
    http.ok("POST", f"{path}/refresh")
    customers.create({"name": "Recent"})
    clock.advance(days=2, seconds=-1)
    assert len(http.page(hook)["payloads"]) == 2
    clock.advance(seconds=1)
    page = http.page(hook, cursor=1)
    assert len(page["payloads"]) == 1
    assert page["payloads"][0]["timestamp"] == "2024-05-06T10:00:00.000Z"
    assert (page["cursor"], page["mightHaveMore"]) == (3, False)
    customers.create({"name": "Newest"})  # the cursor keeps counting
    page = http.page(hook, cursor=3)
    assert (len(page["payloads"]), page["cursor"]) == (1, 4)
    assert http.hooks()[0]["cursorForNextPayload"] == 4


# --- permissions, statistics, rate limit, faults ---------------------------------------------


def test_a_token_without_the_webhook_scope_gets_403(clock: FakeClock) -> None:
    with AirtableStandIn(rate_limit_per_second=None, clock=clock, webhooks_allowed=False) as s:
        s.table(BASE, "Customers", fields=["name"])
        http = Http(s)
        hooks = f"/v0/bases/{BASE}/webhooks"
        calls = [
            ("GET", hooks, None),
            ("POST", hooks, {"specification": SPEC}),
            ("POST", f"{hooks}/achNotThere0000000/refresh", None),
            ("GET", f"{hooks}/achNotThere0000000/payloads", None),
            ("DELETE", f"{hooks}/achNotThere0000000", None),
        ]
        for method, path, body in calls:
            response = http.call(method, path, json=body)
            assert (response.status_code, response.json()) == (403, FORBIDDEN), path
        assert http.ok("GET", f"/v0/{BASE}/Customers") == {"records": []}
        assert s.stats.count(kind="webhook") == 5
        admin = f"{s.url}/_standin/webhooks-allowed"
        assert requests.put(admin, json={"allowed": "yes"}, timeout=5).status_code == 422
        assert requests.put(admin, json={"allowed": True}, timeout=5).json() == {"allowed": True}
        assert s.webhooks_allowed is True
        hook = http.create_hook()["id"]
        s.webhooks_allowed = False
        response = http.call("GET", f"{hooks}/{hook}/payloads")
        assert (response.status_code, response.json()) == (403, FORBIDDEN)
        requests.put(admin, json={"allowed": True}, timeout=5)
        assert http.page(hook)["payloads"] == []
        assert http.call("GET", hooks, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_command_line_no_webhooks_flag() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    demo = ROOT / "demo" / "base.json"
    command = [sys.executable, "-m", "standins.airtable", "--port", "0", "--load", str(demo)]
    with subprocess.Popen(
        [*command, "--no-webhooks"], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
    ) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            response = requests.get(
                f"{url}/v0/bases/appDemoFrontline1/webhooks",
                headers={"Authorization": "Bearer test-token"},
                timeout=5,
            )
            assert (response.status_code, response.json()) == (403, FORBIDDEN)
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0


def test_webhook_requests_are_counted_rate_limited_and_faulted(
    standin: AirtableStandIn, http: Http
) -> None:
    hook = http.create_hook()["id"]
    http.hooks()
    http.page(hook)
    assert standin.stats.count(kind="webhook") == 3
    assert standin.stats.count(kind="webhook", base=BASE) == 3
    stats = requests.get(f"{standin.url}/_standin/stats", timeout=5).json()
    assert stats["by_kind"]["webhook"] == 3
    assert stats["by_kind"]["list"] == 0

    standin.set_fault(503, count=1)
    response = http.call("POST", f"/v0/bases/{BASE}/webhooks", json={"specification": SPEC})
    assert response.status_code == 503
    assert len(http.hooks()) == 1  # the faulted create did nothing

    standin.rate_limit_per_second = 2  # the fake monotonic clock stands still: one window
    http.hooks()
    http.hooks()
    limited = http.call("GET", f"/v0/bases/{BASE}/webhooks/{hook}/payloads")
    assert limited.status_code == 429
    assert limited.json()["errors"][0]["error"] == "RATE_LIMIT_REACHED"
    assert http.call("GET", f"/v0/{BASE}/Customers").status_code == 429  # one budget per base
    assert standin.stats.http_429 == 2
    assert standin.stats.count(kind="webhook") == 8


# --- table and field ids ---------------------------------------------------------------------


def test_table_and_field_ids(standin: AirtableStandIn, http: Http) -> None:
    customers = standin.table(BASE, "Customers")
    assert re.fullmatch(r"tbl[A-Za-z0-9]{14}", customers.id)
    assert re.fullmatch(r"fld[A-Za-z0-9]{14}", customers.field_id("name"))
    assert customers.id != standin.table(BASE, "Templates").id
    assert customers.field_id("name") != customers.field_id("rank")
    assert customers.field_id("name") != standin.table(BASE, "Templates").field_id("name")
    with AirtableStandIn() as again:  # the same in every run and process
        assert again.table(BASE, "Customers").id == customers.id
        assert again.table(BASE, "Customers").field_id("name") == customers.field_id("name")
    record = customers.create({"name": "By id"})["id"]
    assert http.ok("GET", f"/v0/{BASE}/{customers.id}/{record}")["fields"] == {"name": "By id"}
    listed = requests.get(f"{standin.url}/_standin/bases/{BASE}/tables", timeout=5).json()
    assert listed["tables"][0] == {
        "id": customers.id,
        "name": "Customers",
        "fields": [
            {"id": customers.field_id(name), "name": name} for name in ("name", "rank", "notes")
        ],
    }
