"""The entry point over HTTP: routing, methods, JSON everywhere, and only Twilio may call."""

from __future__ import annotations

import json
import logging

import pytest
import requests

from service.logs import JsonFormatter
from tests.support import AUTH_TOKEN, SMS_NUMBER, RunningService, signature_for

CALLBACK_PATHS = [
    "/callbacks/crm",
    "/callbacks/outgoing-conversation",
    "/callbacks/routing",
    "/callbacks/templates",
    "/callbacks/twilio-conversations",
]
PROXY_PARAMS = {"Location": "GetProxyAddress", "Worker": "alice@example.com", "ChannelType": "sms"}


def test_healthz_answers_ok_and_nothing_else(service: RunningService) -> None:
    response = requests.get(service.url("/healthz"), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_signed_proxy_address_request_gets_the_sms_number(service: RunningService) -> None:
    response = service.call("outgoing-conversation", **PROXY_PARAMS)
    assert response.status_code == 200, response.text
    assert response.json() == {"proxy_address": SMS_NUMBER}


@pytest.mark.parametrize(
    "path",
    ["/callbacks/outgoing-conversation/", "/frontline/callbacks/outgoing-conversation"],
)
def test_trailing_slash_and_function_name_prefix_route_the_same(
    service: RunningService, path: str
) -> None:
    response = service.post(path, PROXY_PARAMS)
    assert response.status_code == 200, response.text
    assert response.json() == {"proxy_address": SMS_NUMBER}


def test_unknown_path_is_a_json_404(service: RunningService) -> None:
    response = service.call("nope", Location="X")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", [*CALLBACK_PATHS, "/tasks/refresh"])
def test_wrong_method_is_a_405_with_allow(service: RunningService, path: str) -> None:
    response = requests.get(service.url(path), timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_healthz_refuses_post(service: RunningService) -> None:
    response = requests.post(service.url("/healthz"), timeout=10)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_unsigned_request_is_refused(service: RunningService, path: str) -> None:
    response = service.post_with_signature(path, PROXY_PARAMS, None)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_signature_with_another_token_is_refused(service: RunningService, path: str) -> None:
    signature = signature_for(service.url(path), PROXY_PARAMS, token="someone-elses-token")
    response = service.post_with_signature(path, PROXY_PARAMS, signature)
    assert response.status_code == 403


@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_signature_for_another_url_is_refused(service: RunningService, path: str) -> None:
    signature = signature_for("https://elsewhere.example.com" + path, PROXY_PARAMS)
    response = service.post_with_signature(path, PROXY_PARAMS, signature)
    assert response.status_code == 403


@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_correct_signature_passes_the_check_on_every_path(
    service: RunningService, path: str
) -> None:
    response = service.post(path, {"Location": "NoSuchLocation", "EventType": "onNothing"})
    assert response.status_code != 403, response.text


@pytest.mark.parametrize("path", ["/callbacks/crm", "/callbacks/templates"])
def test_unknown_location_is_422_naming_it(service: RunningService, path: str) -> None:
    response = service.post(path, {"Location": "GetEverything", "Worker": "alice@example.com"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert "GetEverything" in error["message"]
    assert error["field"] == "Location"


def test_unknown_event_type_is_acknowledged(service: RunningService) -> None:
    response = service.call("twilio-conversations", EventType="onSomethingNew")
    assert response.status_code == 200
    assert response.json() == {}


def test_signature_is_checked_against_the_forwarded_public_url(service: RunningService) -> None:
    public = "https://frontline.example.com/callbacks/outgoing-conversation"
    response = service.post_with_signature(
        "/callbacks/outgoing-conversation",
        PROXY_PARAMS,
        signature_for(public, PROXY_PARAMS),
        **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "frontline.example.com"},
    )
    assert response.status_code == 200, response.text


def test_public_base_url_setting_decides_the_signed_url(make_service: object) -> None:
    service = make_service(PUBLIC_BASE_URL="https://fn.example.run.app")  # type: ignore[operator]
    path = "/callbacks/outgoing-conversation"
    good = signature_for("https://fn.example.run.app" + path, PROXY_PARAMS)
    assert service.post_with_signature(path, PROXY_PARAMS, good).status_code == 200
    local = signature_for(service.url(path), PROXY_PARAMS, AUTH_TOKEN)
    assert service.post_with_signature(path, PROXY_PARAMS, local).status_code == 403


def test_the_request_line_carries_the_trace_and_the_location_also_for_errors(
    service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="frontline")
    caplog.handler.setFormatter(JsonFormatter("proj"))
    trace = {"X-Cloud-Trace-Context": "0af7651916cd43dd8448eb211c80319c/1;o=1"}
    requests.get(service.url("/healthz"), headers=trace, timeout=10)
    unknown = {"Location": "GetSomethingElse", "Worker": "alice@example.com"}
    signature = signature_for(service.url("/callbacks/crm"), unknown, AUTH_TOKEN)
    requests.post(
        service.url("/callbacks/crm"),
        data=unknown,
        headers={**trace, "X-Twilio-Signature": signature},
        timeout=10,
    )
    requests.post(service.url("/callbacks/crm"), data=unknown, headers=trace, timeout=10)
    lines = [json.loads(line) for line in caplog.text.splitlines() if '"status"' in line]
    assert [(line["status"], line["location"]) for line in lines] == [
        (200, None),
        (422, "GetSomethingElse"),
        (403, "GetSomethingElse"),
    ]
    assert {line.get("logging.googleapis.com/trace") for line in lines} == {
        "projects/proj/traces/0af7651916cd43dd8448eb211c80319c"
    }
