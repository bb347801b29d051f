"""Test support: a service instance over real HTTP, wired to the Firestore emulator and the
Airtable and Twilio stand-ins, and requests signed exactly as Twilio signs them."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import flask
import requests
from werkzeug.serving import BaseWSGIServer, make_server

import main
from service.clock import Clock
from service.instance import Instance
from service.settings import Settings
from tools.call import post_signed, sign

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token"
AIRTABLE_TOKEN = "test-airtable-token"
BASE_ID = "appFrontlineTest1"
REFRESH_TOKEN = "test-refresh-token"
SMS_NUMBER = "+14155550100"
WHATSAPP_NUMBER = "+14155550111"
CONVERSATION_SID = "CH" + "a" * 32


def service_env(airtable_url: str, twilio_url: str, **overrides: str) -> dict[str, str]:
    """Environment variables for a service under test, isolated by a unique collection prefix."""
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_SMS_NUMBER": SMS_NUMBER,
        "TWILIO_WHATSAPP_NUMBER": WHATSAPP_NUMBER,
        "TWILIO_API_BASE_URL": twilio_url,
        "AIRTABLE_API_KEY": AIRTABLE_TOKEN,
        "AIRTABLE_BASE_ID": BASE_ID,
        "AIRTABLE_ENDPOINT_URL": airtable_url,
        "GOOGLE_CLOUD_PROJECT": "demo-frontline",
        "FIRESTORE_COLLECTION_PREFIX": f"t{uuid.uuid4().hex[:10]}_",
        "REFRESH_TOKEN": REFRESH_TOKEN,
    }
    env.update(overrides)
    return env


@dataclass
class RunningService:
    """One service instance served over HTTP on a free loopback port."""

    instance: Instance
    server: BaseWSGIServer
    thread: threading.Thread
    base_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"

    @property
    def settings(self) -> Settings:
        return self.instance.settings

    @property
    def services(self) -> Any:
        return self.instance.wiring().services

    @property
    def directory(self) -> Any:
        return self.services.directory

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def call(self, callback: str, **params: str) -> requests.Response:
        """POST a signed callback (`callback` like "crm" or "twilio-conversations")."""
        return self.post(f"/callbacks/{callback}", params)

    def post(self, path: str, params: Mapping[str, str]) -> requests.Response:
        return post_signed(self.url(path), params, AUTH_TOKEN)

    def post_with_signature(
        self, path: str, params: Mapping[str, str], signature: str | None, **headers: str
    ) -> requests.Response:
        all_headers = dict(headers)
        if signature is not None:
            all_headers["X-Twilio-Signature"] = signature
        return requests.post(self.url(path), data=dict(params), headers=all_headers, timeout=30)

    def task(self, full: bool = False, token: str = REFRESH_TOKEN) -> requests.Response:
        """Call /tasks/refresh with the shared refresh token."""
        path = "/tasks/refresh" + ("?full=1" if full else "")
        return requests.post(
            self.url(path), headers={"Authorization": f"Bearer {token}"}, timeout=600
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_instance(instance: Instance) -> RunningService:
    """Serve `instance` the way functions-framework does: every path and method to one function."""
    app = flask.Flask("frontline-under-test")
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    @app.route("/", defaults={"path": ""}, methods=methods)
    @app.route("/<path:path>", methods=methods)
    def view(path: str) -> flask.Response:
        return main.serve(flask.request, instance)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return RunningService(instance, server, thread)


def build_instance(env: Mapping[str, str], clock: Clock | None = None) -> Instance:
    return Instance(Settings.from_env(env), clock=clock)


def signature_for(url: str, params: Mapping[str, str], token: str = AUTH_TOKEN) -> str:
    return sign(url, params, token)
