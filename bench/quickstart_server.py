"""One quickstart-model instance as an HTTP process with the service's callback paths.

    python -m bench.quickstart_server --port 0 --airtable-url URL --twilio-url URL

Prints its URL once serving; stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl

import requests

from bench import config
from bench.quickstart_model import Deadline, Expired, NotFound, QuickstartInstance

Params = dict[str, str]


def _answer(model: QuickstartInstance, path: str, params: Params) -> Any:
    deadline = Deadline.start()
    if path == "/callbacks/crm":
        location = params.get("Location")
        if location == "GetCustomersList":
            return model.customers_list(
                params.get("Worker", ""),
                int(params.get("PageSize") or 30),
                params.get("Anchor"),
                params.get("Query"),
                deadline,
            )
        if location == "GetCustomerDetailsByCustomerId":
            return model.customer_details(params.get("CustomerId", ""), deadline)
    if path == "/callbacks/templates":
        return model.templates(deadline)
    if path == "/callbacks/routing":
        sid, address = params.get("ConversationSid", ""), params.get("MessagingBinding.Address", "")
        return model.routing(sid, address, deadline)
    if path == "/callbacks/twilio-conversations":
        address = params.get("MessagingBinding.Address", "")
        if params.get("EventType") == "onParticipantAdded":
            sid, participant = params.get("ConversationSid", ""), params.get("ParticipantSid", "")
            return model.participant_added(sid, participant, address, deadline)
        return model.conversation_add(address, deadline)
    raise LookupError(path)


def _handler(model: QuickstartInstance) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._send(200, {"status": "ok"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            params = dict(parse_qsl(self.rfile.read(length).decode()))
            try:
                body = _answer(model, self.path, params)
            except Expired:
                self._send(504, {"error": "function timed out"})
            except NotFound:
                self._send(404, {"error": "not found"})
            except LookupError:
                self._send(404, {"error": "no such callback"})
            except requests.RequestException as error:
                self._send(500, {"error": str(error)[:200]})
            except Exception as error:  # a function's crash is a 500 to Twilio
                self._send(500, {"error": repr(error)[:200]})
            else:
                self._send(200, body)

        def _send(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Serve one instance until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.quickstart_server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--airtable-url", required=True)
    parser.add_argument("--twilio-url", required=True)
    parser.add_argument("--default-worker", default="rep0001@example.com")
    args = parser.parse_args(argv)
    model = QuickstartInstance(
        config.AIRTABLE_TOKEN,
        config.AIRTABLE_BASE_ID,
        args.airtable_url,
        args.twilio_url,
        args.default_worker,
    )
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(model))
    server.daemon_threads = True
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    stopping.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
