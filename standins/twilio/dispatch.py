"""One request through the stand-in: faults, authentication, routing by the spec, validation."""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from standins.twilio.api import ApiRequest, ConversationsApi
from standins.twilio.errors import (
    AUTHENTICATE,
    METHOD_NOT_ALLOWED,
    TwilioApiError,
    bad_parameter,
    error_body,
    not_found,
)
from standins.twilio.faults import FaultPlan
from standins.twilio.spec import Operation, Spec

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


@dataclass
class RecordedRequest:
    """An HTTP request the stand-in received; `status` is None until it has been answered.

    `headers` holds the request headers except Authorization.
    """

    method: str
    path: str
    params: dict[str, str]
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IncomingRequest:
    """The parts of an HTTP request the stand-in looks at."""

    method: str
    raw_path: str
    query: Sequence[tuple[str, str]]
    form: Sequence[tuple[str, str]]
    headers: Mapping[str, str]

    @property
    def path(self) -> str:
        """The decoded path, as recorded and as fault patterns see it."""
        return unquote(self.raw_path)


@dataclass(frozen=True)
class Answer:
    """Status, JSON body (None for an empty body) and extra headers of a response."""

    status: int
    body: dict[str, Any] | None
    headers: Mapping[str, str] = field(default_factory=dict)


class Dispatcher:
    """Answers requests for one account, recording each one."""

    def __init__(
        self,
        spec: Spec,
        api: ConversationsApi,
        faults: FaultPlan,
        account_sid: str,
        auth_token: str,
        sleep: Callable[[float], object],
    ) -> None:
        self.spec = spec
        self.api = api
        self.faults = faults
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._sleep = sleep
        self._lock = threading.Condition()
        self._recorded: list[RecordedRequest] = []
        self._in_flight = 0

    @property
    def recorded(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._recorded)

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._recorded.clear()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being processed; False if that took longer than `timeout`."""
        with self._lock:
            return self._lock.wait_for(lambda: self._in_flight == 0, timeout)

    def answer(self, request: IncomingRequest) -> Answer:
        """Run the request and produce Twilio's response to it."""
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            params=dict(request.query) | dict(request.form),
            headers={k: v for k, v in request.headers.items() if k != "Authorization"},
        )
        with self._lock:
            self._recorded.append(record)
            self._in_flight += 1
        try:
            answer = self._answer_or_error(request)
            record.status = answer.status
            return answer
        finally:
            with self._lock:
                self._in_flight -= 1
                self._lock.notify_all()

    def _answer_or_error(self, request: IncomingRequest) -> Answer:
        try:
            return self._answer(request)
        except TwilioApiError as error:
            headers = {}
            if error.code == AUTHENTICATE:
                headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return Answer(error.status, error.body(), headers)
        except Exception:
            # A bug in the stand-in: show it, and answer as Twilio does when it fails.
            traceback.print_exc()
            return Answer(500, error_body(500, 20500, "Internal Server Error"))

    def _answer(self, request: IncomingRequest) -> Answer:
        delay = self.faults.take_delay(request.method, request.path)
        if delay > 0:
            self._sleep(delay)
        failure = self.faults.take_failure(request.method, request.path)
        if failure is not None:
            raise failure
        self._authenticate(request.headers.get("Authorization", ""))
        operation, path_params = self._route(request)
        params = self._validated_params(operation, request)
        status, body = self.api.handle(ApiRequest(operation, request.path, path_params, params))
        return Answer(status, body)

    def _authenticate(self, authorization: str) -> None:
        scheme, _, encoded = authorization.partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, _, password = decoded.partition(":")
        valid = (
            scheme.lower() == "basic"
            and hmac.compare_digest(username.encode(), self.account_sid.encode())
            and hmac.compare_digest(password.encode(), self.auth_token.encode())
        )
        if not valid:
            raise TwilioApiError(401, AUTHENTICATE, "Authenticate")

    def _route(self, request: IncomingRequest) -> tuple[Operation, dict[str, str]]:
        matched = self.spec.match(request.raw_path)
        if matched is None:
            raise not_found(request.path)
        template, raw_params = matched
        operation = self.spec.operation(template, request.method)
        if operation is None:
            raise TwilioApiError(405, METHOD_NOT_ALLOWED, "Method not allowed")
        return operation, {name: unquote(value) for name, value in raw_params.items()}

    def _validated_params(self, operation: Operation, request: IncomingRequest) -> dict[str, str]:
        """Form and query values checked against the operation's parameters in the spec."""
        if request.form and request.headers.get("Content-Type", "").split(";")[0] != (
            FORM_CONTENT_TYPE
        ):
            raise bad_parameter(f"Request body must be {FORM_CONTENT_TYPE}")
        checks = [(request.query, operation.query_params), (request.form, operation.form_params)]
        for pairs, accepted in checks:
            for name, value in pairs:
                schema = accepted.get(name)
                if schema is None:
                    raise bad_parameter(f"Unknown parameter: {name}")
                reason = self.spec.invalid_value(schema, value)
                if reason is not None:
                    raise bad_parameter(f"Invalid parameter {name}: {reason}")
        return dict(request.query) | dict(request.form)
