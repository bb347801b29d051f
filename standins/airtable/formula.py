"""Compile Airtable formulas (``filterByFormula``) once into closures, then evaluate per record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from standins.airtable.formula_functions import FUNCTIONS, Compiled, Env, Row
from standins.airtable.formula_parser import (
    Binary,
    Call,
    FieldRef,
    FormulaSyntaxError,
    Literal,
    Node,
    Unary,
    parse,
)
from standins.airtable.values import (
    FormulaValueError,
    Value,
    compare,
    equals,
    to_number,
    to_text,
    truthy,
)

__all__ = ["CompiledFormula", "Env", "FormulaSyntaxError", "Row", "compile_formula"]


@dataclass(frozen=True, slots=True)
class CompiledFormula:
    """A parsed formula: the field names it reads and its evaluator."""

    text: str
    fields: frozenset[str]
    evaluate: Compiled

    def matches(self, row: Row, env: Env) -> bool:
        """True when the formula's result for ``row`` is truthy; an #ERROR! never matches."""
        try:
            return truthy(self.evaluate(row, env))
        except (FormulaValueError, ArithmeticError):
            return False


@lru_cache(maxsize=4096)
def compile_formula(text: str) -> CompiledFormula:
    """Parse and compile ``text``; raise FormulaSyntaxError for invalid formulas."""
    node = parse(text)
    fields: set[str] = set()
    evaluate = _compile(node, fields)
    return CompiledFormula(text, frozenset(fields), evaluate)


def _divide(left: Value, right: Value) -> Value:
    divisor = to_number(right)
    if divisor == 0:
        raise FormulaValueError("division by zero")
    return to_number(left) / divisor


_ARITHMETIC: dict[str, Callable[[Value, Value], Value]] = {
    "+": lambda a, b: to_number(a) + to_number(b),
    "-": lambda a, b: to_number(a) - to_number(b),
    "*": lambda a, b: to_number(a) * to_number(b),
    "/": _divide,
    "&": lambda a, b: to_text(a) + to_text(b),
    "=": equals,
    "!=": lambda a, b: not equals(a, b),
    "<": lambda a, b: compare(a, b) < 0,
    ">": lambda a, b: compare(a, b) > 0,
    "<=": lambda a, b: compare(a, b) <= 0,
    ">=": lambda a, b: compare(a, b) >= 0,
}


def _compile(node: Node, fields: set[str]) -> Compiled:
    if isinstance(node, Literal):
        value = node.value
        return lambda row, env: value
    if isinstance(node, FieldRef):
        name = node.name
        fields.add(name)
        return lambda row, env: row.fields.get(name)
    if isinstance(node, Unary):
        operand = _compile(node.operand, fields)
        if node.op == "-":
            return lambda row, env: -to_number(operand(row, env))
        return lambda row, env: to_number(operand(row, env))
    if isinstance(node, Binary):
        return _compile_binary(node, fields)
    return _compile_call(node, fields)


def _compile_binary(node: Binary, fields: set[str]) -> Compiled:
    if node.op in ("=", "!=") and _is_field_vs_text(node):
        # The common `{field} = 'text'` filter: compare stored text directly.
        field_node, literal_node = (
            (node.left, node.right) if isinstance(node.left, FieldRef) else (node.right, node.left)
        )
        assert isinstance(field_node, FieldRef)
        assert isinstance(literal_node, Literal)
        name, text = field_node.name, literal_node.value
        fields.add(name)
        negate = node.op == "!="

        def field_equals(row: Row, env: Env) -> Value:
            value = row.fields.get(name)
            same = value == text if type(value) is str else equals(value, text)
            return same is not negate

        return field_equals
    left = _compile(node.left, fields)
    right = _compile(node.right, fields)
    operator = _ARITHMETIC[node.op]
    return lambda row, env: operator(left(row, env), right(row, env))


def _is_field_vs_text(node: Binary) -> bool:
    pairs = ((node.left, node.right), (node.right, node.left))
    return any(
        isinstance(a, FieldRef) and isinstance(b, Literal) and isinstance(b.value, str)
        for a, b in pairs
    )


def _compile_call(node: Call, fields: set[str]) -> Compiled:
    if node.name == "LAST_MODIFIED_TIME":
        names: list[str] = []
        for arg in node.args:
            if not isinstance(arg, FieldRef):
                raise FormulaSyntaxError("LAST_MODIFIED_TIME() takes only field references")
            names.append(arg.name)
        fields.update(names)
        watched = tuple(names)
        return lambda row, env: row.modified_at(watched)
    function = FUNCTIONS.get(node.name)
    if function is None:
        raise FormulaSyntaxError(f"Unknown function names: {node.name}")
    count = len(node.args)
    if count < function.min_args or (function.max_args is not None and count > function.max_args):
        raise FormulaSyntaxError(f"Wrong number of arguments to {node.name}()")
    args = tuple(_compile(arg, fields) for arg in node.args)
    if node.name in ("AND", "OR"):
        return _logical(node.name == "AND", args)
    impl = function.impl
    if function.kind == "eager" and all(isinstance(arg, Literal) for arg in node.args):
        # Constant arguments (e.g. DATETIME_PARSE('2024-…')): evaluate once, not per record.
        try:
            value = impl(*(arg.value for arg in node.args if isinstance(arg, Literal)))
        except (FormulaValueError, ArithmeticError):
            pass
        else:
            return lambda row, env: value
    if function.kind == "lazy":
        return lambda row, env: impl(row, env, args)
    if function.kind == "row":
        if count == 0:
            return lambda row, env: impl(row, env)
        return lambda row, env: impl(row, env, *(arg(row, env) for arg in args))
    if count == 0:
        return lambda row, env: impl()
    if count == 1:
        (only,) = args
        return lambda row, env: impl(only(row, env))
    if count == 2:
        first, second = args
        return lambda row, env: impl(first(row, env), second(row, env))
    return lambda row, env: impl(*(arg(row, env) for arg in args))


def _logical(conjunction: bool, args: tuple[Compiled, ...]) -> Compiled:
    """AND/OR with short-circuit, specialised for the common one- and two-argument forms."""
    if len(args) == 1:
        (only,) = args
        return lambda row, env: truthy(only(row, env))
    if len(args) == 2:
        first, second = args
        if conjunction:
            return lambda row, env: truthy(first(row, env)) and truthy(second(row, env))
        return lambda row, env: truthy(first(row, env)) or truthy(second(row, env))

    def many(row: Row, env: Env) -> Value:
        for arg in args:
            if truthy(arg(row, env)) is not conjunction:
                return not conjunction
        return conjunction

    return many
