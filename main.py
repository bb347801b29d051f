"""The Cloud Function: route by path, verify who is calling, run one handler, answer JSON.

request → route (path, method) → caller check (Twilio signature, or scheduler credentials)
        → handler (handlers/) → contact directory (cache/) → Airtable (integrations/)
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import flask
import functions_framework
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from handlers import crm, outgoing_conversation, routing, tasks, templates, twilio_conversations
from handlers.base import Params, Reply, Services
from service import logs
from service.deadline import CALLBACK_BUDGET_SECONDS, WEBHOOK_BUDGET_SECONDS, deadline_scope
from service.errors import (
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceError,
)
from service.instance import Instance, Wiring
from service.settings import Settings, SettingsError
from service.signature import public_url

_log = logging.getLogger("frontline")
MAX_BODY_BYTES = 256 * 1024
MAX_FORM_PARTS = 200
MAX_LOGGED_LOCATION_CHARS = 64  # logged before the signature is checked
HEALTH_PATH = "/healthz"
TASK_BUDGET = -1.0  # the task's budget comes from TASK_BUDGET_SECONDS


@dataclass(frozen=True)
class Route:
    """A path's handler, time budget, and who may call it."""

    handler: Callable[[Params, Services], Reply]
    budget: float
    caller: str  # "twilio" (signed callbacks) or "scheduler" (the refresh task)
    methods: tuple[str, ...] = ("POST",)


ROUTES: Mapping[str, Route] = {
    "/callbacks/crm": Route(crm.handle, CALLBACK_BUDGET_SECONDS, "twilio"),
    "/callbacks/outgoing-conversation": Route(
        outgoing_conversation.handle, CALLBACK_BUDGET_SECONDS, "twilio"
    ),
    "/callbacks/routing": Route(routing.handle, CALLBACK_BUDGET_SECONDS, "twilio"),
    "/callbacks/templates": Route(templates.handle, CALLBACK_BUDGET_SECONDS, "twilio"),
    "/callbacks/twilio-conversations": Route(
        twilio_conversations.handle, WEBHOOK_BUDGET_SECONDS, "twilio"
    ),
    "/tasks/refresh": Route(tasks.refresh, TASK_BUDGET, "scheduler"),
}


def serve(request: flask.Request, instance: Instance) -> flask.Response:
    """Answer one HTTP request: always JSON, errors included, and one log line."""
    started = time.monotonic()
    trace = logs.set_trace(request.headers.get("X-Cloud-Trace-Context"))
    path = normalise_path(request.path, instance.settings)
    seen: dict[str, str] = {}  # what the request line logs, filled as far as parsing got
    try:
        reply = _serve(request, path, instance, seen)
        status, body, headers = reply.status, reply.body, {}
    except ServiceError as error:
        status, body, headers = error.status, error.body(), error.response_headers()
    except Exception:
        _log.exception("unhandled error")
        status, body, headers = (
            500,
            {"error": {"code": "internal", "message": "internal error"}},
            {},
        )
    try:
        logs.log_fields(
            _log,
            logging.WARNING if status >= 500 else logging.INFO,
            f"{request.method} {path} {status}",
            path=path,
            location=seen.get("location"),
            status=status,
            latency_ms=round((time.monotonic() - started) * 1000, 1),
        )
    finally:
        logs.reset_trace(trace)
    return json_response(status, body, headers)


def json_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None
) -> flask.Response:
    """The one shape of every answer: JSON, never cached."""
    return flask.Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        headers={**(headers or {}), "Cache-Control": "no-store"},
        mimetype="application/json",
    )


def _serve(request: flask.Request, path: str, instance: Instance, seen: dict[str, str]) -> Reply:
    if path == HEALTH_PATH:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(["GET", "HEAD"])
        return Reply({"status": "ok"})
    route = ROUTES.get(path)
    if route is None:
        raise NotFound(f"no route for {path}")
    if request.method not in route.methods:
        raise MethodNotAllowed(list(route.methods))
    # Limits that hold for chunked bodies too. werkzeug cuts a chunked body at the limit
    # without an error, so it may read one byte more, and a body that long is refused.
    request.max_content_length = MAX_BODY_BYTES + 1
    request.max_form_parts = MAX_FORM_PARTS
    params = _parameters(request)
    location = params.get("Location") or params.get("EventType")
    if location:
        seen["location"] = location[:MAX_LOGGED_LOCATION_CHARS]
    wiring = instance.wiring()
    if route.caller == "twilio":
        _verify_twilio_signature(request, instance.settings, wiring)
    else:
        wiring.task_authorizer.check(request.headers.get("Authorization"))
    budget = instance.settings.task_budget_seconds if route.budget == TASK_BUDGET else route.budget
    with deadline_scope(budget):
        return route.handler(Params(params), wiring.services)


