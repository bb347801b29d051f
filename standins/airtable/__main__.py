"""Run the Airtable stand-in as a process: ``python -m standins.airtable --port 8081``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from standins.airtable.standin import AirtableStandIn


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m standins.airtable", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--load", metavar="FILE", help="data file to load (e.g. demo/base.json)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--rate-limit", type=float, default=5.0, help="requests/second per base")
    limit.add_argument("--no-rate-limit", action="store_true", help="never answer 429")
    parser.add_argument("--penalty", type=float, default=30.0, help="seconds of 429s past it")
    parser.add_argument("--iterator-ttl", type=float, default=600.0, help="list offset lifetime, s")
    parser.add_argument("--token", default="test-token", help="the accepted bearer token")
    parser.add_argument(
        "--no-webhooks",
        action="store_true",
        help="answer the webhooks API with 403, as for a token without webhook:manage",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the stand-in, print its URL on one line, serve until SIGINT or SIGTERM."""
    args = _parser().parse_args(argv)
    standin = AirtableStandIn(
        token=args.token,
        rate_limit_per_second=None if args.no_rate_limit else args.rate_limit,
        penalty_seconds=args.penalty,
        latency_seconds=args.latency,
        iterator_ttl_seconds=args.iterator_ttl,
        webhooks_allowed=not args.no_webhooks,
    )
    if args.load:
        standin.load(args.load)
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    url = standin.start(args.host, args.port)
    print(url, flush=True)
    while not stopping.wait(1.0):
        pass
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
