"""What every handler shares: its parameters, the services it may use, and its reply."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cache.directory import ContactDirectory
from handlers.page_tokens import PageTokens
from integrations.conversations import Conversations
from service.errors import BadRequest, Unprocessable
from service.settings import Settings

MAX_VALUE_CHARS = 10_000
MAX_IDENTITY_CHARS = 256
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Reply:
    """A JSON body and its HTTP status."""

    body: Any
    status: int = 200


@dataclass(frozen=True)
class Services:
    """What handlers may use: the contact directory, Twilio, settings and page tokens."""

    directory: ContactDirectory
    conversations: Conversations
    settings: Settings
    page_tokens: PageTokens


class Params:
    """The callback's parameters (every value arrives as a string), with validation."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def text(
        self, name: str, *, max_length: int = MAX_VALUE_CHARS, multiline: bool = False
    ) -> str | None:
        """The trimmed value, or None when absent or empty; 400 when too long or not text."""
        value = self._values.get(name)
        if value is None:
            return None
        value = value.strip()
        if not value:
            return None
        if len(value) > max_length:
            raise BadRequest(f"{name} is longer than {max_length} characters", field=name)
        if _CONTROL.search(value) or (not multiline and ("\n" in value or "\r" in value)):
            raise BadRequest(f"{name} must not contain control characters", field=name)
        return value

    def required(self, name: str, *, max_length: int = MAX_VALUE_CHARS) -> str:
        """The value, or 400 naming the parameter."""
        value = self.text(name, max_length=max_length)
        if value is None:
            raise BadRequest(f"{name} is required", field=name)
        return value

    def worker(self) -> str:
        """The Frontline identity of the rep making the request."""
        return self.required("Worker", max_length=MAX_IDENTITY_CHARS)

    def integer(self, name: str, *, default: int, low: int, high: int) -> int:
        """A whole number clamped to low..high; 400 when it is not a whole number."""
        value = self.text(name, max_length=20)
        if value is None:
            return default
        if not re.fullmatch(r"[+-]?\d+", value):
            raise BadRequest(f"{name} must be a whole number", field=name)
        return min(high, max(low, int(value)))

    def json(self, name: str) -> Any:
        """The value parsed as JSON, or None when absent; 400 when it is not JSON."""
        value = self.text(name)
        if value is None:
            return None
        try:
            return json.loads(value)
        except (ValueError, RecursionError) as error:
            raise BadRequest(f"{name} is not valid JSON", field=name) from error

    def sid(self, name: str, prefix: str) -> str:
        """A Twilio SID such as CH… or MB… (34 characters); 400 otherwise."""
        value = self.required(name, max_length=34)
        if not re.fullmatch(prefix + r"[0-9a-fA-F]{32}", value):
            raise BadRequest(f"{name} must be {prefix} followed by 32 hex digits", field=name)
        return value


Action = Callable[[Params, Services], Reply]


def dispatch(params: Params, services: Services, actions: Mapping[str, Action]) -> Reply:
    """Call the action named by `Location`; 422 when this callback has no such action."""
    location = params.required("Location", max_length=100)
    action = actions.get(location)
    if action is None:
        raise Unprocessable(f"unknown Location {location!r}", field="Location")
    return action(params, services)
