"""Forged Twilio callbacks: every way of getting a request past the signature check is refused.

One deployment (three instances with different public-URL settings, sharing one warm cache) is
started for the module. For each callback path a valid, correctly signed request is first shown
to be served, then forged variants of it (no, empty, wrong-token, wrong-URL, wrong-parameter,
replayed, oversized and malformed signatures; JSON bodies that `bodySHA256` does not vouch for;
form bodies under a signed `bodySHA256`; proxy headers naming an impossible port) are sent; every
one must be answered 403 with `{"error": {"code": "forbidden", ...}}`. Valid requests through
a proxy, with Twilio's :443 quirk and with JSON bodies signed through `bodySHA256` must still be
served.

A tally of forged requests tried and accepted is printed at the end of the module.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import flask
import pytest
import requests

import main
from service.clock import ManualClock
from standins.airtable import AirtableStandIn
from standins.twilio import ConversationsStandIn
from tests.conftest import CUSTOMER_COLUMNS
from tests.support import (
    ACCOUNT_SID,
    AIRTABLE_TOKEN,
    AUTH_TOKEN,
    BASE_ID,
    REFRESH_TOKEN,
    SMS_NUMBER,
    RunningService,
    build_instance,
    serve_instance,
    service_env,
    signature_for,
)

ALICE = "alice@example.com"
ANA_ID = "cust-ana"
ANA_SMS = "+14155550134"
PUBLIC_HOST = "fn.example.run.app"
PROXY_HOST = "frontline.example.com"
CALLBACK_PATHS = (
    "/callbacks/crm",
    "/callbacks/outgoing-conversation",
    "/callbacks/routing",
    "/callbacks/templates",
    "/callbacks/twilio-conversations",
)

Params = Mapping[str, str]


# --- the tally -----------------------------------------------------------------------------


@dataclass
class Tally:
    """Forged requests sent to the service: how many were served (accepted) or crashed it."""

    tried: int = 0
    accepted: int = 0
    errors: int = 0

    def __post_init__(self) -> None:
        self.failures: list[str] = []

    def record(self, label: str, status: int, refusals: tuple[int, ...] = (403,)) -> None:
        """Count one forged request; anything but a refusal means it was served or crashed."""
        self.tried += 1
        if status in refusals:
            return
        if status >= 500:
            self.errors += 1
        else:
            self.accepted += 1
        self.failures.append(f"{label} -> {status}")

    def summary(self) -> str:
        line = f"forgery: {self.tried} forged requests tried, {self.accepted} accepted"
        if self.errors:
            line += f", {self.errors} answered 5xx"
        return line


TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def forgery_summary(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """Print the one-line tally when the module is done."""
    yield TALLY
    print_outside_capture(request.config, TALLY.summary())


def print_outside_capture(config: pytest.Config, line: str) -> None:
    """Write `line` to the terminal even while pytest captures output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line)


def assert_refused(response: requests.Response | flask.Response, label: str) -> None:
    """A forged request must get 403 with the JSON error body; count it either way."""
    status = response.status_code
    TALLY.record(label, status)
    body = response.get_json() if isinstance(response, flask.Response) else _json(response)
    assert status == 403, f"{label}: forged request answered {status}: {str(body)[:300]}"
    assert isinstance(body, dict), f"{label}: 403 body is not a JSON object"
    assert body.get("error", {}).get("code") == "forbidden", f"{label}: {body}"
    assert isinstance(body["error"].get("message"), str)


def _json(response: requests.Response) -> Any:
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        f"not JSON: {response.status_code} {response.headers.get('Content-Type')}"
    )
    return response.json()


# --- one deployment for the module ----------------------------------------------------------


