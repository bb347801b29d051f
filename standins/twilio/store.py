"""In-memory Conversations, Participants and Messages, with the conflicts Twilio enforces."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from standins.twilio.errors import (
    ATTRIBUTES_NOT_JSON,
    BINDING_EXISTS,
    PARTICIPANT_EXISTS,
    UNIQUE_NAME_EXISTS,
    TwilioApiError,
    not_found,
)

Clock = Callable[[], datetime]


def new_sid(prefix: str) -> str:
    """A 34-character Twilio SID: two letters and 32 hex digits."""
    return prefix + uuid.uuid4().hex


def utc_now() -> datetime:
    """The current time, as Twilio stamps resources: UTC, whole seconds."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Participant:
    """A member of a conversation: a chat identity, an SMS/WhatsApp binding, or both."""

    sid: str
    conversation_sid: str
    identity: str | None
    attributes: str
    address: str | None
    proxy_address: str | None
    projected_address: str | None
    role_sid: str | None
    date_created: datetime
    date_updated: datetime
    last_read_message_index: int | None = None
    last_read_timestamp: str | None = None


@dataclass
class Message:
    """A message posted to a conversation."""

    sid: str
    conversation_sid: str
    index: int
    author: str
    body: str | None
    attributes: str
    participant_sid: str | None
    content_sid: str | None
    date_created: datetime
    date_updated: datetime


@dataclass
class Conversation:
    """A conversation with its participants (in joining order) and messages."""

    sid: str
    friendly_name: str | None
    unique_name: str | None
    attributes: str
    state: str
    messaging_service_sid: str
    date_created: datetime
    date_updated: datetime
    participants: dict[str, Participant] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)


def check_attributes(attributes: str) -> str:
    """Twilio requires Attributes to be structurally valid JSON."""
    try:
        json.loads(attributes)
    except ValueError:
        raise TwilioApiError(400, ATTRIBUTES_NOT_JSON, "Attributes must be valid JSON") from None
    return attributes


