"""Run the Twilio Conversations stand-in until SIGINT or SIGTERM.

python -m standins.twilio --port 8082 --account-sid AC... --auth-token ...
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from types import FrameType

from standins.twilio.standin import ConversationsStandIn


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m standins.twilio",
        description="Serve a stand-in for Twilio's Conversations REST API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082, help="0 picks a free port")
    parser.add_argument(
        "--account-sid",
        default=os.environ.get("TWILIO_ACCOUNT_SID"),
        help="Basic-auth username to accept (default: $TWILIO_ACCOUNT_SID)",
    )
    parser.add_argument(
        "--auth-token",
        default=os.environ.get("TWILIO_AUTH_TOKEN"),
        help="Basic-auth password to accept (default: $TWILIO_AUTH_TOKEN)",
    )
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    arguments = parser.parse_args(argv)
    if not arguments.account_sid or not arguments.auth_token:
        parser.error("--account-sid and --auth-token are required (or set the TWILIO_ variables)")
    return arguments


def main(argv: list[str] | None = None) -> None:
    """Start the stand-in, print its URL, and serve until interrupted."""
    arguments = _arguments(argv)
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    standin = ConversationsStandIn(
        arguments.account_sid, arguments.auth_token, verbose=arguments.verbose
    )
    print(standin.start(arguments.host, arguments.port), flush=True)
    try:
        done.wait()
    finally:
        standin.stop()


if __name__ == "__main__":
    main()