@dataclass
class Deployment:
    """The stand-ins and three instances sharing one warm cache."""

    airtable: AirtableStandIn
    twilio: ConversationsStandIn
    local: RunningService  # no PUBLIC_BASE_URL: the URL comes from Host / X-Forwarded-*
    public: RunningService  # PUBLIC_BASE_URL=https://fn.example.run.app
    public_443: RunningService  # PUBLIC_BASE_URL=https://fn.example.run.app:443
    conversation_sid: str

    def valid_params(self, path: str) -> dict[str, str]:
        """A representative parameter set Twilio would send to `path`."""
        return {
            "/callbacks/crm": {"Location": "GetCustomersList", "Worker": ALICE, "PageSize": "30"},
            "/callbacks/outgoing-conversation": {
                "Location": "GetProxyAddress",
                "Worker": ALICE,
                "CustomerId": ANA_ID,
                "ChannelType": "sms",
                "ChannelValue": ANA_SMS,
            },
            "/callbacks/routing": {
                "ConversationSid": self.conversation_sid,
                "MessagingBinding.Address": ANA_SMS,
                "MessagingBinding.ProxyAddress": SMS_NUMBER,
            },
            "/callbacks/templates": {
                "Location": "GetTemplatesByCustomerId",
                "Worker": ALICE,
                "CustomerId": ANA_ID,
                "ConversationSid": self.conversation_sid,
            },
            "/callbacks/twilio-conversations": {
                "EventType": "onConversationAdd",
                "ConversationSid": self.conversation_sid,
                "MessagingBinding.Address": ANA_SMS,
                "MessagingBinding.ProxyAddress": SMS_NUMBER,
            },
        }[path]


def warm_cache(service: RunningService, attempts: int = 10) -> None:
    """Run the full sync to completion; a busy machine may answer 503 with Retry-After first."""
    last = ""
    for _ in range(attempts):
        response = service.task(full=True)
        last = f"{response.status_code} {response.text[:300]}"
        if response.status_code == 200 and response.json().get("complete", True) is not False:
            return
        if response.status_code not in (200, 503):
            break
        time.sleep(min(float(response.headers.get("Retry-After", "1")), 5.0))
    raise AssertionError(f"the full sync did not complete: {last}")