class ConversationStore:
    """All conversations of one account; every method is safe to call from several threads."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.chat_service_sid = new_sid("IS")
        self.messaging_service_sid = new_sid("MG")
        self.participant_role_sid = new_sid("RL")
        self.lock = threading.RLock()
        self._conversations: dict[str, Conversation] = {}

    def clear(self) -> None:
        """Forget every conversation."""
        with self.lock:
            self._conversations.clear()

    # Conversations

    def create_conversation(
        self,
        friendly_name: str | None = None,
        unique_name: str | None = None,
        attributes: str = "{}",
        state: str = "active",
        messaging_service_sid: str | None = None,
        date_created: datetime | None = None,
    ) -> Conversation:
        """Create a conversation; a unique name already in use is a 409."""
        check_attributes(attributes)
        with self.lock:
            if unique_name is not None and self._by_unique_name(unique_name):
                raise TwilioApiError(
                    409, UNIQUE_NAME_EXISTS, "Conversation with provided unique name already exists"
                )
            now = self.clock()
            conversation = Conversation(
                sid=new_sid("CH"),
                friendly_name=friendly_name,
                unique_name=unique_name,
                attributes=attributes,
                state=state,
                messaging_service_sid=messaging_service_sid or self.messaging_service_sid,
                date_created=date_created or now,
                date_updated=date_created or now,
            )
            self._conversations[conversation.sid] = conversation
            return conversation

    def conversation(self, sid_or_unique_name: str, path: str | None = None) -> Conversation:
        """A conversation by SID or unique name; 404 when there is none."""
        with self.lock:
            found = self._conversations.get(sid_or_unique_name) or self._by_unique_name(
                sid_or_unique_name
            )
        if found is None:
            raise not_found(path or f"/Conversations/{sid_or_unique_name}")
        return found

    def conversations(self, state: str | None = None) -> list[Conversation]:
        """Every conversation, oldest first, optionally only those in `state`."""
        with self.lock:
            return [c for c in self._conversations.values() if state is None or c.state == state]

    def update_conversation(self, conversation: Conversation, **changes: object) -> Conversation:
        """Apply changes (attribute name to new value); a taken unique name is a 409."""
        with self.lock:
            if "attributes" in changes:
                check_attributes(str(changes["attributes"]))
            name = changes.get("unique_name")
            if isinstance(name, str):
                other = self._by_unique_name(name)
                if other is not None and other is not conversation:
                    raise TwilioApiError(
                        409,
                        UNIQUE_NAME_EXISTS,
                        "Conversation with provided unique name already exists",
                    )
            for key, value in changes.items():
                setattr(conversation, key, value)
            if "date_updated" not in changes:
                conversation.date_updated = self.clock()
            return conversation

    def delete_conversation(self, conversation: Conversation) -> None:
        """Remove a conversation with its participants and messages."""
        with self.lock:
            self._conversations.pop(conversation.sid, None)

    # Participants

    def add_participant(
        self,
        conversation: Conversation,
        identity: str | None = None,
        address: str | None = None,
        proxy_address: str | None = None,
        projected_address: str | None = None,
        attributes: str = "{}",
        role_sid: str | None = None,
        date_created: datetime | None = None,
    ) -> Participant:
        """Add a participant; a taken identity or binding address is a 409 as on Twilio."""
        check_attributes(attributes)
        with self.lock:
            if identity is not None:
                self._check_identity_free(conversation, identity, None)
            if address is not None:
                self._check_binding_free(conversation, address, proxy_address)
            now = self.clock()
            participant = Participant(
                sid=new_sid("MB"),
                conversation_sid=conversation.sid,
                identity=identity,
                attributes=attributes,
                address=address,
                proxy_address=proxy_address,
                projected_address=projected_address,
                role_sid=role_sid or self.participant_role_sid,
                date_created=date_created or now,
                date_updated=date_created or now,
            )
            conversation.participants[participant.sid] = participant
            return participant

    def participant(self, conversation: Conversation, sid: str, path: str) -> Participant:
        """A participant of `conversation` by SID or identity; 404 when there is none."""
        with self.lock:
            found = conversation.participants.get(sid) or next(
                (p for p in conversation.participants.values() if p.identity == sid), None
            )
        if found is None:
            raise not_found(path)
        return found

    def update_participant(self, participant: Participant, **changes: object) -> Participant:
        """Apply changes (attribute name to new value); a taken identity is a 409."""
        with self.lock:
            if "attributes" in changes:
                check_attributes(str(changes["attributes"]))
            identity = changes.get("identity")
            if isinstance(identity, str):
                conversation = self._conversations[participant.conversation_sid]
                self._check_identity_free(conversation, identity, participant)
            for key, value in changes.items():
                setattr(participant, key, value)
            if "date_updated" not in changes:
                participant.date_updated = self.clock()
            return participant

    def remove_participant(self, participant: Participant) -> None:
        """Remove a participant from its conversation."""
        with self.lock:
            conversation = self._conversations.get(participant.conversation_sid)
            if conversation is not None:
                conversation.participants.pop(participant.sid, None)

    # Messages

    def add_message(
        self,
        conversation: Conversation,
        author: str | None = None,
        body: str | None = None,
        attributes: str = "{}",
        content_sid: str | None = None,
        date_created: datetime | None = None,
    ) -> Message:
        """Post a message; its author defaults to `system`, as on Twilio."""
        check_attributes(attributes)
        with self.lock:
            author = author or "system"
            sender = next(
                (
                    p
                    for p in conversation.participants.values()
                    if author in (p.identity, p.address)
                ),
                None,
            )
            now = self.clock()
            message = Message(
                sid=new_sid("IM"),
                conversation_sid=conversation.sid,
                index=len(conversation.messages),
                author=author,
                body=body,
                attributes=attributes,
                participant_sid=sender.sid if sender else None,
                content_sid=content_sid,
                date_created=date_created or now,
                date_updated=date_created or now,
            )
            conversation.messages.append(message)
            return message

    def _by_unique_name(self, unique_name: str) -> Conversation | None:
        return next((c for c in self._conversations.values() if c.unique_name == unique_name), None)

    def _check_identity_free(
        self, conversation: Conversation, identity: str, exempt: Participant | None
    ) -> None:
        for other in conversation.participants.values():
            if other.identity == identity and other is not exempt:
                raise TwilioApiError(409, PARTICIPANT_EXISTS, "Participant already exists")

    def _check_binding_free(
        self, conversation: Conversation, address: str, proxy_address: str | None
    ) -> None:
        # Twilio keeps one route per (address, proxy address) pair across all open
        # conversations, and one binding per address within a conversation.
        for other_conversation in self._conversations.values():
            if other_conversation.state == "closed":
                continue
            same_conversation = other_conversation is conversation
            for other in other_conversation.participants.values():
                if other.address != address:
                    continue
                if same_conversation or other.proxy_address == proxy_address:
                    raise TwilioApiError(
                        409,
                        BINDING_EXISTS,
                        "A binding for this participant and proxy address already exists"
                        f" in Conversation {other_conversation.sid}",
                    )
