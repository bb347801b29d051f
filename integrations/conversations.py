"""Twilio's Conversations API, through the twilio helper library: the only module that knows it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from service.deadline import current_deadline
from service.errors import DependencyFailed, DependencyUnavailable, NotFound
from service.logs import log_fields

_log = logging.getLogger(__name__)
# The helper library logs every request body at INFO; bodies hold identities and numbers.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

MAX_CALL_SECONDS = 3.0
_PARTICIPANT_EXISTS = 409


@dataclass(frozen=True)
class Participant:
    """A conversation participant: a worker (identity) or a customer (messaging address)."""

    sid: str
    identity: str | None
    address: str | None
    attributes: Mapping[str, Any] = field(default_factory=dict)


class _DeadlineHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio is untyped
    """Gives each Twilio request the time its callback has left, at most MAX_CALL_SECONDS."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        remaining = current_deadline().remaining()
        if remaining < 0.2:
            raise DependencyUnavailable("no time left to call Twilio in this callback's budget")
        kwargs["timeout"] = min(MAX_CALL_SECONDS, remaining)
        return super().request(*args, **kwargs)


class Conversations:
    """The few Conversations operations the callbacks need."""

    def __init__(self, account_sid: str, auth_token: str, base_url: str | None = None) -> None:
        self._client = Client(account_sid, auth_token, http_client=_DeadlineHttpClient())
        if base_url:
            self._client.conversations.base_url = base_url

    def add_worker(self, conversation_sid: str, identity: str) -> bool:
        """Add a worker to the conversation; False when they already were (Twilio's retries)."""
        with _calling("add the worker to the conversation", exists_ok=True) as outcome:
            self._client.conversations.v1.conversations(conversation_sid).participants.create(
                identity=identity
            )
        return not outcome.existed

    def participant(self, conversation_sid: str, participant_sid: str) -> Participant:
        """Fetch one participant."""
        with _calling("fetch the participant"):
            found = (
                self._client.conversations.v1.conversations(conversation_sid)
                .participants(participant_sid)
                .fetch()
            )
        return _participant(found)

    def participants(self, conversation_sid: str) -> list[Participant]:
        """Every participant of the conversation."""
        with _calling("list the participants"):
            found = self._client.conversations.v1.conversations(conversation_sid).participants.list(
                limit=50
            )
        return [_participant(p) for p in found]

    def update_participant_attributes(
        self, conversation_sid: str, participant_sid: str, attributes: Mapping[str, Any]
    ) -> None:
        """Replace the participant's attributes."""
        with _calling("update the participant"):
            self._client.conversations.v1.conversations(conversation_sid).participants(
                participant_sid
            ).update(attributes=json.dumps(dict(attributes), ensure_ascii=False))


def _participant(resource: Any) -> Participant:
    binding = resource.messaging_binding or {}
    try:
        attributes = json.loads(resource.attributes or "{}")
    except ValueError:
        attributes = {}
    return Participant(
        sid=str(resource.sid),
        identity=resource.identity or None,
        address=binding.get("address") if isinstance(binding, dict) else None,
        attributes=attributes if isinstance(attributes, dict) else {},
    )


@dataclass
class _Outcome:
    existed: bool = False


@contextmanager
def _calling(action: str, *, exists_ok: bool = False) -> Iterator[_Outcome]:
    """Turn Twilio's failures into the service's errors: 503 so Twilio retries, 502 otherwise."""
    outcome = _Outcome()
    try:
        yield outcome
    except TwilioRestException as error:
        if exists_ok and error.status == _PARTICIPANT_EXISTS:
            outcome.existed = True
            return
        log_fields(
            _log,
            logging.WARNING,
            "Twilio request failed",
            action=action,
            status=error.status,
            twilio_code=error.code,
        )
        if error.status == 404:
            raise NotFound(f"Twilio could not find what we tried to {action}") from error
        if error.status == 429 or error.status >= 500:
            raise DependencyUnavailable(
                f"Twilio is failing ({error.status}) to {action}"
            ) from error
        raise DependencyFailed(
            f"Twilio refused to {action}: {error.status} {error.code}"
        ) from error
    except TwilioException as error:
        # The helper library raises this bare form when a list page cannot be fetched.
        log_fields(_log, logging.WARNING, "Twilio request failed", action=action)
        raise DependencyUnavailable(f"Twilio failed to {action}") from error
    except requests.RequestException as error:
        log_fields(
            _log, logging.WARNING, "Twilio unreachable", action=action, error=type(error).__name__
        )
        raise DependencyUnavailable(f"Twilio did not answer in time to {action}") from error
