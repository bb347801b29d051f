"""Plays a plan's actions against one contender, at their planned times, from a thread pool."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from bench import config
from bench.client import Contender, crm_details, crm_list
from bench.workload import Action


@dataclass
class Routing:
    """How inbound conversations from known numbers were routed."""

    known: int = 0
    to_owner: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, answered: bool, to_owner: bool) -> None:
        with self.lock:
            self.known += 1
            self.failed += not answered
            self.to_owner += to_owner


class TwilioConversations:
    """Creates conversations in the Twilio stand-in, as an inbound message would."""

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/") + "/v1/Conversations"
        self._session = requests.Session()
        self._session.auth = (config.ACCOUNT_SID, config.AUTH_TOKEN)
        self._lock = threading.Lock()

    def create(self, friendly_name: str) -> str:
        with self._lock:
            response = self._session.post(
                self._url, data={"FriendlyName": friendly_name}, timeout=30
            )
        response.raise_for_status()
        return str(response.json()["sid"])

    def add_customer(self, conversation_sid: str, address: str) -> str:
        """Add the customer's SMS participant, as the inbound message does; its sid."""
        with self._lock:
            response = self._session.post(
                f"{self._url}/{conversation_sid}/Participants",
                data={
                    "MessagingBinding.Address": address,
                    "MessagingBinding.ProxyAddress": config.SMS_NUMBER,
                },
                timeout=30,
            )
        response.raise_for_status()
        return str(response.json()["sid"])

    def close(self, conversation_sid: str) -> None:
        """Delete the conversation, freeing the customer's address for the next one."""
        with self._lock:
            response = self._session.delete(f"{self._url}/{conversation_sid}", timeout=30)
        response.raise_for_status()

    def identities(self, conversation_sid: str) -> list[str]:
        with self._lock:
            response = self._session.get(f"{self._url}/{conversation_sid}/Participants", timeout=30)
        response.raise_for_status()
        return [str(p["identity"]) for p in response.json()["participants"] if p.get("identity")]


def play(
    contender: Contender,
    actions: list[Action],
    twilio: TwilioConversations,
    routing: Routing,
    threads: int = 96,
) -> None:
    """Start each action at its time (seconds since the recorder started); wait for all."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="action") as pool:
        for action in actions:
            delay = action.at - contender.recorder.now()
            if delay > 0:
                time.sleep(delay)
            pool.submit(_run, contender, action, twilio, routing)


def _run(
    contender: Contender, action: Action, twilio: TwilioConversations, routing: Routing
) -> None:
    try:
        _perform(contender, action, twilio, routing)
    except Exception as error:  # a failed action must not stop the run
        print(f"  {contender.name}: {action.kind} failed in the bench: {error!r}", flush=True)


def _perform(
    contender: Contender, action: Action, twilio: TwilioConversations, routing: Routing
) -> None:
    kind, worker = action.kind, action.worker
    if kind == "open_list":
        status, page, token = crm_list(contender, worker, "list_first_page")
        for _ in range(2):
            if status != 200 or len(page) < 30:
                return
            anchor = None if token else str(page[-1].get("customer_id"))
            status, page, token = crm_list(
                contender, worker, "list_next_page", token=token, anchor=anchor
            )
    elif kind == "search":
        crm_list(contender, worker, "list_search", query=action.query)
    elif kind == "details":
        assert action.contact is not None
        crm_details(contender, action.contact.customer_id, "details")
    elif kind == "templates":
        assert action.contact is not None
        params = {
            "Location": "GetTemplatesByCustomerId",
            "CustomerId": action.contact.customer_id,
            "Worker": worker,
        }
        contender.call("/callbacks/templates", params, "templates")
    else:
        _inbound(contender, action, twilio, routing)


def _inbound(
    contender: Contender, action: Action, twilio: TwilioConversations, routing: Routing
) -> None:
    assert action.address is not None
    sid = twilio.create(action.address)
    try:
        contender.call(
            "/callbacks/twilio-conversations",
            {
                "EventType": "onConversationAdd",
                "MessagingBinding.Address": action.address,
                "MessagingBinding.ProxyAddress": config.SMS_NUMBER,
                "Body": "Hello",
            },
            "conversation_add",
        )
        status, _ = contender.call(
            "/callbacks/routing",
            {
                "ConversationSid": sid,
                "MessagingBinding.Address": action.address,
                "MessagingBinding.ProxyAddress": config.SMS_NUMBER,
            },
            "routing",
        )
        if action.kind == "inbound_known":
            to_owner = status == 200 and action.worker in twilio.identities(sid)
            routing.add(status == 200, to_owner)
        participant = twilio.add_customer(sid, action.address)
        contender.call(
            "/callbacks/twilio-conversations",
            {
                "EventType": "onParticipantAdded",
                "ConversationSid": sid,
                "ParticipantSid": participant,
                "MessagingBinding.Address": action.address,
                "MessagingBinding.ProxyAddress": config.SMS_NUMBER,
            },
            "participant_added",
        )
    finally:
        # One customer address has one active conversation per proxy number on Twilio.
        twilio.close(sid)
