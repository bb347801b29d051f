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
