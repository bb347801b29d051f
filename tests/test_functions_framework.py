"""The real entry point as functions-framework loads it: settings from the environment, the
`frontline` target, a signed callback and the health check."""

from __future__ import annotations

import sys
from pathlib import Path

import functions_framework
import pytest

from standins.airtable import AirtableStandIn
from standins.twilio import ConversationsStandIn
from tests.support import AUTH_TOKEN, SMS_NUMBER, service_env, signature_for

ROOT = Path(__file__).resolve().parent.parent


def test_functions_framework_serves_the_frontline_target(
    monkeypatch: pytest.MonkeyPatch, airtable: AirtableStandIn, twilio: ConversationsStandIn
) -> None:
    for name, value in service_env(airtable.url, twilio.base_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FUNCTION_TARGET", "frontline")  # restored after the test
    previous = sys.modules.get("main")
    try:
        app = functions_framework.create_app(target="frontline", source=str(ROOT / "main.py"))
        client = app.test_client()
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.get_json() == {"status": "ok"}
        params = {"Location": "GetProxyAddress", "Worker": "a@example.com", "ChannelType": "sms"}
        url = "http://localhost/callbacks/outgoing-conversation"
        signed = client.post(
            "/callbacks/outgoing-conversation",
            data=params,
            headers={"X-Twilio-Signature": signature_for(url, params, AUTH_TOKEN)},
        )
        assert signed.status_code == 200, signed.get_data(as_text=True)
        assert signed.get_json() == {"proxy_address": SMS_NUMBER}
        unsigned = client.post("/callbacks/outgoing-conversation", data=params)
        assert unsigned.status_code == 403
        assert unsigned.content_type == "application/json"
        for path in ("/robots.txt", "/favicon.ico"):  # answered by functions-framework itself
            missing = client.get(path)
            assert missing.status_code == 404
            assert missing.content_type == "application/json"
            assert missing.get_json()["error"]["code"] == "not_found"
    finally:
        if previous is not None:
            sys.modules["main"] = previous
