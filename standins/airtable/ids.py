"""Airtable-style identifiers: a three-letter prefix and 14 alphanumerics."""

from __future__ import annotations

import random
import re
import string

_ALPHABET = string.ascii_letters + string.digits
_random = random.Random()
RECORD_ID_RE = re.compile(r"rec[A-Za-z0-9]{14}")


def new_id(prefix: str) -> str:
    """A fresh random id such as ``recAbC123…`` (not cryptographic: ids are not secrets)."""
    return prefix + "".join(_random.choices(_ALPHABET, k=14))


def seeded_id(prefix: str, rng: random.Random) -> str:
    """An id drawn from ``rng``, for deterministic generated data."""
    return prefix + "".join(rng.choices(_ALPHABET, k=14))


def derived_id(prefix: str, *names: str) -> str:
    """An id that depends only on ``names`` (the same in every process and run), such as a
    table's ``tbl…`` id from its base id and name."""
    return seeded_id(prefix, random.Random("\x1f".join((prefix, *names))))
