"""ConversationsStandIn: Twilio's Conversations REST API in memory, for tests and `make run`."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from standins.twilio.api import ConversationsApi
from standins.twilio.dispatch import Dispatcher, RecordedRequest
from standins.twilio.faults import FaultPlan
from standins.twilio.render import Renderer
from standins.twilio.server import HttpServer
from standins.twilio.spec import Spec, load_spec
from standins.twilio.store import Clock, ConversationStore, utc_now


class ConversationsStandIn:
    """An HTTP server answering `/v1/Conversations...` as Twilio does, per Twilio's OpenAPI spec.

    Point the helper library at it with `client.conversations.base_url = standin.base_url`.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        clock: Clock = utc_now,
        spec: Spec | None = None,
        verbose: bool = False,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.spec = spec or load_spec()
        self.store = ConversationStore(clock)
        self._render = Renderer(self.spec, account_sid, self.store.chat_service_sid)
        self._faults = FaultPlan()
        self._stopping = threading.Event()
        self._dispatcher = Dispatcher(
            self.spec,
            ConversationsApi(self.spec, self.store, self._render),
            self._faults,
            account_sid,
            auth_token,
            sleep=self._stopping.wait,
        )
        self._http = HttpServer(self._dispatcher, verbose=verbose)
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """Where it serves (``http://127.0.0.1:PORT``); only once started."""
        if self._base_url is None:
            raise RuntimeError("the Twilio stand-in is not started")
        return self._base_url

    # Lifecycle

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port) from a daemon thread; returns the base URL."""
        self._stopping.clear()
        self._base_url = self._http.start(host, port)
        self._render.base_url = self._base_url
        return self._base_url

    def stop(self) -> None:
        """Stop serving; requests held by `delay_next` are released at once."""
        self._stopping.set()
        self._http.stop()

    def __enter__(self) -> ConversationsStandIn:
        if self._base_url is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Direct access: not HTTP requests, not recorded

    def create_conversation(
        self,
        friendly_name: str | None = None,
        attributes: str = "{}",
        unique_name: str | None = None,
    ) -> str:
        """Create a conversation directly and return its SID."""
        conversation = self.store.create_conversation(
            friendly_name=friendly_name, unique_name=unique_name, attributes=attributes
        )
        return conversation.sid

    def add_participant(
        self,
        conversation_sid: str,
        identity: str | None = None,
        address: str | None = None,
        proxy_address: str | None = None,
        attributes: str = "{}",
    ) -> dict[str, Any]:
        """Add a participant directly (409 rules apply) and return its JSON."""
        conversation = self.store.conversation(conversation_sid)
        participant = self.store.add_participant(
            conversation,
            identity=identity,
            address=address,
            proxy_address=proxy_address,
            attributes=attributes,
        )
        return self._render.participant(participant)

    def conversation(self, conversation_sid: str) -> dict[str, Any]:
        """The conversation's JSON, as a fetch would return it."""
        return self._render.conversation(self.store.conversation(conversation_sid))

    def participants(self, conversation_sid: str) -> list[dict[str, Any]]:
        """The conversation's participants' JSON, in joining order."""
        conversation = self.store.conversation(conversation_sid)
        with self.store.lock:
            return [self._render.participant(p) for p in conversation.participants.values()]

    def messages(self, conversation_sid: str) -> list[dict[str, Any]]:
        """The conversation's messages' JSON, oldest first."""
        conversation = self.store.conversation(conversation_sid)
        with self.store.lock:
            return [self._render.message(m) for m in conversation.messages]

    # Observation and fault injection

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every HTTP request received so far (a snapshot), oldest first."""
        return self._dispatcher.recorded

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no HTTP request is being processed (say, one held by `delay_next` after
        its client timed out); False when that takes longer than `timeout` seconds."""
        return self._dispatcher.wait_idle(timeout)

    def fail_next(
        self,
        method: str | None = "POST",
        path: str = r"/Participants$",
        status: int = 503,
        count: int = 1,
        code: int | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next `count` requests whose method matches (None: any) and whose path
        contains a match for the regex `path` with Twilio's error JSON.

        `code` defaults to Twilio's generic code for the status (20503 for 503, 20003 for 401);
        `message` to the status's reason phrase.
        """
        self._faults.fail_next(method, path, status, count, code, message)

    def delay_next(
        self,
        method: str | None = "POST",
        path: str = r"/Participants$",
        seconds: float = 5.0,
        count: int = 1,
    ) -> None:
        """Hold the next `count` matching requests for `seconds`, then serve them normally.

        The request still takes effect after the delay even if the client has given up,
        as it would on Twilio.
        """
        self._faults.delay_next(method, path, seconds, count)

    def reset(self) -> None:
        """Forget conversations, recorded requests and pending faults."""
        self.store.clear()
        self._dispatcher.clear()
        self._faults.clear()