@pytest.fixture(scope="module")
def deployment(firestore_emulator: str) -> Iterator[Deployment]:
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    airtable = AirtableStandIn(token=AIRTABLE_TOKEN, clock=clock.now)
    customers = airtable.table(BASE_ID, "Customers", fields=CUSTOMER_COLUMNS)
    templates = airtable.table(
        BASE_ID, "Templates", fields=("category", "text", "whatsAppApproved")
    )
    customers.create({"id": ANA_ID, "name": "Ana Ruiz", "sms": ANA_SMS, "owner": ALICE})
    customers.create(
        {"id": "cust-ben", "name": "Ben Okafor", "sms": "+14155550177", "owner": ALICE}
    )
    templates.create({"category": "Openers", "text": "Hi {{name}}!", "whatsAppApproved": True})
    airtable.start()
    twilio = ConversationsStandIn(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    twilio.start()
    started: list[RunningService] = []
    try:
        prefix = service_env(airtable.url, twilio.base_url)["FIRESTORE_COLLECTION_PREFIX"]

        def start(**overrides: str) -> RunningService:
            env = service_env(
                airtable.url, twilio.base_url, FIRESTORE_COLLECTION_PREFIX=prefix, **overrides
            )
            service = serve_instance(build_instance(env, clock=clock))
            started.append(service)
            return service

        local = start()
        public = start(PUBLIC_BASE_URL=f"https://{PUBLIC_HOST}")
        public_443 = start(PUBLIC_BASE_URL=f"https://{PUBLIC_HOST}:443")
        warm_cache(local)
        yield Deployment(
            airtable, twilio, local, public, public_443, twilio.create_conversation("inbound")
        )
    finally:
        for service in started:
            service.stop()
        twilio.stop()
        airtable.stop()


# --- sending -------------------------------------------------------------------------------


def post(
    service: RunningService,
    path: str,
    params: Params | Sequence[tuple[str, str]],
    signature: str | None,
    *,
    query: str = "",
    header: str = "X-Twilio-Signature",
    **headers: str,
) -> requests.Response:
    """POST form-encoded `params` to `path` (+ `?query`) with `signature` in `header`."""
    all_headers = dict(headers)
    if signature is not None:
        all_headers[header] = signature
    url = service.url(path) + (f"?{query}" if query else "")
    data = list(params.items()) if isinstance(params, Mapping) else list(params)
    return requests.post(url, data=data, headers=all_headers, timeout=30)


def post_json(
    service: RunningService, path: str, body: str, signature: str, query: str = ""
) -> requests.Response:
    url = service.url(path) + (f"?{query}" if query else "")
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": signature}
    return requests.post(url, data=body.encode("utf-8"), headers=headers, timeout=30)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def serve_in_process(
    service: RunningService, path: str, params: Params, headers: Mapping[str, str]
) -> flask.Response:
    """Call main.serve directly, for headers larger than the local HTTP server takes."""
    app = flask.Flask("forgery-in-process")
    with app.test_request_context(
        path, method="POST", data=dict(params), headers=dict(headers), base_url=service.base_url
    ):
        return main.serve(flask.request, service.instance)


def other_path(path: str) -> str:
    index = CALLBACK_PATHS.index(path)
    return CALLBACK_PATHS[(index + 1) % len(CALLBACK_PATHS)]


def _port(service: RunningService) -> int:
    port = urlsplit(service.base_url).port
    assert port is not None
    return port


# --- valid requests are served (so a 403 below means the forgery was caught) ----------------


def assert_served(response: requests.Response, path: str) -> None:
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
    body = _json(response)
    if path == "/callbacks/crm":
        names = [c["display_name"] for c in body["objects"]["customers"]]
        assert names == ["Ana Ruiz", "Ben Okafor"]
    elif path == "/callbacks/outgoing-conversation":
        assert body == {"proxy_address": SMS_NUMBER}
    elif path == "/callbacks/templates":
        assert body[0]["templates"][0]["content"] == "Hi Ana Ruiz!"
    elif path == "/callbacks/twilio-conversations":
        assert body["friendly_name"] == "Ana Ruiz"
    else:
        assert body == {}


@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_correctly_signed_request_is_served(deployment: Deployment, path: str) -> None:
    service, params = deployment.local, deployment.valid_params(path)
    assert_served(post(service, path, params, signature_for(service.url(path), params)), path)


def test_routing_control_request_really_routed(deployment: Deployment) -> None:
    path = "/callbacks/routing"
    service, params = deployment.local, deployment.valid_params(path)
    assert_served(post(service, path, params, signature_for(service.url(path), params)), path)
    identities = [
        p.get("identity") for p in deployment.twilio.participants(params["ConversationSid"])
    ]
    assert ALICE in identities


@pytest.mark.parametrize(
    "header", ["x-twilio-signature", "X-TWILIO-SIGNATURE", "x-Twilio-SIGNATURE"]
)
@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_header_name_in_any_case_with_the_right_value_is_served(
    deployment: Deployment, path: str, header: str
) -> None:
    service, params = deployment.local, deployment.valid_params(path)
    signature = signature_for(service.url(path), params)
    assert_served(post(service, path, params, signature, header=header), path)


@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_behind_a_proxy_the_forwarded_public_url_is_checked(
    deployment: Deployment, path: str
) -> None:
    service, params = deployment.local, deployment.valid_params(path)
    signature = signature_for(f"https://{PROXY_HOST}{path}", params)
    response = post(
        service,
        path,
        params,
        signature,
        **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": PROXY_HOST},
    )
    assert_served(response, path)


def test_proxy_chain_uses_the_client_facing_hop(deployment: Deployment) -> None:
    path = "/callbacks/outgoing-conversation"
    service, params = deployment.local, deployment.valid_params(path)
    signature = signature_for(f"https://{PROXY_HOST}{path}?via=lb", params)
    response = post(
        service,
        path,
        params,
        signature,
        query="via=lb",
        **{"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": f"{PROXY_HOST}, 10.0.0.7"},
    )
    assert_served(response, path)


def test_proxy_host_with_explicit_443_accepts_the_portless_signature(
    deployment: Deployment,
) -> None:
    path = "/callbacks/outgoing-conversation"
    service, params = deployment.local, deployment.valid_params(path)
    signature = signature_for(f"https://{PROXY_HOST}{path}", params)
    response = post(
        service,
        path,
        params,
        signature,
        **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": f"{PROXY_HOST}:443"},
    )
    assert_served(response, path)


@pytest.mark.parametrize("signed_host", [PUBLIC_HOST, f"{PUBLIC_HOST}:443"])
@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_public_base_url_accepts_the_signature_with_or_without_443(
    deployment: Deployment, path: str, signed_host: str
) -> None:
    params = deployment.valid_params(path)
    signature = signature_for(f"https://{signed_host}{path}", params)
    assert_served(post(deployment.public, path, params, signature), path)


@pytest.mark.parametrize("signed_host", [PUBLIC_HOST, f"{PUBLIC_HOST}:443"])
def test_public_base_url_written_with_443_accepts_both_forms(
    deployment: Deployment, signed_host: str
) -> None:
    path = "/callbacks/outgoing-conversation"
    params = deployment.valid_params(path)
    signature = signature_for(f"https://{signed_host}{path}", params)
    assert_served(post(deployment.public_443, path, params, signature), path)


@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_json_body_signed_through_body_sha256_is_served(deployment: Deployment, path: str) -> None:
    service = deployment.local
    body = json.dumps(deployment.valid_params(path))
    query = f"bodySHA256={sha256_hex(body)}"
    signature = signature_for(f"{service.url(path)}?{query}", {})
    assert_served(post_json(service, path, body, signature, query), path)


# --- forged requests: every one is refused ------------------------------------------------

Forger = Callable[[Deployment, str, dict[str, str]], requests.Response]


def _local(
    d: Deployment,
    path: str,
    params: Params | Sequence[tuple[str, str]],
    signature: str | None,
    **kw: Any,
) -> Any:
    return post(d.local, path, params, signature, **kw)


def _signed_for(url: str, params: Params) -> str:
    return signature_for(url, params)


def _wrong_length(length_bytes: int) -> str:
    return base64.b64encode(hashlib.sha512(b"forged").digest()[:length_bytes]).decode()


def _with_changed_value(params: dict[str, str]) -> dict[str, str]:
    changed = dict(params)
    key = sorted(changed)[0]
    changed[key] = changed[key] + "x"
    return changed


FORGERIES: dict[str, Forger] = {
    "no signature header": lambda d, p, ps: _local(d, p, ps, None),
    "empty signature": lambda d, p, ps: _local(d, p, ps, ""),
    "padding only": lambda d, p, ps: _local(d, p, ps, "===="),
    "not base64": lambda d, p, ps: _local(d, p, ps, "not a signature!"),
    "another auth token": lambda d, p, ps: _local(
        d, p, ps, signature_for(d.local.url(p), ps, token="someone-elses-auth-token")
    ),
    "the auth token with different case": lambda d, p, ps: _local(
        d, p, ps, signature_for(d.local.url(p), ps, token=AUTH_TOKEN.upper())
    ),
    "another host": lambda d, p, ps: _local(
        d, p, ps, _signed_for(f"http://elsewhere.example.com:{_port(d.local)}{p}", ps)
    ),
    "https instead of http": lambda d, p, ps: _local(
        d, p, ps, _signed_for(d.local.url(p).replace("http://", "https://"), ps)
    ),
    "another path": lambda d, p, ps: _local(d, p, ps, _signed_for(d.local.url(other_path(p)), ps)),
    "path with a trailing slash": lambda d, p, ps: _local(
        d, p, ps, _signed_for(d.local.url(p + "/"), ps)
    ),
    "another port": lambda d, p, ps: _local(
        d, p, ps, _signed_for(f"http://127.0.0.1:{_port(d.local) + 1}{p}", ps)
    ),
    "query string added to the signed URL": lambda d, p, ps: _local(
        d, p, ps, _signed_for(d.local.url(p) + "?debug=1", ps)
    ),
    "query string added after signing": lambda d, p, ps: _local(
        d, p, ps, _signed_for(d.local.url(p), ps), query="Worker=mallory%40example.com"
    ),
    "query string changed after signing": lambda d, p, ps: _local(
        d, p, ps, _signed_for(d.local.url(p) + "?page=1", ps), query="page=2"
    ),
    "a parameter changed after signing": lambda d, p, ps: _local(
        d, p, _with_changed_value(ps), _signed_for(d.local.url(p), ps)
    ),
    "a parameter added after signing": lambda d, p, ps: _local(
        d, p, {**ps, "Injected": "1"}, _signed_for(d.local.url(p), ps)
    ),
    "a repeated parameter added after signing": lambda d, p, ps: _local(
        d,
        p,
        [*ps.items(), (sorted(ps)[0], "mallory@example.com")],
        _signed_for(d.local.url(p), ps),
    ),
    "a parameter removed after signing": lambda d, p, ps: _local(
        d, p, dict(list(ps.items())[:-1]), _signed_for(d.local.url(p), ps)
    ),
    "a parameter moved into the query string": lambda d, p, ps: _local(
        d,
        p,
        dict(list(ps.items())[1:]),
        _signed_for(d.local.url(p), ps),
        query=urlencode(dict(list(ps.items())[:1])),
    ),
    "lower-case header name, wrong value": lambda d, p, ps: _local(
        d, p, ps, signature_for(d.local.url(p), ps, token="wrong"), header="x-twilio-signature"
    ),
    "upper-case header name, wrong value": lambda d, p, ps: _local(
        d, p, ps, signature_for(d.local.url(p), ps, token="wrong"), header="X-TWILIO-SIGNATURE"
    ),
    "10 KB signature": lambda d, p, ps: _local(d, p, ps, "A" * 10_000),
    "10 KB signature starting with the right one": lambda d, p, ps: _local(
        d, p, ps, _signed_for(d.local.url(p), ps) + "A" * 10_000
    ),
    "valid base64, 16 bytes": lambda d, p, ps: _local(d, p, ps, _wrong_length(16)),
    "valid base64, 32 bytes": lambda d, p, ps: _local(d, p, ps, _wrong_length(32)),
    "valid base64, 64 bytes": lambda d, p, ps: _local(d, p, ps, _wrong_length(64)),
    "valid base64, 20 bytes of zeros": lambda d, p, ps: _local(
        d, p, ps, base64.b64encode(bytes(20)).decode()
    ),
    "right signature truncated": lambda d, p, ps: _local(
        d, p, ps, _signed_for(d.local.url(p), ps)[:-4]
    ),
    "right signature extended": lambda d, p, ps: _local(
        d, p, ps, _signed_for(d.local.url(p), ps)[:-1] + "AAAA="
    ),
    "right signature without padding": lambda d, p, ps: _local(
        d, p, ps, _signed_for(d.local.url(p), ps).rstrip("=")
    ),
    "right signature as base64url": lambda d, p, ps: _local(
        d,
        p,
        ps,
        _signed_for(d.local.url(p), ps).replace("+", "-").replace("/", "_") + "-_",
    ),
    "signed for the proxy URL but sent without proxy headers": lambda d, p, ps: _local(
        d, p, ps, _signed_for(f"https://{PROXY_HOST}{p}", ps)
    ),
    "proxy headers with the scheme of the signature changed": lambda d, p, ps: _local(
        d,
        p,
        ps,
        _signed_for(f"http://{PROXY_HOST}{p}", ps),
        **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": PROXY_HOST},
    ),
    "PUBLIC_BASE_URL set: signed for the local URL": lambda d, p, ps: post(
        d.public, p, ps, _signed_for(d.public.url(p), ps)
    ),
    "PUBLIC_BASE_URL set: proxy headers naming the signed host": lambda d, p, ps: post(
        d.public,
        p,
        ps,
        _signed_for(f"https://evil.example.com{p}", ps),
        **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example.com"},
    ),
    "PUBLIC_BASE_URL set: signed with another port": lambda d, p, ps: post(
        d.public, p, ps, _signed_for(f"https://{PUBLIC_HOST}:8443{p}", ps)
    ),
    "PUBLIC_BASE_URL set: signed for http": lambda d, p, ps: post(
        d.public, p, ps, _signed_for(f"http://{PUBLIC_HOST}{p}", ps)
    ),
    "PUBLIC_BASE_URL set: signed for a sub-domain": lambda d, p, ps: post(
        d.public, p, ps, _signed_for(f"https://x.{PUBLIC_HOST}{p}", ps)
    ),
    "replayed to another callback path": lambda d, p, ps: _local(
        d, other_path(p), ps, _signed_for(d.local.url(p), ps)
    ),
    "replayed to /tasks/refresh": lambda d, p, ps: _local(
        d, "/tasks/refresh", ps, _signed_for(d.local.url(p), ps)
    ),
    "replayed under the function-name prefix": lambda d, p, ps: _local(
        d, "/frontline" + p, ps, _signed_for(d.local.url(p), ps)
    ),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_forged_request_is_refused(deployment: Deployment, path: str, forgery: str) -> None:
    params = deployment.valid_params(path)
    response = FORGERIES[forgery](deployment, path, params)
    assert_refused(response, f"{path}: {forgery}")


def test_replay_to_the_task_path_runs_no_task(deployment: Deployment) -> None:
    path = "/callbacks/crm"
    params = deployment.valid_params(path)
    signature = signature_for(deployment.local.url(path), params)
    response = post(
        deployment.local,
        "/tasks/refresh",
        params,
        signature,
        Authorization=f"Bearer {signature}",
    )
    assert_refused(response, "/tasks/refresh: Twilio signature as bearer token")


# JSON bodies: the body is only signed through the bodySHA256 query parameter, so a JSON body
# without a bodySHA256 is refused. A form body is always checked field by field.


@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_json_body_not_matching_body_sha256_is_refused(deployment: Deployment, path: str) -> None:
    service = deployment.local
    signed_body = json.dumps(deployment.valid_params(path))
    sent_body = json.dumps({**deployment.valid_params(path), "Worker": "mallory@example.com"})
    query = f"bodySHA256={sha256_hex(signed_body)}"
    signature = signature_for(f"{service.url(path)}?{query}", {})
    response = post_json(service, path, sent_body, signature, query)
    assert_refused(response, f"{path}: JSON body replaced, bodySHA256 of the signed one")


@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_json_body_with_recomputed_body_sha256_is_refused(
    deployment: Deployment, path: str
) -> None:
    service = deployment.local
    signed_body = json.dumps(deployment.valid_params(path))
    sent_body = json.dumps({**deployment.valid_params(path), "Worker": "mallory@example.com"})
    signature = signature_for(f"{service.url(path)}?bodySHA256={sha256_hex(signed_body)}", {})
    query = f"bodySHA256={sha256_hex(sent_body)}"
    response = post_json(service, path, sent_body, signature, query)
    assert_refused(response, f"{path}: JSON body replaced, bodySHA256 recomputed")


MALFORMED_DIGESTS: dict[str, str] = {
    "empty": "",
    "not hex": "zz",
    "upper case, one digit more": "UPPER+1",
    "NUL": "%00",
    "repeated": "REPEATED",
}


@pytest.mark.parametrize("digest", list(MALFORMED_DIGESTS))
@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_json_body_with_malformed_body_sha256_is_refused(
    deployment: Deployment, path: str, digest: str
) -> None:
    """The URL, bodySHA256 included, is signed correctly, but the digest is not the body's."""
    service = deployment.local
    body = json.dumps(deployment.valid_params(path))
    value = MALFORMED_DIGESTS[digest]
    if value == "UPPER+1":
        query = f"bodySHA256={sha256_hex(body).upper()}0"
    elif value == "REPEATED":
        query = f"bodySHA256=0&bodySHA256={sha256_hex(body)}"
    else:
        query = f"bodySHA256={value}"
    signature = signature_for(f"{service.url(path)}?{query}", {})
    response = post_json(service, path, body, signature, query)
    assert_refused(response, f"{path}: bodySHA256 {digest}")


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_empty_body_sha256_with_a_made_up_signature_is_refused(
    deployment: Deployment, path: str, content_type: str
) -> None:
    """`?bodySHA256=` (no value) and any signature at all: refused, not a crash."""
    params = deployment.valid_params(path)
    body = json.dumps(params) if content_type == "application/json" else urlencode(params)
    response = requests.post(
        deployment.local.url(path) + "?bodySHA256=",
        data=body.encode(),
        headers={"Content-Type": content_type, "X-Twilio-Signature": "forged"},
        timeout=30,
    )
    assert_refused(response, f"{path}: empty bodySHA256, made-up signature, {content_type}")


@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_json_body_signed_like_a_form_without_body_sha256_is_refused(
    deployment: Deployment, path: str
) -> None:
    """Twilio never sends a JSON body without bodySHA256; its fields would not be signed."""
    service = deployment.local
    params = deployment.valid_params(path)
    signature = signature_for(service.url(path), params)
    response = post_json(service, path, json.dumps(params), signature)
    assert_refused(response, f"{path}: JSON body with a form-style signature")


@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_json_body_without_body_sha256_is_not_trusted_on_a_url_only_signature(
    deployment: Deployment, path: str
) -> None:
    """A signature over the bare URL (what a parameterless POST carries) must not vouch for
    fields sent in an unsigned JSON body."""
    service = deployment.local
    params = deployment.valid_params(path)
    signature = signature_for(service.url(path), {})
    response = post_json(service, path, json.dumps(params), signature)
    assert_refused(response, f"{path}: JSON body, no bodySHA256, URL-only signature")


@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_form_body_is_not_trusted_on_the_body_sha256_of_an_empty_body(
    deployment: Deployment, path: str
) -> None:
    """A signed URL carrying bodySHA256 of an empty body must not vouch for form fields."""
    service = deployment.local
    params = deployment.valid_params(path)
    query = f"bodySHA256={sha256_hex('')}"
    signature = signature_for(f"{service.url(path)}?{query}", {})
    response = post(service, path, params, signature, query=query)
    assert_refused(response, f"{path}: form body under bodySHA256 of an empty body")


@pytest.mark.parametrize("host", [f"{PROXY_HOST}:99999", f"{PROXY_HOST}:abc", "[::1"])
@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_forged_request_with_an_impossible_forwarded_port_is_refused(
    deployment: Deployment, path: str, host: str
) -> None:
    params = deployment.valid_params(path)
    response = post(deployment.local, path, params, "Zm9yZ2Vk", **{"X-Forwarded-Host": host})
    assert_refused(response, f"{path}: X-Forwarded-Host {host}")


# Oversized signatures: the local HTTP server itself refuses a 100 KB header line (431), as
# Google's front end would; main.serve is also called directly to show the service refuses it.


@pytest.mark.parametrize("size", [100_000, 1_000_000])
@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_huge_signature_is_refused_by_the_service(
    deployment: Deployment, path: str, size: int
) -> None:
    params = deployment.valid_params(path)
    response = serve_in_process(deployment.local, path, params, {"X-Twilio-Signature": "A" * size})
    assert response.mimetype == "application/json"
    assert_refused(response, f"{path}: {size // 1000} KB signature (in process)")


@pytest.mark.parametrize("path", CALLBACK_PATHS)
def test_huge_signature_over_http_is_not_accepted(deployment: Deployment, path: str) -> None:
    params = deployment.valid_params(path)
    response = post(deployment.local, path, params, "A" * 100_000)
    TALLY.record(f"{path}: 100 KB signature over HTTP", response.status_code, (403, 431))
    assert response.status_code in (403, 431), response.text[:300]
    if response.status_code == 403:
        assert _json(response)["error"]["code"] == "forbidden"


def test_in_process_calls_see_the_same_signature_rules(deployment: Deployment) -> None:
    """Control for the in-process tests: the right signature is accepted through main.serve."""
    path = "/callbacks/outgoing-conversation"
    params = deployment.valid_params(path)
    signature = signature_for(deployment.local.url(path), params)
    response = serve_in_process(deployment.local, path, params, {"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_refused_requests_changed_nothing(deployment: Deployment) -> None:
    """No forged request created a participant or a customer."""
    participants = deployment.twilio.participants(deployment.conversation_sid)
    identities = {p.get("identity") for p in participants}
    assert identities <= {ALICE, None}, identities
    owners = {
        r["fields"].get("owner") for r in deployment.airtable.table(BASE_ID, "Customers").records()
    }
    assert owners == {ALICE}


def test_task_refuses_a_wrong_refresh_token(deployment: Deployment) -> None:
    response = deployment.local.task(token=REFRESH_TOKEN + "x")
    assert_refused(response, "/tasks/refresh: wrong refresh token")


def test_zz_no_forged_request_was_accepted() -> None:
    """Runs last in the module: the tally of every forged request above."""
    print(TALLY.summary())
    assert TALLY.accepted == 0, "accepted: " + "; ".join(TALLY.failures)
    assert TALLY.errors == 0, "answered 5xx: " + "; ".join(TALLY.failures)
