"""Typed errors, raised where they happen and turned into HTTP status + JSON in main.py."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class ServiceError(Exception):
    """An error with an HTTP status, a stable code and a message safe to show to the caller."""

    status: int = 500
    code: str = "internal"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        retry_after: float | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after = retry_after
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body: `{"error": {"code", "message", "field"?}}` plus any extra keys."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error, **self.extra}

    def response_headers(self) -> dict[str, str]:
        """Headers to send with the error (Retry-After, Allow, ...)."""
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


class BadRequest(ServiceError):
    """The request is malformed: a missing, empty or invalid parameter."""

    status = 400
    code = "bad_request"


class Forbidden(ServiceError):
    """The caller may not do this (bad signature, refused action, opted-out customer)."""

    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    """No such route or record."""

    status = 404
    code = "not_found"


class MethodNotAllowed(ServiceError):
    """The route exists but not for this HTTP method."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(
            f"Method not allowed; use {', '.join(allowed)}", headers={"Allow": ", ".join(allowed)}
        )


class Unprocessable(ServiceError):
    """Well-formed but not something this service can act on (an unknown Location)."""

    status = 422
    code = "unprocessable"


class DependencyFailed(ServiceError):
    """A dependency answered, but with an error we cannot recover from (502)."""

    status = 502
    code = "bad_gateway"


class DependencyUnavailable(ServiceError):
    """A dependency is down, rate limited or too slow for the time budget (503, Retry-After)."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: float = 5.0, **kwargs: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kwargs)


class NotConfigured(ServiceError):
    """A setting this request needs is missing, so the callback cannot be served."""

    status = 503
    code = "not_configured"


class PayloadTooLarge(ServiceError):
    """The request body is larger than any callback sends."""

    status = 413
    code = "payload_too_large"
