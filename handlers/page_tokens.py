"""Opaque, tamper-evident page tokens bound to one worker and one search.

A token carries the sort key of the last customer shown; the next page starts after it, so a
customer that did not change is never repeated or skipped, whatever else was added or removed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from cache.layout import worker_key
from contacts.model import SortKey, fold
from service.errors import BadRequest

MAX_TOKEN_CHARS = 2_048
_VERSION = 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    """Issues and reads page tokens signed with a per-deployment key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue(self, worker: str, query: str | None, after: SortKey) -> str:
        """A token for the page after `after`."""
        payload = _b64(json.dumps([_VERSION, after[0], after[1]], ensure_ascii=False).encode())
        return f"{payload}.{self._signature(worker, query, payload)}"

    def read(self, token: str, worker: str, query: str | None) -> SortKey:
        """The token's sort key; 400 if it was altered or is another worker's or query's."""
        invalid = BadRequest("NextPageToken is not valid for this list", field="NextPageToken")
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise invalid
        payload, signature = token.split(".")
        expected = self._signature(worker, query, payload).encode()
        if not hmac.compare_digest(signature.encode("utf-8", "replace"), expected):
            raise invalid
        try:
            version, name, customer_id = json.loads(_unb64(payload))
        except (ValueError, binascii.Error, TypeError) as error:
            raise invalid from error
        if version != _VERSION or not isinstance(name, str) or not isinstance(customer_id, str):
            raise invalid
        return (name, customer_id)

    def _signature(self, worker: str, query: str | None, payload: str) -> str:
        message = "\x1f".join((worker_key(worker), fold(query or ""), payload)).encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest()[:18])
