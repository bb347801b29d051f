"""Resources as the JSON Twilio returns: every property of the spec's schema, snake_case keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from standins.twilio.spec import Spec
from standins.twilio.store import Conversation, Message, Participant

CONVERSATION_SCHEMA = "conversations.v1.conversation"
PARTICIPANT_SCHEMA = "conversations.v1.conversation.conversation_participant"
MESSAGE_SCHEMA = "conversations.v1.conversation.conversation_message"

_CHANNEL_PREFIXES = ("whatsapp", "messenger", "rcs", "gbm", "email")


def iso(moment: datetime | None) -> str | None:
    """Twilio's date format: ISO 8601 in UTC with a Z, whole seconds."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def binding_type(address: str) -> str:
    """The channel of a binding address: `whatsapp:+1...` is whatsapp, a bare number is sms."""
    prefix = address.split(":", 1)[0].lower() if ":" in address else ""
    return prefix if prefix in _CHANNEL_PREFIXES else "sms"


class Renderer:
    """Turns stored resources into response JSON; URLs point at `base_url`."""

    def __init__(self, spec: Spec, account_sid: str, chat_service_sid: str) -> None:
        self.spec = spec
        self.account_sid = account_sid
        self.chat_service_sid = chat_service_sid
        self.base_url = "https://conversations.twilio.com"

    def conversation(self, conversation: Conversation) -> dict[str, Any]:
        """A Conversation resource."""
        url = f"{self.base_url}/v1/Conversations/{conversation.sid}"
        values = {
            "account_sid": self.account_sid,
            "chat_service_sid": self.chat_service_sid,
            "messaging_service_sid": conversation.messaging_service_sid,
            "sid": conversation.sid,
            "friendly_name": conversation.friendly_name,
            "unique_name": conversation.unique_name,
            "attributes": conversation.attributes,
            "state": conversation.state,
            "date_created": iso(conversation.date_created),
            "date_updated": iso(conversation.date_updated),
            "timers": {},
            "url": url,
            "links": {
                "participants": f"{url}/Participants",
                "messages": f"{url}/Messages",
                "webhooks": f"{url}/Webhooks",
                "export": f"{url}/Export",
            },
            "bindings": None,
        }
        return self._project(CONVERSATION_SCHEMA, values)

    def participant(self, participant: Participant) -> dict[str, Any]:
        """A Conversation Participant resource."""
        values = {
            "account_sid": self.account_sid,
            "conversation_sid": participant.conversation_sid,
            "sid": participant.sid,
            "identity": participant.identity,
            "attributes": participant.attributes,
            "messaging_binding": _messaging_binding(participant),
            "role_sid": participant.role_sid,
            "date_created": iso(participant.date_created),
            "date_updated": iso(participant.date_updated),
            "url": (
                f"{self.base_url}/v1/Conversations/{participant.conversation_sid}"
                f"/Participants/{participant.sid}"
            ),
            "last_read_message_index": participant.last_read_message_index,
            "last_read_timestamp": participant.last_read_timestamp,
        }
        return self._project(PARTICIPANT_SCHEMA, values)

    def message(self, message: Message) -> dict[str, Any]:
        """A Conversation Message resource."""
        url = f"{self.base_url}/v1/Conversations/{message.conversation_sid}/Messages/{message.sid}"
        values = {
            "account_sid": self.account_sid,
            "conversation_sid": message.conversation_sid,
            "sid": message.sid,
            "index": message.index,
            "author": message.author,
            "body": message.body,
            "media": None,
            "attributes": message.attributes,
            "participant_sid": message.participant_sid,
            "date_created": iso(message.date_created),
            "date_updated": iso(message.date_updated),
            "url": url,
            "delivery": None,
            "links": {
                "delivery_receipts": f"{url}/Receipts",
                "channel_metadata": f"{url}/ChannelMetadata",
            },
            "content_sid": message.content_sid,
        }
        return self._project(MESSAGE_SCHEMA, values)

    def _project(self, schema_name: str, values: dict[str, Any]) -> dict[str, Any]:
        # The spec decides which keys exist: a property it lists that we do not model comes
        # out as null, and nothing it does not list is sent.
        return {name: values.get(name) for name in self.spec.properties(schema_name)}


def _messaging_binding(participant: Participant) -> dict[str, str | None] | None:
    if participant.address is not None:
        return {
            "type": binding_type(participant.address),
            "address": participant.address,
            "proxy_address": participant.proxy_address,
        }
    if participant.projected_address is not None:
        return {
            "type": binding_type(participant.projected_address),
            "projected_address": participant.projected_address,
        }
    return None
