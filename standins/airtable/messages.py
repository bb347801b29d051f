"""Requests and answers passed between the HTTP server and the request handlers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from standins.airtable import errors


@dataclass
class Request:
    """An HTTP request: method, raw path, decoded query, headers and body."""

    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    target_length: int = 0

    @classmethod
    def from_target(
        cls, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Request:
        """Build from a request target such as ``/v0/app/Table?pageSize=5``."""
        path, _, query = target.partition("?")
        parsed = parse_qs(query, keep_blank_values=True)
        return cls(method.upper(), path, parsed, headers, body, len(target))

    def segments(self, prefix: str) -> list[str]:
        """Decoded path segments after ``prefix`` (table names may hold encoded slashes)."""
        rest = self.path[len(prefix) :].strip("/")
        return [unquote(part) for part in rest.split("/")] if rest else []

    def json(self) -> Any:
        """The body as JSON; a 422 when it is not."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise errors.invalid_request("The request body is not valid JSON") from None

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (empty when there is no body); a 422 otherwise."""
        body = self.json()
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise errors.invalid_request("The request body must be a JSON object")
        return body


@dataclass
class Response:
    """An answer: status and JSON body."""

    status: int
    body: Any

    @classmethod
    def error(cls, error: errors.ApiError) -> Response:
        """The answer for an ApiError."""
        return cls(error.status, error.body)
