"""Airtable's formula value model: blanks, coercions to text and numbers, comparisons, sort keys.

A value is a cell value as stored (text, number, checkbox ``True``, list of attachments or ids)
or a formula result (also ``datetime``). ``None`` is BLANK: "" as text, 0 as a number, falsy.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from standins.airtable.dates import format_iso, parse_datetime

Value = Any


class FormulaValueError(Exception):
    """A per-record formula error (Airtable's #ERROR!): the record does not match the filter."""


def number_text(number: float) -> str:
    """Render a number the way Airtable shows it in text context (no trailing ``.0``)."""
    if isinstance(number, float):
        if math.isnan(number) or math.isinf(number):
            raise FormulaValueError("NaN")
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return repr(number)
    return str(number)


def to_text(value: Value) -> str:
    """Text context: BLANK is "", checkboxes are "1", lists are joined with ", "."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return number_text(value)
    if isinstance(value, datetime):
        return format_iso(value)
    if isinstance(value, list):
        return ", ".join(_item_text(item) for item in value)
    if isinstance(value, dict):
        return _item_text(value)
    return str(value)


def _item_text(item: Value) -> str:
    if isinstance(item, dict):
        if "url" in item:
            filename = item.get("filename") or ""
            return f"{filename} ({item['url']})" if filename else str(item["url"])
        for key in ("name", "email", "id"):
            if key in item:
                return str(item[key])
        return ""
    return to_text(item)


def parse_number(text: str) -> float | None:
    """The number a text holds, or None when it is not numeric."""
    stripped = text.strip()
    if not stripped:
        return None
    try:
        number = float(stripped)
    except ValueError:
        return None
    if math.isnan(number) or math.isinf(number):
        return None
    return number


def to_number(value: Value) -> float:
    """Number context: BLANK and "" are 0, checkboxes 1/0, numeric text its number."""
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, int | float):
        return value
    if value is None:
        return 0
    if isinstance(value, str):
        if not value.strip():
            return 0
        number = parse_number(value)
        if number is None:
            raise FormulaValueError(f"not a number: {value!r}")
        return number
    if isinstance(value, list) and len(value) == 1:
        return to_number(value[0])
    if isinstance(value, list) and not value:
        return 0
    raise FormulaValueError(f"not a number: {value!r}")


def to_datetime(value: Value) -> datetime:
    """Date context: a datetime as is, text parsed as ISO 8601 (or a few common forms)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is not None:
            return parsed
    if isinstance(value, list) and len(value) == 1:
        return to_datetime(value[0])
    raise FormulaValueError(f"not a date: {value!r}")


def truthy(value: Value) -> bool:
    """Whether a result lets a record through: non-empty text, non-zero number, a date, a list."""
    if value is None:
        return False
    if isinstance(value, str):
        return value != ""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0 and not math.isnan(value)
    if isinstance(value, list):
        return len(value) > 0
    return True


def _is_numeric(value: Value) -> bool:
    return isinstance(value, int | float)  # bool is an int


def equals(left: Value, right: Value) -> bool:
    """Airtable's ``=``: text is compared exactly (case-sensitive); BLANK equals "", 0 and FALSE."""
    if type(left) is str and type(right) is str:
        return left == right
    if left is None or right is None:
        other = right if left is None else left
        return other is None or not truthy(other)
    if _is_numeric(left) and _is_numeric(right):
        return bool(left == right)
    if isinstance(left, datetime) or isinstance(right, datetime):
        try:
            return to_datetime(left) == to_datetime(right)
        except FormulaValueError:
            return False
    if _is_numeric(left) or _is_numeric(right):
        number, other = (left, right) if _is_numeric(left) else (right, left)
        if isinstance(other, str):
            parsed = parse_number(other)
            if parsed is not None:
                return bool(number == parsed)
        return to_text(number) == to_text(other)
    return to_text(left) == to_text(right)


def compare(left: Value, right: Value) -> int:
    """Three-way comparison for ``< > <= >=``: numbers numerically, dates as dates, else text."""
    if isinstance(left, datetime) or isinstance(right, datetime):
        a_date, b_date = to_datetime(left), to_datetime(right)
        return (a_date > b_date) - (a_date < b_date)
    if _numeric_context(left) and _numeric_context(right):
        a_num, b_num = to_number(left), to_number(right)
        return (a_num > b_num) - (a_num < b_num)
    a_text, b_text = to_text(left), to_text(right)
    return (a_text > b_text) - (a_text < b_text)


def _numeric_context(value: Value) -> bool:
    if value is None or _is_numeric(value):
        return True
    return isinstance(value, str) and parse_number(value) is not None


def sort_key(value: Value) -> tuple[int, Any]:
    """A total order for the list API's ``sort``: empty cells first, then numbers, then text."""
    if value is None or value == "" or value == []:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value.casefold())
    return (2, to_text(value).casefold())
