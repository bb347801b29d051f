"""Phone numbers in any format, normalised to E.164 so that table and Twilio sides match."""

from __future__ import annotations

import logging
import re
from functools import lru_cache

import phonenumbers

WHATSAPP_PREFIX = "whatsapp:"
_log = logging.getLogger(__name__)
_reported: set[str] = set()


def strip_channel(address: str) -> str:
    """`whatsapp:+1415…` → `+1415…`; any other address is returned trimmed."""
    address = address.strip()
    if address.lower().startswith(WHATSAPP_PREFIX):
        return address[len(WHATSAPP_PREFIX) :].strip()
    return address


@lru_cache(maxsize=65_536)
def to_e164(value: str, region: str) -> str | None:
    """The E.164 form of a number typed in any format, or None when it is not a phone number."""
    text = strip_channel(value)
    if not text or len(text) > 40 or not re.search(r"\d", text):
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalise_or_keep(value: str, region: str) -> str:
    """E.164 when the number parses; otherwise the value as written (reported once in the logs)."""
    e164 = to_e164(value, region)
    if e164 is not None:
        return e164
    kept = strip_channel(value)
    if kept not in _reported and len(_reported) < 10_000:
        _reported.add(kept)
        _log.warning("phone number kept as written: it does not parse", extra={"fields": {}})
    return kept


def digits(value: str) -> str:
    """Only the digits of `value`."""
    return re.sub(r"\D", "", value)
