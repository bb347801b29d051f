"""Twilio's OpenAPI description of the Conversations v1 API, parsed into routable operations."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

SPEC_PATH = Path(__file__).with_name("twilio-conversations-v1.yaml")

Schema = Mapping[str, Any]

_METHODS = ("get", "post", "delete")
_SCHEMA_REF = "#/components/schemas/"


@dataclass(frozen=True)
class Operation:
    """One method on one path of the spec: what it accepts and what it answers."""

    operation_id: str
    method: str
    template: str
    form_params: Mapping[str, Schema]
    query_params: Mapping[str, Schema]
    success_status: int
    resource_schema: str | None
    list_key: str | None

    def accepted_params(self) -> Mapping[str, Schema]:
        """The form (POST) or query (GET, DELETE) parameters this operation accepts."""
        return self.form_params if self.method == "POST" else self.query_params


@dataclass(frozen=True)
class _PathEntry:
    template: str
    pattern: re.Pattern[str]
    literal_segments: int


class Spec:
    """Routes requests to operations and describes resource schemas, as the spec defines them."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._schemas: Mapping[str, Schema] = document["components"]["schemas"]
        self._operations: dict[tuple[str, str], Operation] = {}
        entries: list[_PathEntry] = []
        for template, item in document["paths"].items():
            entries.append(_path_entry(template))
            for method in _METHODS:
                if method in item:
                    operation = self._operation(template, method.upper(), item[method])
                    self._operations[(template, operation.method)] = operation
        # Paths with more literal segments win, so `/v1/Configuration/Addresses` is never
        # mistaken for a parameterised sibling.
        self._paths = sorted(entries, key=lambda e: -e.literal_segments)

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        """The path template matching `path` and its path parameters, or None."""
        for entry in self._paths:
            found = entry.pattern.fullmatch(path)
            if found:
                return entry.template, found.groupdict()
        return None

    def operation(self, template: str, method: str) -> Operation | None:
        """The operation for `method` on `template`, or None when the spec has none."""
        return self._operations.get((template, method.upper()))

    def operations(self) -> Iterable[Operation]:
        """Every operation in the spec."""
        return self._operations.values()

    def properties(self, schema_name: str) -> tuple[str, ...]:
        """The property names of a component schema, in the spec's order."""
        return tuple(self._schemas[schema_name]["properties"])

    def resolve(self, schema: Schema) -> Schema:
        """Follow a `$ref` to its component schema."""
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_SCHEMA_REF):
            return self._schemas[ref.removeprefix(_SCHEMA_REF)]
        return schema

    def invalid_value(self, schema: Schema, value: str) -> str | None:
        """Why `value` does not fit `schema` as a form or query value, or None when it fits."""
        schema = self.resolve(schema)
        if value in ("", "null") and schema.get("nullable"):
            return None
        kind = schema.get("type")
        if kind == "integer":
            if not re.fullmatch(r"-?\d+", value):
                return "must be an integer"
            minimum = schema.get("minimum")
            if minimum is not None and int(value) < minimum:
                return f"must be at least {minimum}"
        elif kind == "boolean" and value.lower() not in ("true", "false"):
            return "must be true or false"
        elif kind == "array":
            return self.invalid_value(schema.get("items", {}), value)
        if schema.get("format") == "date-time":
            try:
                datetime.fromisoformat(value)
            except ValueError:
                return "must be an ISO 8601 date-time"
        enum = schema.get("enum")
        if enum is not None and value not in enum:
            return f"must be one of {', '.join(map(str, enum))}"
        pattern = schema.get("pattern")
        if pattern is not None and not re.search(pattern, value):
            return f"must match {pattern}"
        return None

    def _operation(self, template: str, method: str, raw: Mapping[str, Any]) -> Operation:
        parameters = raw.get("parameters", ())
        query = {p["name"]: p.get("schema", {}) for p in parameters if p["in"] == "query"}
        form: Mapping[str, Schema] = {}
        body = raw.get("requestBody", {}).get("content", {})
        if "application/x-www-form-urlencoded" in body:
            form = body["application/x-www-form-urlencoded"]["schema"].get("properties", {})
        status, resource, list_key = self._success(raw["responses"])
        return Operation(
            operation_id=raw["operationId"],
            method=method,
            template=template,
            form_params=form,
            query_params=query,
            success_status=status,
            resource_schema=resource,
            list_key=list_key,
        )

    def _success(self, responses: Mapping[Any, Any]) -> tuple[int, str | None, str | None]:
        """Status, resource schema name and list key of an operation's success response."""
        key = min((k for k in responses if str(k).startswith("2")), key=lambda k: int(k))
        content = responses[key].get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            return int(key), None, None
        ref = schema.get("$ref")
        if ref:
            return int(key), ref.removeprefix(_SCHEMA_REF), None
        for name, prop in schema.get("properties", {}).items():
            if name != "meta" and prop.get("type") == "array":
                return int(key), prop["items"]["$ref"].removeprefix(_SCHEMA_REF), name
        return int(key), None, None


def _path_entry(template: str) -> _PathEntry:
    parts = re.split(r"(\{\w+\})", template)
    regex = "".join(
        f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts if p
    )
    literals = sum(1 for segment in template.split("/") if segment and "{" not in segment)
    return _PathEntry(template, re.compile(regex), literals)


def _loader() -> Any:
    """libyaml's loader when PyYAML was built with it: about ten times faster on this file."""
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def load_spec(path: Path = SPEC_PATH) -> Spec:
    """Parse the spec once per process; later calls return the same object."""
    with path.open("rb") as handle:
        document = yaml.load(handle, Loader=_loader())  # noqa: S506 - a SafeLoader
    return Spec(document)
