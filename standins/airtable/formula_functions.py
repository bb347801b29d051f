"""Airtable formula functions: name → arity and implementation."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import quote

from standins.airtable import dates
from standins.airtable.values import (
    FormulaValueError,
    Value,
    equals,
    parse_number,
    to_datetime,
    to_number,
    to_text,
    truthy,
)


class Row(Protocol):
    """What a formula can see of a record."""

    @property
    def id(self) -> str: ...

    @property
    def fields(self) -> dict[str, Any]: ...

    @property
    def created(self) -> datetime: ...

    def modified_at(self, names: Sequence[str]) -> datetime:
        """When any of ``names`` (all fields when empty) last changed."""
        ...


@dataclass(frozen=True, slots=True)
class Env:
    """Per-request evaluation context."""

    now: datetime


Compiled = Callable[[Row, Env], Value]


@dataclass(frozen=True, slots=True)
class Function:
    """A formula function. ``kind``: "eager" gets values, "lazy" gets the compiled arguments
    (row, env, args), "row" gets (row, env, *values)."""

    min_args: int
    max_args: int | None
    impl: Callable[..., Value]
    kind: str = "eager"


# --- logical ------------------------------------------------------------------------------


def _and(row: Row, env: Env, args: Sequence[Compiled]) -> Value:
    return all(truthy(arg(row, env)) for arg in args)


def _or(row: Row, env: Env, args: Sequence[Compiled]) -> Value:
    return any(truthy(arg(row, env)) for arg in args)


def _if(row: Row, env: Env, args: Sequence[Compiled]) -> Value:
    if truthy(args[0](row, env)):
        return args[1](row, env)
    return args[2](row, env) if len(args) > 2 else None


def _switch(row: Row, env: Env, args: Sequence[Compiled]) -> Value:
    subject = args[0](row, env)
    rest = args[1:]
    for i in range(0, len(rest) - 1, 2):
        if equals(subject, rest[i](row, env)):
            return rest[i + 1](row, env)
    return rest[-1](row, env) if len(rest) % 2 else None


def _iserror(row: Row, env: Env, args: Sequence[Compiled]) -> Value:
    try:
        args[0](row, env)
    except (FormulaValueError, ArithmeticError):
        return True
    return False


def _error() -> Value:
    raise FormulaValueError("ERROR()")


def _xor(*values: Value) -> Value:
    return sum(truthy(value) for value in values) % 2 == 1


# --- text ---------------------------------------------------------------------------------


def _find(needle: Value, haystack: Value, start: Value = 0) -> Value:
    return to_text(haystack).find(to_text(needle), max(int(to_number(start)), 0)) + 1


def _search(needle: Value, haystack: Value, start: Value = 0) -> Value:
    position = _find(needle, haystack, start)
    return position or None


def _mid(text: Value, start: Value, count: Value) -> Value:
    begin = max(int(to_number(start)) - 1, 0)
    return to_text(text)[begin : begin + max(int(to_number(count)), 0)]


def _right(text: Value, count: Value) -> Value:
    n = int(to_number(count))
    return to_text(text)[-n:] if n > 0 else ""


def _substitute(text: Value, old: Value, new: Value, index: Value = None) -> Value:
    source, target, replacement = to_text(text), to_text(old), to_text(new)
    if not target:
        return source
    if index is None:
        return source.replace(target, replacement)
    wanted = int(to_number(index))
    position = -1
    for _ in range(max(wanted, 1)):
        position = source.find(target, position + 1)
        if position < 0:
            return source
    return source[:position] + replacement + source[position + len(target) :]


def _replace(text: Value, start: Value, count: Value, new: Value) -> Value:
    source = to_text(text)
    begin = max(int(to_number(start)) - 1, 0)
    return source[:begin] + to_text(new) + source[begin + max(int(to_number(count)), 0) :]


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise FormulaValueError(f"bad regular expression: {exc}") from exc


def _regex_match(text: Value, pattern: Value) -> Value:
    return _regex(to_text(pattern)).search(to_text(text)) is not None


def _regex_extract(text: Value, pattern: Value) -> Value:
    match = _regex(to_text(pattern)).search(to_text(text))
    if match is None:
        raise FormulaValueError("REGEX_EXTRACT found no match")
    return match.group(0)


_DOLLAR_GROUP = re.compile(r"\$(\d+)|\\")


def _regex_replace(text: Value, pattern: Value, replacement: Value) -> Value:
    # RE2-style "$1" group references; everything else in the replacement is literal.
    template = _DOLLAR_GROUP.sub(
        lambda m: "\\\\" if m.group(0) == "\\" else f"\\g<{m.group(1)}>", to_text(replacement)
    )
    try:
        return _regex(to_text(pattern)).sub(template, to_text(text))
    except (re.error, IndexError) as exc:
        raise FormulaValueError(str(exc)) from exc


def _value(text: Value) -> Value:
    if isinstance(text, int | float):
        return text
    cleaned = re.sub(r"[^0-9.eE+\-]", "", to_text(text))
    if not cleaned:
        return 0
    number = parse_number(cleaned)
    if number is None:
        raise FormulaValueError(f"VALUE() cannot read {text!r}")
    return int(number) if number.is_integer() else number


def _arrayjoin(values: Value, separator: Value = ", ") -> Value:
    items = values if isinstance(values, list) else [values]
    return to_text(separator).join(to_text(item) for item in items if item is not None)


# --- numbers ------------------------------------------------------------------------------


def _flatten_numbers(values: Sequence[Value]) -> list[float]:
    out: list[float] = []
    for value in values:
        if isinstance(value, list):
            out.extend(_flatten_numbers(value))
        elif value is not None:
            out.append(to_number(value))
    return out


def _round(value: Value, precision: Value = 0) -> Value:
    try:
        exponent = Decimal(1).scaleb(-int(to_number(precision)))
        rounded = Decimal(str(to_number(value))).quantize(exponent, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise FormulaValueError(str(exc)) from exc
    number = float(rounded)
    return int(number) if number.is_integer() else number


def _mod(value: Value, divisor: Value) -> Value:
    d = to_number(divisor)
    if d == 0:
        raise FormulaValueError("division by zero")
    return math.fmod(to_number(value), d)


# --- dates --------------------------------------------------------------------------------


def _unit(unit: Value) -> str:
    name = dates.normalize_unit(to_text(unit))
    if name is None:
        raise FormulaValueError(f"unknown unit {unit!r}")
    return name


def _datetime_parse(value: Value, fmt: Value = None, locale: Value = None) -> Value:
    if isinstance(value, datetime):
        return value
    text = to_text(value)
    parsed = dates.parse_with_format(text, to_text(fmt)) if fmt else dates.parse_datetime(text)
    if parsed is None:
        raise FormulaValueError(f"cannot parse date {text!r}")
    return parsed


def _datetime_format(value: Value, fmt: Value = None) -> Value:
    moment = to_datetime(value)
    return dates.format_with(moment, to_text(fmt)) if fmt else dates.format_iso(moment)


def _is_same(first: Value, second: Value, unit: Value = None) -> Value:
    a, b = to_datetime(first), to_datetime(second)
    if unit is None:
        return a == b
    name = _unit(unit)
    return dates.truncate(a, name) == dates.truncate(b, name)


def _dateadd(value: Value, count: Value, unit: Value) -> Value:
    return dates.add(to_datetime(value), to_number(count), _unit(unit))


def _datetime_diff(first: Value, second: Value, unit: Value = "seconds") -> Value:
    return dates.diff(to_datetime(first), to_datetime(second), _unit(unit))


def _now(row: Row, env: Env) -> Value:
    return env.now


def _today(row: Row, env: Env) -> Value:
    return dates.truncate(env.now, "days")


def _record_id(row: Row, env: Env) -> Value:
    return row.id


def _created_time(row: Row, env: Env) -> Value:
    return row.created


FUNCTIONS: dict[str, Function] = {
    # logical
    "AND": Function(1, None, _and, "lazy"),
    "OR": Function(1, None, _or, "lazy"),
    "IF": Function(2, 3, _if, "lazy"),
    "SWITCH": Function(2, None, _switch, "lazy"),
    "ISERROR": Function(1, 1, _iserror, "lazy"),
    "NOT": Function(1, 1, lambda v: not truthy(v)),
    "XOR": Function(1, None, _xor),
    "TRUE": Function(0, 0, lambda: True),
    "FALSE": Function(0, 0, lambda: False),
    "BLANK": Function(0, 0, lambda: None),
    "ERROR": Function(0, 0, _error),
    # text
    "LOWER": Function(1, 1, lambda v: to_text(v).lower()),
    "UPPER": Function(1, 1, lambda v: to_text(v).upper()),
    "TRIM": Function(1, 1, lambda v: to_text(v).strip()),
    "LEN": Function(1, 1, lambda v: len(to_text(v))),
    "LEFT": Function(2, 2, lambda v, n: to_text(v)[: max(int(to_number(n)), 0)]),
    "RIGHT": Function(2, 2, _right),
    "MID": Function(3, 3, _mid),
    "FIND": Function(2, 3, _find),
    "SEARCH": Function(2, 3, _search),
    "SUBSTITUTE": Function(3, 4, _substitute),
    "REPLACE": Function(4, 4, _replace),
    "REPT": Function(2, 2, lambda v, n: to_text(v) * max(int(to_number(n)), 0)),
    "CONCATENATE": Function(1, None, lambda *vs: "".join(to_text(v) for v in vs)),
    "REGEX_MATCH": Function(2, 2, _regex_match),
    "REGEX_EXTRACT": Function(2, 2, _regex_extract),
    "REGEX_REPLACE": Function(3, 3, _regex_replace),
    "VALUE": Function(1, 1, _value),
    "T": Function(1, 1, lambda v: v if isinstance(v, str) else ""),
    "ENCODE_URL_COMPONENT": Function(1, 1, lambda v: quote(to_text(v), safe="-_.!~*'()")),
    "ARRAYJOIN": Function(1, 2, _arrayjoin),
    # numbers
    "ABS": Function(1, 1, lambda v: abs(to_number(v))),
    "ROUND": Function(1, 2, _round),
    "INT": Function(1, 1, lambda v: math.floor(to_number(v))),
    "MOD": Function(2, 2, _mod),
    "MAX": Function(1, None, lambda *vs: max(_flatten_numbers(vs), default=0)),
    "MIN": Function(1, None, lambda *vs: min(_flatten_numbers(vs), default=0)),
    "SUM": Function(1, None, lambda *vs: sum(_flatten_numbers(vs))),
    # dates
    "DATETIME_PARSE": Function(1, 3, _datetime_parse),
    "DATETIME_FORMAT": Function(1, 2, _datetime_format),
    "IS_AFTER": Function(2, 2, lambda a, b: to_datetime(a) > to_datetime(b)),
    "IS_BEFORE": Function(2, 2, lambda a, b: to_datetime(a) < to_datetime(b)),
    "IS_SAME": Function(2, 3, _is_same),
    "DATEADD": Function(3, 3, _dateadd),
    "DATETIME_DIFF": Function(2, 3, _datetime_diff),
    "NOW": Function(0, 0, _now, "row"),
    "TODAY": Function(0, 0, _today, "row"),
    # record
    "RECORD_ID": Function(0, 0, _record_id, "row"),
    "CREATED_TIME": Function(0, 0, _created_time, "row"),
}