def normalise_path(path: str, settings: Settings) -> str:
    """Drop a trailing slash and a leading /<function-name> (Cloud Functions URLs may carry it)."""
    path = "/" + path.strip("/")
    for name in {"frontline", os.environ.get("K_SERVICE", "")} - {""}:
        prefix = f"/{name}"
        if path.startswith(prefix + "/"):
            return path[len(prefix) :]
    return path


def _parameters(request: flask.Request) -> dict[str, str]:
    """Form fields (Twilio posts form-encoded), a JSON object's fields, and the query string."""
    values: dict[str, str] = dict(request.args.items())
    too_large = PayloadTooLarge(
        f"the request body is over {MAX_BODY_BYTES} bytes or {MAX_FORM_PARTS} parts"
    )
    try:
        # Read (and keep) the raw body first: the form is then parsed from it, and the
        # signature check sees the same bytes.
        if len(request.get_data(cache=True)) > MAX_BODY_BYTES:
            raise too_large
        if request.mimetype == "application/json":
            body: Any = json.loads(request.get_data(as_text=True) or "{}")
            if not isinstance(body, dict):
                raise BadRequest("the JSON body must be an object")
            values.update(
                {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
            )
        else:
            values.update(request.form.items())
    except RequestEntityTooLarge as error:
        raise too_large from error
    except HTTPException as error:
        raise BadRequest("the request body could not be read") from error
    except (ValueError, RecursionError) as error:
        raise BadRequest("the body is not valid JSON") from error
    return values


def _verify_twilio_signature(request: flask.Request, settings: Settings, wiring: Wiring) -> None:
    """403 unless X-Twilio-Signature signs the public URL and the parameters with our token."""
    if not settings.signature_validation:
        return
    url = public_url(
        request.path,
        request.query_string.decode("latin-1"),
        request.headers.get,
        settings.public_base_url,
    )
    # A form is signed field by field; a JSON body only through its hash in the signed URL
    # (bodySHA256), so a JSON body without one is never accepted.
    signed: Any = request.form
    if request.mimetype == "application/json":
        if not request.args.get("bodySHA256"):
            raise Forbidden("a JSON body must be signed through bodySHA256")
        signed = request.get_data(as_text=True)
    if not wiring.verifier.is_valid(url, signed, request.headers.get("X-Twilio-Signature")):
        logs.log_fields(
            _log, logging.WARNING, "request refused: bad Twilio signature", path=request.path
        )
        raise Forbidden("missing or invalid X-Twilio-Signature")


# The instance functions-framework serves: settings are checked when the module loads, so a bad
# configuration stops the instance at start with one message instead of failing every request.
_instance: Instance | None = None
_instance_lock = threading.Lock()


def load_instance(env: Mapping[str, str] = os.environ) -> Instance:
    """Build the instance from the environment, or stop with one clear startup error."""
    try:
        settings = Settings.from_env(env)
    except SettingsError as error:
        logs.configure("INFO", None)
        _log.critical(str(error))
        raise SystemExit(f"frontline: {error}") from None
    logs.configure(settings.log_level, settings.google_cloud_project)
    return Instance(settings)


def default_instance() -> Instance:
    """The instance built from this process's environment (once)."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = load_instance()
        return _instance


if os.environ.get("FUNCTION_TARGET"):
    default_instance()


@functions_framework.http
def frontline(request: flask.Request) -> flask.Response:
    """The Cloud Function's entry point."""
    return serve(request, default_instance())


def framework_not_found(error: HTTPException) -> flask.Response:
    """functions-framework answers /robots.txt and /favicon.ico itself; keep those JSON too."""
    missing = NotFound(f"no route for {flask.request.path}")
    return json_response(missing.status, missing.body())


functions_framework.errorhandler(404)(framework_not_found)
