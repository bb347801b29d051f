"""Send a callback signed exactly as Twilio signs it, and print the status and JSON.

    python -m tools.call crm Location=GetCustomersList Worker=alice@example.com PageSize=30
    python -m tools.call routing ConversationSid=CH... MessagingBinding.Address=+14155550134

Reads TWILIO_AUTH_TOKEN (or AUTH_TOKEN) and the service URL (--url, or PUBLIC_BASE_URL, or
http://localhost:8080) from the environment, or from .run/local.env (written by `make run`),
or from .env.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator

CALLBACKS = ("crm", "outgoing-conversation", "routing", "templates", "twilio-conversations")


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """The X-Twilio-Signature Twilio would send for a form POST of `params` to `url`."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


def post_signed(
    url: str, params: Mapping[str, str], auth_token: str, timeout: float = 30
) -> requests.Response:
    """POST `params` form-encoded to `url` with Twilio's signature."""
    headers = {"X-Twilio-Signature": sign(url, params, auth_token)}
    return requests.post(url, data=dict(params), headers=headers, timeout=timeout)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blank lines skipped, quotes removed)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip("'\"")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("callback", choices=CALLBACKS, help="which callback to call")
    parser.add_argument(
        "params", nargs="*", help="NAME=VALUE parameters, as Twilio would post them"
    )
    parser.add_argument("--url", help="the service's base URL")
    parser.add_argument("--env-file", type=Path, help="default: .run/local.env, else .env")
    args = parser.parse_args(argv)
    env_file = args.env_file or next(
        (p for p in (Path(".run/local.env"), Path(".env")) if p.exists()), Path(".env")
    )
    env = {**read_env_file(env_file), **os.environ}
    token = env.get("TWILIO_AUTH_TOKEN") or env.get("AUTH_TOKEN")
    if not token:
        print("set TWILIO_AUTH_TOKEN (or AUTH_TOKEN) to sign the request", file=sys.stderr)
        return 2
    params = {}
    for item in args.params:
        if "=" not in item:
            parser.error(f"parameters are NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        params[name] = value
    base = (args.url or env.get("PUBLIC_BASE_URL") or "http://localhost:8080").rstrip("/")
    response = post_signed(f"{base}/callbacks/{args.callback}", params, token)
    print(response.status_code)
    try:
        print(json.dumps(response.json(), indent=2, ensure_ascii=False))
    except ValueError:
        print(response.text)
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
