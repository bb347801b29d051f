"""Twilio's list pages: a slice of records plus `meta` with page URLs the helper library follows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from standins.twilio.errors import bad_parameter

DEFAULT_PAGE_SIZE = 50
_PAGING_PARAMS = ("PageSize", "Page", "PageToken")


def _token(offset: int) -> str:
    return f"PT{offset}"


def _offset(token: str) -> int:
    if not (token.startswith("PT") and token[2:].isdigit()):
        raise bad_parameter(f"Invalid PageToken: {token}")
    return int(token[2:])


def page(
    records: Sequence[dict[str, Any]],
    params: Mapping[str, str],
    resource_url: str,
    key: str,
    max_page_size: int,
) -> dict[str, Any]:
    """One page of `records` for the request's PageSize, Page and PageToken."""
    size = min(int(params.get("PageSize") or DEFAULT_PAGE_SIZE), max_page_size)
    number = int(params.get("Page") or 0)
    token = params.get("PageToken")
    offset = _offset(token) if token else number * size
    # Filters (State, Order, ...) ride along in every page URL, as Twilio's do.
    filters = {k: v for k, v in params.items() if k not in _PAGING_PARAMS}

    def url(page_number: int, page_offset: int | None) -> str:
        query = {**filters, "PageSize": size, "Page": page_number}
        if page_offset is not None:
            query["PageToken"] = _token(page_offset)
        return f"{resource_url}?{urlencode(query)}"

    has_next = offset + size < len(records)
    has_previous = number > 0 and offset > 0
    return {
        key: list(records[offset : offset + size]),
        "meta": {
            "page": number,
            "page_size": size,
            "first_page_url": url(0, None),
            "previous_page_url": url(number - 1, max(offset - size, 0)) if has_previous else None,
            "url": url(number, offset if token else None),
            "next_page_url": url(number + 1, offset + size) if has_next else None,
            "key": key,
        },
    }
