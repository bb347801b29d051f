"""Date handling for formulas and timestamps: ISO 8601 in UTC, moment.js-style formats and units."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache


def format_iso(moment: datetime) -> str:
    """Airtable's timestamp form: ``2024-05-01T10:00:00.000Z`` (UTC, milliseconds)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def to_millis(moment: datetime) -> datetime:
    """The same instant in UTC, truncated to whole milliseconds as Airtable stores it."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)


_FALLBACK_FORMATS = (
    "%m/%d/%Y",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%d %B %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%Y/%m/%d",
)


def parse_datetime(text: str) -> datetime | None:
    """Parse ISO 8601 (or a few common forms); a value without zone is taken as UTC."""
    stripped = text.strip()
    if not stripped:
        return None
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        for fmt in _FALLBACK_FORMATS:
            try:
                parsed = datetime.strptime(stripped, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# moment.js tokens, longest first, and their strftime/strptime equivalents.
_TOKENS = {
    "YYYY": "%Y",
    "YY": "%y",
    "MMMM": "%B",
    "MMM": "%b",
    "MM": "%m",
    "M": "%m",
    "DD": "%d",
    "D": "%d",
    "dddd": "%A",
    "ddd": "%a",
    "HH": "%H",
    "H": "%H",
    "hh": "%I",
    "h": "%I",
    "mm": "%M",
    "m": "%M",
    "ss": "%S",
    "s": "%S",
    "SSS": "%f",
    "A": "%p",
    "a": "%p",
    "ZZ": "%z",
    "Z": "%z",
}
_TOKEN_RE = re.compile(r"\[[^\]]*\]|" + "|".join(sorted(_TOKENS, key=len, reverse=True)))


@lru_cache(maxsize=256)
def moment_to_strftime(fmt: str) -> str:
    """Translate a moment.js format (as Airtable's DATETIME_PARSE/FORMAT take) to strftime."""
    out: list[str] = []
    position = 0
    for match in _TOKEN_RE.finditer(fmt):
        out.append(fmt[position : match.start()].replace("%", "%%"))
        token = match.group(0)
        out.append(token[1:-1].replace("%", "%%") if token.startswith("[") else _TOKENS[token])
        position = match.end()
    out.append(fmt[position:].replace("%", "%%"))
    return "".join(out)


def parse_with_format(text: str, fmt: str) -> datetime | None:
    """Parse ``text`` with a moment.js format; ``x``/``X`` are Unix milliseconds/seconds."""
    try:
        if fmt == "X":
            return datetime.fromtimestamp(float(text), UTC)
        if fmt == "x":
            return datetime.fromtimestamp(float(text) / 1000, UTC)
        parsed = datetime.strptime(text.strip(), moment_to_strftime(fmt))
    except (ValueError, OverflowError, OSError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_with(moment: datetime, fmt: str) -> str:
    """Render a datetime with a moment.js format (UTC)."""
    utc = moment.astimezone(UTC)
    if fmt == "X":
        return str(int(utc.timestamp()))
    if fmt == "x":
        return str(int(utc.timestamp() * 1000))
    rendered = utc.strftime(moment_to_strftime(fmt).replace("%f", "\x00"))
    return rendered.replace("\x00", f"{utc.microsecond // 1000:03d}").replace("+0000", "+00:00")


_UNIT_ALIASES = {
    "ms": "milliseconds",
    "s": "seconds",
    "m": "minutes",
    "h": "hours",
    "d": "days",
    "w": "weeks",
    "M": "months",
    "Q": "quarters",
    "y": "years",
}
UNITS = (
    "milliseconds",
    "seconds",
    "minutes",
    "hours",
    "days",
    "weeks",
    "months",
    "quarters",
    "years",
)


def normalize_unit(unit: str) -> str | None:
    """Canonical plural unit name for ``unit`` ("day", "days", "d" → "days"), or None."""
    stripped = unit.strip()
    if stripped in _UNIT_ALIASES:
        return _UNIT_ALIASES[stripped]
    lowered = stripped.lower()
    plural = lowered if lowered.endswith("s") else lowered + "s"
    return plural if plural in UNITS else None


def truncate(moment: datetime, unit: str) -> datetime:
    """Start of the ``unit`` (canonical name) that contains ``moment``."""
    if unit == "milliseconds":
        return to_millis(moment)
    fields = ("seconds", "minutes", "hours", "days")
    if unit in fields:
        moment = moment.replace(microsecond=0)
        if unit != "seconds":
            moment = moment.replace(second=0)
        if unit in ("hours", "days"):
            moment = moment.replace(minute=0)
        if unit == "days":
            moment = moment.replace(hour=0)
        return moment
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "weeks":  # moment.js weeks start on Sunday
        return day - timedelta(days=(day.weekday() + 1) % 7)
    if unit == "months":
        return day.replace(day=1)
    if unit == "quarters":
        return day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1)
    return day.replace(day=1, month=1)


_FIXED = {
    "milliseconds": timedelta(milliseconds=1),
    "seconds": timedelta(seconds=1),
    "minutes": timedelta(minutes=1),
    "hours": timedelta(hours=1),
    "days": timedelta(days=1),
    "weeks": timedelta(weeks=1),
}


def add(moment: datetime, count: float, unit: str) -> datetime:
    """DATEADD: months, quarters and years clamp the day to the target month's length."""
    if unit in _FIXED:
        return moment + _FIXED[unit] * count
    months = int(count) * {"months": 1, "quarters": 3, "years": 12}[unit]
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return moment.replace(year=year, month=month + 1, day=min(moment.day, last_day))


def diff(first: datetime, second: datetime, unit: str) -> float:
    """DATETIME_DIFF: ``first - second`` in whole ``unit``s, truncated toward zero."""
    if unit in _FIXED:
        return int((first - second) / _FIXED[unit])
    months = (first.year - second.year) * 12 + first.month - second.month
    if months > 0 and add(second, months, "months") > first:
        months -= 1
    elif months < 0 and add(second, months, "months") < first:
        months += 1
    return int(months / {"months": 1, "quarters": 3, "years": 12}[unit])
