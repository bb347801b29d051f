"""The stand-in's HTTP side: a threading HTTP server in a daemon thread, feeding the dispatcher."""

from __future__ import annotations

import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from standins.http_server import ConnectionTrackingServer
from standins.twilio.dispatch import Answer, Dispatcher, IncomingRequest


class _Server(ConnectionTrackingServer):
    """Feeds every request to the dispatcher."""

    def __init__(self, address: tuple[str, int], dispatcher: Dispatcher, verbose: bool) -> None:
        self.dispatcher = dispatcher
        self.verbose = verbose
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TwilioConversationsStandIn/1.0"
    timeout = 60
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        split = urlsplit(self.path)
        request = IncomingRequest(
            method=self.command,
            raw_path=split.path,
            query=parse_qsl(split.query, keep_blank_values=True),
            form=parse_qsl(body, keep_blank_values=True),
            headers={name.title(): value for name, value in self.headers.items()},
        )
        answer = self.server.dispatcher.answer(request)
        try:
            self._send(answer)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test); Twilio would have done the work anyway.
            self.close_connection = True

    def _send(self, answer: Answer) -> None:
        payload = b"" if answer.body is None else json.dumps(answer.body).encode("utf-8")
        self.send_response(answer.status)
        if answer.body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Twilio-Request-Id", "RQ" + uuid.uuid4().hex)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"twilio-standin: {format % args}\n")


class HttpServer:
    """Serves a dispatcher over HTTP from a daemon thread."""

    def __init__(self, dispatcher: Dispatcher, verbose: bool = False) -> None:
        self.dispatcher = dispatcher
        self.verbose = verbose
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str, port: int) -> str:
        """Listen on host:port (0 picks a free port) and return the base URL."""
        if self._server is not None:
            raise RuntimeError("the Twilio stand-in is already running")
        server = _Server((host, port), self.dispatcher, self.verbose)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="twilio-standin",
            daemon=True,
        )
        self._thread.start()
        bound_host, bound_port = server.server_address[:2]
        shown = "127.0.0.1" if bound_host in ("0.0.0.0", "") else str(bound_host)  # noqa: S104
        return f"http://{shown}:{bound_port}"

    def stop(self) -> None:
        """Stop serving and close the port and open connections."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
