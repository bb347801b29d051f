"""AirtableStandIn: an in-memory Airtable speaking its REST API over HTTP, for tests and runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from standins.airtable import admin, datafile, errors, rest
from standins.airtable.dates import to_millis
from standins.airtable.faults import Faults
from standins.airtable.formula import Env
from standins.airtable.listing import Cursors
from standins.airtable.messages import Request, Response
from standins.airtable.ratelimit import RateLimiter
from standins.airtable.server import StandInServer
from standins.airtable.stats import Stats
from standins.airtable.store import Table
from standins.airtable.webhooks import Webhooks

MAX_URL_LENGTH = 16_000


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AirtableStandIn:
    """A local Airtable: bases and tables in memory, the ``/v0`` API with Airtable's limits and
    errors, its webhooks API, an admin API under ``/_standin/``, request statistics and fault
    injection.

    ``webhooks_allowed=False`` (or setting the attribute) answers every webhooks endpoint as
    Airtable answers a token without the ``webhook:manage`` scope: 403.
    """

    def __init__(
        self,
        token: str = "test-token",  # noqa: S107 - a stand-in's fixed test token
        rate_limit_per_second: float | None = 5.0,
        penalty_seconds: float = 30.0,
        latency_seconds: float = 0.0,
        clock: Callable[[], datetime] | None = None,
        *,
        iterator_ttl_seconds: float = 600.0,
        monotonic: Callable[[], float] | None = None,
        webhooks_allowed: bool = True,
    ) -> None:
        self.token = token
        self.latency_seconds = latency_seconds
        self.clock: Callable[[], datetime] = clock or _utc_now
        self.stats = Stats()
        self.limiter = RateLimiter(
            rate_limit_per_second, penalty_seconds, monotonic or time.monotonic
        )
        self.cursors = Cursors(iterator_ttl_seconds, monotonic or time.monotonic)
        self.faults = Faults()
        self.webhooks_allowed = webhooks_allowed
        self._lock = threading.RLock()
        self._bases: dict[str, dict[str, Table]] = {}
        self._webhooks = Webhooks(self._lock, self.now)
        self._server: StandInServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve HTTP on a daemon thread; returns the base URL (``http://127.0.0.1:PORT``)."""
        if self._server is not None:
            return self.url
        self._server = StandInServer((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="airtable-standin", daemon=True
        )
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        """The base URL to give pyairtable as ``endpoint_url``."""
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.drop_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> AirtableStandIn:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- settings -------------------------------------------------------------------------

    @property
    def rate_limit_per_second(self) -> float | None:
        """Requests a base may take per second (None: unlimited)."""
        return self.limiter.limit

    @rate_limit_per_second.setter
    def rate_limit_per_second(self, value: float | None) -> None:
        self.limiter.limit = value

    @property
    def penalty_seconds(self) -> float:
        """How long a base answers 429 after exceeding the limit."""
        return self.limiter.penalty_seconds

    @penalty_seconds.setter
    def penalty_seconds(self, value: float) -> None:
        self.limiter.penalty_seconds = value

    def set_fault(
        self,
        status: int | None = 503,
        count: int | None = None,
        delay_seconds: float = 0.0,
        after: int = 0,
    ) -> None:
        """Answer the next ``count`` API requests (None: until cleared) with ``status`` after
        ``delay_seconds``; ``status=None`` makes them slow but successful. The first ``after``
        requests are answered normally."""
        self.faults.set(status, count, delay_seconds, after)

    def clear_faults(self) -> None:
        """Stop injecting faults."""
        self.faults.clear()

    def expire_iterators(self) -> None:
        """Make every list offset handed out so far unusable (as after Airtable's timeout)."""
        self.cursors.expire_all()

    def now(self) -> datetime:
        """The stand-in's current time (UTC, milliseconds)."""
        return to_millis(self.clock())

    # --- data -----------------------------------------------------------------------------

    def table(self, base_id: str, name: str, fields: Iterable[str] = ()) -> Table:
        """The table ``name`` of ``base_id``, created (with the base) on first use;
        ``fields`` declares column names."""
        with self._lock:
            tables = self._bases.setdefault(base_id, {})
            table = tables.get(name)
            if table is None:
                table = Table(base_id, name, self._lock, lambda: self.clock(), sink=self._webhooks)
                tables[name] = table
            table.add_fields(fields)
            return table

    def tables(self, base_id: str) -> dict[str, Table]:
        """The tables of a base by name (empty for an unknown base)."""
        with self._lock:
            return dict(self._bases.get(base_id, {}))

    def webhooks(self, base_id: str) -> list[dict[str, Any]]:
        """The base's webhooks as ``GET /v0/bases/{base}/webhooks`` lists them (for tests:
        not counted, and listing does not extend their life)."""
        return self._webhooks.list(base_id)

    def load(self, source: datafile.DataSource) -> dict[str, int]:
        """Load a data file (path or dict), replacing the records of the tables it names."""
        with self._lock:
            return datafile.load_into(datafile.read(source), self.table)

    # --- requests -------------------------------------------------------------------------

    def _check_access(self, request: Request, where: rest.Route) -> Table | None:
        if request.target_length > MAX_URL_LENGTH:
            raise errors.url_too_long()
        if request.headers.get("authorization") != f"Bearer {self.token}":
            raise errors.authentication_required()
        with self._lock:
            tables = self._bases.get(where.base)
        if tables is None:
            raise errors.base_not_found()
        if not self.limiter.allow(where.base):
            raise errors.rate_limited()
        if where.kind == "webhook":
            if not self.webhooks_allowed:
                raise errors.missing_scope()
            return None
        table = tables.get(where.table)
        if table is None and where.table.startswith("tbl"):  # a table id instead of a name
            table = next((t for t in tables.values() if t.id == where.table), None)
        if table is None and where.kind != "other":
            raise errors.table_not_found(where.table, where.base)
        return table

    def handle_api(self, request: Request) -> Response:
        """Answer one ``/v0`` request: count it, inject faults, check auth and the rate limit,
        wait out the latency, then run it."""
        where = rest.route(request)
        self.stats.record(where.kind, where.base, where.table)
        fault = self.faults.take()
        table: Table | None = None
        response: Response | None = None
        try:
            if fault is not None and fault.status is not None:
                raise errors.for_status(fault.status)
            table = self._check_access(request, where)
        except errors.ApiError as error:
            response = Response.error(error)
        delay = self.latency_seconds + (fault.delay_seconds if fault is not None else 0.0)
        if delay > 0:
            time.sleep(delay)
        if response is None:
            try:
                if where.kind == "webhook":
                    response = self._webhooks.handle(
                        request,
                        where.base,
                        where.record_id,
                        where.action,
                        self.tables(where.base).values(),
                    )
                elif table is None:
                    raise errors.not_found()
                else:
                    with self._lock:
                        response = rest.handle(request, where, table, self.cursors, Env(self.now()))
            except errors.ApiError as error:
                response = Response.error(error)
        self.stats.record_status(response.status)
        return response

    def handle_admin(self, request: Request) -> Response:
        """Answer one ``/_standin/`` request (never counted nor rate limited)."""
        try:
            return admin.handle(self, request)
        except errors.ApiError as error:
            return Response.error(error)

    def stats_dict(self) -> dict[str, Any]:
        """Statistics as JSON-ready data."""
        return self.stats.to_dict()
