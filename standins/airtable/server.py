"""The HTTP front: a ThreadingHTTPServer passing ``/v0`` and ``/_standin`` to the stand-in."""

from __future__ import annotations

import json
import traceback
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING

from standins.airtable import errors
from standins.airtable.messages import Request, Response
from standins.http_server import ConnectionTrackingServer

if TYPE_CHECKING:
    from standins.airtable.standin import AirtableStandIn


class StandInServer(ConnectionTrackingServer):
    """One thread per connection, so slow (latency) answers overlap."""

    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], standin: AirtableStandIn) -> None:
        self.standin = standin
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as pyairtable's session expects
    disable_nagle_algorithm = True  # else small keep-alive answers wait on delayed ACKs
    server: StandInServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        request = Request.from_target(self.command, self.path, headers, body)
        standin = self.server.standin
        api = request.path == "/v0" or request.path.startswith("/v0/")
        try:
            if api:
                response = standin.handle_api(request)
            elif request.path.startswith("/_standin/"):
                response = standin.handle_admin(request)
            else:
                response = Response.error(errors.not_found())
        except Exception:
            # A bug in the stand-in: answer like Airtable's 500 and show the traceback.
            traceback.print_exc()
            response = Response.error(errors.for_status(500))
        size = self._send(response)
        if api:
            standin.stats.record_response_bytes(size)

    def _send(self, response: Response) -> int:
        payload = json.dumps(response.body, ensure_ascii=False, separators=(",", ":")).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        return len(payload)

    # http.server dispatches on these names.
    do_GET = _answer  # noqa: N815
    do_POST = _answer  # noqa: N815
    do_PATCH = _answer  # noqa: N815
    do_PUT = _answer  # noqa: N815
    do_DELETE = _answer  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: tests and benchmarks send thousands of requests."""
