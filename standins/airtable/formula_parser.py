"""Tokenizer and recursive-descent parser for Airtable formulas, producing a small syntax tree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class FormulaSyntaxError(ValueError):
    """The formula cannot be parsed or names something that does not exist (Airtable's 422)."""


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # upper-cased
    args: tuple[Node, ...]


Node = Literal | FieldRef | Unary | Binary | Call


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "num", "str", "field", "ident", "op", "(", ")", ",", "end"
    value: Any
    position: int


_NUMBER_RE = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("!=", "<=", ">=", "=", "<", ">", "&", "+", "-", "*", "/")
_STRING_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            if i + 1 >= len(text):
                break
            escaped = text[i + 1]
            out.append(_STRING_ESCAPES.get(escaped, escaped))
            i += 2
        elif char == quote:
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1
    raise FormulaSyntaxError(f"unterminated string at position {start}")


def _read_field(text: str, start: int) -> tuple[str, int]:
    # Inside braces only "\}" and "\\" are escapes (what pyairtable's field_name emits).
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in "}\\":
            out.append(text[i + 1])
            i += 2
        elif char == "}":
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1
    raise FormulaSyntaxError(f"unterminated field reference at position {start}")


def tokenize(text: str) -> list[_Token]:
    """Split formula text into tokens."""
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "'\"":
            value, end = _read_string(text, i)
            tokens.append(_Token("str", value, i))
            i = end
        elif char == "{":
            name, end = _read_field(text, i)
            tokens.append(_Token("field", name, i))
            i = end
        elif char in "(),":
            tokens.append(_Token(char, char, i))
            i += 1
        elif (number := _NUMBER_RE.match(text, i)) is not None:
            parsed = float(number.group(0))
            tokens.append(_Token("num", int(parsed) if parsed.is_integer() else parsed, i))
            i = number.end()
        elif (ident := _IDENT_RE.match(text, i)) is not None:
            tokens.append(_Token("ident", ident.group(0), i))
            i = ident.end()
        else:
            op = next((op for op in _OPERATORS if text.startswith(op, i)), None)
            if op is None:
                raise FormulaSyntaxError(f"unexpected character {char!r} at position {i}")
            tokens.append(_Token("op", op, i))
            i += len(op)
    tokens.append(_Token("end", None, len(text)))
    return tokens


_BINARY_LEVELS: tuple[tuple[str, ...], ...] = (
    ("=", "!=", "<", ">", "<=", ">="),
    ("&",),
    ("+", "-"),
    ("*", "/"),
)


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, kind: str) -> _Token:
        token = self.take()
        if token.kind != kind:
            raise FormulaSyntaxError(f"expected {kind!r} at position {token.position}")
        return token

    def parse(self) -> Node:
        node = self.binary(0)
        token = self.peek()
        if token.kind != "end":
            raise FormulaSyntaxError(f"unexpected {token.value!r} at position {token.position}")
        return node

    def binary(self, level: int) -> Node:
        if level == len(_BINARY_LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while (token := self.peek()).kind == "op" and token.value in _BINARY_LEVELS[level]:
            self.take()
            node = Binary(token.value, node, self.binary(level + 1))
        return node

    def unary(self) -> Node:
        token = self.peek()
        if token.kind == "op" and token.value in ("-", "+"):
            self.take()
            return Unary(token.value, self.unary())
        return self.primary()

    def primary(self) -> Node:
        token = self.take()
        if token.kind in ("num", "str"):
            return Literal(token.value)
        if token.kind == "field":
            return FieldRef(token.value)
        if token.kind == "(":
            node = self.binary(0)
            self.expect(")")
            return node
        if token.kind == "ident":
            if self.peek().kind == "(":
                self.take()
                return Call(token.value.upper(), self.arguments())
            # A bare single-word name is a field reference, as in Airtable's formula editor.
            return FieldRef(token.value)
        if token.kind == "end":
            raise FormulaSyntaxError("unexpected end of formula")
        raise FormulaSyntaxError(f"unexpected {token.value!r} at position {token.position}")

    def arguments(self) -> tuple[Node, ...]:
        args: list[Node] = []
        if self.peek().kind == ")":
            self.take()
            return ()
        while True:
            args.append(self.binary(0))
            token = self.take()
            if token.kind == ")":
                return tuple(args)
            if token.kind != ",":
                raise FormulaSyntaxError(f"expected ',' or ')' at position {token.position}")


def parse(text: str) -> Node:
    """Parse formula text into a syntax tree; raise FormulaSyntaxError when it is not valid."""
    return _Parser(tokenize(text)).parse()
