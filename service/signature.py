"""Twilio request signatures: rebuild the public URL Twilio called and check X-Twilio-Signature."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator

# A real signature is 28 base64 characters (HMAC-SHA1) or 44 (HMAC-SHA256); anything much longer
# is refused before any hashing.
MAX_SIGNATURE_LENGTH = 128


def public_url(
    path: str,
    query: str,
    header: Callable[[str], str | None],
    public_base_url: str | None,
) -> str:
    """The URL Twilio signed: PUBLIC_BASE_URL + path + query, or the one the proxy headers tell.

    When PUBLIC_BASE_URL carries a path (a Cloud Functions URL ending in /<function-name>) and
    the request path already starts with it, the prefix is not repeated.
    """
    suffix = f"?{query}" if query else ""
    if public_base_url:
        base = urlsplit(public_base_url)
        base_path = base.path.rstrip("/")
        full_path = path if base_path and path.startswith(base_path + "/") else base_path + path
        return f"{base.scheme}://{base.netloc}{full_path}{suffix}"
    proto = _first(header("X-Forwarded-Proto")) or "http"
    host = _first(header("X-Forwarded-Host")) or header("Host") or "localhost"
    return f"{proto}://{host}{path}{suffix}"


def _first(value: str | None) -> str | None:
    """The first of a comma-separated proxy header (the client-facing hop)."""
    if not value:
        return None
    return value.split(",", 1)[0].strip() or None


class SignatureVerifier:
    """Checks X-Twilio-Signature with the account's auth token, exactly as Twilio computes it."""

    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def is_valid(self, url: str, params: Mapping[str, Any] | str, signature: str | None) -> bool:
        """True when `signature` signs `url` with the form `params` (or the raw JSON body)."""
        if not signature or len(signature) > MAX_SIGNATURE_LENGTH:
            return False
        try:
            return bool(self._validator.validate(url, params, signature))
        except (ValueError, TypeError):  # an unreadable URL (a port of 99999, a broken IPv6 host)
            return False
