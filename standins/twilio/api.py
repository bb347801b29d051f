"""The Conversations operations the stand-in implements: parameters in, status and JSON out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from standins.twilio.errors import TwilioApiError, bad_parameter, not_found
from standins.twilio.paging import page
from standins.twilio.render import Renderer
from standins.twilio.spec import Operation, Spec
from standins.twilio.store import Conversation, ConversationStore

Reply = tuple[int, dict[str, Any] | None]


@dataclass(frozen=True)
class ApiRequest:
    """A routed request: its operation, path, path parameters and form or query parameters."""

    operation: Operation
    path: str
    path_params: Mapping[str, str]
    params: Mapping[str, str]


# Form parameter -> resource field, for the parameters that update a resource one-to-one.
_CONVERSATION_FIELDS = {
    "FriendlyName": "friendly_name",
    "UniqueName": "unique_name",
    "Attributes": "attributes",
    "State": "state",
    "MessagingServiceSid": "messaging_service_sid",
    "DateCreated": "date_created",
    "DateUpdated": "date_updated",
}
_PARTICIPANT_FIELDS = {
    "Identity": "identity",
    "Attributes": "attributes",
    "RoleSid": "role_sid",
    "MessagingBinding.ProxyAddress": "proxy_address",
    "MessagingBinding.ProjectedAddress": "projected_address",
    "LastReadMessageIndex": "last_read_message_index",
    "LastReadTimestamp": "last_read_timestamp",
    "DateCreated": "date_created",
    "DateUpdated": "date_updated",
}


class ConversationsApi:
    """Runs one operation against the store; raises TwilioApiError for Twilio's error answers."""

    def __init__(self, spec: Spec, store: ConversationStore, renderer: Renderer) -> None:
        self.spec = spec
        self.store = store
        self.render = renderer
        self._handlers: dict[str, Callable[[ApiRequest], Reply]] = {
            "CreateConversation": self._create_conversation,
            "ListConversation": self._list_conversations,
            "FetchConversation": self._fetch_conversation,
            "UpdateConversation": self._update_conversation,
            "DeleteConversation": self._delete_conversation,
            "CreateConversationParticipant": self._create_participant,
            "ListConversationParticipant": self._list_participants,
            "FetchConversationParticipant": self._fetch_participant,
            "UpdateConversationParticipant": self._update_participant,
            "DeleteConversationParticipant": self._delete_participant,
            "CreateConversationMessage": self._create_message,
            "ListConversationMessage": self._list_messages,
            "FetchConversationMessage": self._fetch_message,
        }

    def implements(self, operation: Operation) -> bool:
        """True when the stand-in models this operation (the rest answer 501)."""
        return operation.operation_id in self._handlers

    def handle(self, request: ApiRequest) -> Reply:
        """Run the request's operation and return its status and JSON body."""
        handler = self._handlers.get(request.operation.operation_id)
        if handler is None:
            raise TwilioApiError(
                501, 20501, f"{request.operation.operation_id} is not implemented by the stand-in"
            )
        return handler(request)

    # Conversations

    def _create_conversation(self, request: ApiRequest) -> Reply:
        p = request.params
        conversation = self.store.create_conversation(
            friendly_name=p.get("FriendlyName"),
            unique_name=p.get("UniqueName"),
            attributes=p.get("Attributes") or "{}",
            state=p.get("State") or "active",
            messaging_service_sid=p.get("MessagingServiceSid"),
            date_created=_datetime(p.get("DateCreated")),
        )
        return 201, self.render.conversation(conversation)

    def _list_conversations(self, request: ApiRequest) -> Reply:
        p = request.params
        start, end = _date(p.get("StartDate")), _date(p.get("EndDate"))
        found = [
            c
            for c in self.store.conversations(p.get("State"))
            if (start is None or c.date_created.date() >= start)
            and (end is None or c.date_created.date() <= end)
        ]
        return self._page(request, [self.render.conversation(c) for c in found])

    def _fetch_conversation(self, request: ApiRequest) -> Reply:
        return 200, self.render.conversation(self._conversation(request))

    def _update_conversation(self, request: ApiRequest) -> Reply:
        conversation = self._conversation(request)
        changes = _changes(request.params, _CONVERSATION_FIELDS)
        self.store.update_conversation(conversation, **changes)
        return 200, self.render.conversation(conversation)

    def _delete_conversation(self, request: ApiRequest) -> Reply:
        self.store.delete_conversation(self._conversation(request))
        return 204, None

    # Participants

    def _create_participant(self, request: ApiRequest) -> Reply:
        p = request.params
        participant = self.store.add_participant(
            self._conversation(request),
            identity=p.get("Identity"),
            address=p.get("MessagingBinding.Address"),
            proxy_address=p.get("MessagingBinding.ProxyAddress"),
            projected_address=p.get("MessagingBinding.ProjectedAddress"),
            attributes=p.get("Attributes") or "{}",
            role_sid=p.get("RoleSid"),
            date_created=_datetime(p.get("DateCreated")),
        )
        return 201, self.render.participant(participant)

    def _list_participants(self, request: ApiRequest) -> Reply:
        conversation = self._conversation(request)
        with self.store.lock:
            records = [self.render.participant(x) for x in conversation.participants.values()]
        return self._page(request, records)

    def _fetch_participant(self, request: ApiRequest) -> Reply:
        conversation = self._conversation(request)
        participant = self.store.participant(conversation, request.path_params["Sid"], request.path)
        return 200, self.render.participant(participant)

    def _update_participant(self, request: ApiRequest) -> Reply:
        conversation = self._conversation(request)
        participant = self.store.participant(conversation, request.path_params["Sid"], request.path)
        changes = _changes(request.params, _PARTICIPANT_FIELDS)
        self.store.update_participant(participant, **changes)
        return 200, self.render.participant(participant)

    def _delete_participant(self, request: ApiRequest) -> Reply:
        conversation = self._conversation(request)
        participant = self.store.participant(conversation, request.path_params["Sid"], request.path)
        self.store.remove_participant(participant)
        return 204, None

    # Messages

    def _create_message(self, request: ApiRequest) -> Reply:
        p = request.params
        message = self.store.add_message(
            self._conversation(request),
            author=p.get("Author"),
            body=p.get("Body"),
            attributes=p.get("Attributes") or "{}",
            content_sid=p.get("ContentSid"),
            date_created=_datetime(p.get("DateCreated")),
        )
        return 201, self.render.message(message)

    def _list_messages(self, request: ApiRequest) -> Reply:
        conversation = self._conversation(request)
        with self.store.lock:
            records = [self.render.message(m) for m in conversation.messages]
        if request.params.get("Order") == "desc":
            records.reverse()
        return self._page(request, records)

    def _fetch_message(self, request: ApiRequest) -> Reply:
        conversation = self._conversation(request)
        sid = request.path_params["Sid"]
        with self.store.lock:
            found = next((m for m in conversation.messages if m.sid == sid), None)
        if found is None:
            raise not_found(request.path)
        return 200, self.render.message(found)

    # Helpers

    def _conversation(self, request: ApiRequest) -> Conversation:
        sid = request.path_params.get("ConversationSid") or request.path_params["Sid"]
        return self.store.conversation(sid, request.path)

    def _page(self, request: ApiRequest, records: list[dict[str, Any]]) -> Reply:
        operation = request.operation
        assert operation.list_key is not None
        maximum = int(operation.query_params.get("PageSize", {}).get("maximum", 1000))
        resource_url = f"{self.render.base_url}{request.path}"
        return 200, page(records, request.params, resource_url, operation.list_key, maximum)


def _changes(params: Mapping[str, str], fields: Mapping[str, str]) -> dict[str, object]:
    """Resource field changes from form parameters; Twilio's `null` clears a field."""
    changes: dict[str, object] = {}
    for name, field_name in fields.items():
        if name not in params:
            continue
        raw = params[name]
        value: object = None if raw in ("", "null") else raw
        if value is not None and name.startswith("Date"):
            value = _datetime(raw)
        elif value is not None and name == "LastReadMessageIndex":
            value = int(raw)
        if field_name == "attributes" and value is None:
            value = "{}"
        changes[field_name] = value
    return changes


def _datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise bad_parameter(f"Date-time {value} needs a time zone")
    return moment.astimezone(UTC).replace(microsecond=0)


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise bad_parameter(f"Invalid date {value}") from None
