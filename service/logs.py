"""Structured logs as Cloud Logging reads them: one JSON object per line, personal data masked."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)

# Phone numbers: international (+ and 7+ digits), US-style national (415) 555-0134, or bare runs
# of 10-15 digits. Dates and times (2024-01-01T10:00) do not have these shapes. A match with
# fewer than MIN_PHONE_DIGITS digits is not a phone number.
PHONE_PATTERN = re.compile(
    r"\+\d[\d ().-]{5,}\d"
    r"|(?<![\w.-])\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}(?![\w-])"
    r"|(?<![\w.-])\d{10,15}(?![\w.-])"
)
MIN_PHONE_DIGITS = 7
# Also URL-encoded (alice%40example.com), as request URLs carry them.
EMAIL_PATTERN = re.compile(
    r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(?:@|%40)([A-Za-z0-9.-]+\.[A-Za-z]{2,})"
)


def mask(text: str) -> str:
    """Mask phone numbers (+1415***1234) and e-mail addresses (a***@example.com) in `text`."""

    def phone(match: re.Match[str]) -> str:
        raw = match.group(0)
        digits = re.sub(r"\D", "", raw)
        if len(digits) < MIN_PHONE_DIGITS:
            return raw
        prefix = ("+" if raw.startswith("+") else "") + digits[:4]
        return f"{prefix}***{digits[-4:]}"

    return PHONE_PATTERN.sub(phone, EMAIL_PATTERN.sub(r"\1***@\2", text))


def mask_value(value: Any) -> Any:
    """Mask strings inside any JSON-like value."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {key: mask_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(item) for item in value]
    return value


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON with severity, message, trace and extra fields."""

    def __init__(self, project: str | None) -> None:
        super().__init__()
        self._project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": mask(record.getMessage()),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update(mask_value(dict(fields)))
        trace = _trace.get()
        if trace and self._project:
            entry["logging.googleapis.com/trace"] = f"projects/{self._project}/traces/{trace}"
        if record.exc_info and record.exc_info[1] is not None:
            # The exception type only: tracebacks may quote request data.
            entry["error_type"] = type(record.exc_info[1]).__name__
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str, project: str | None) -> None:
    """Send the service's logs to stdout as JSON lines (idempotent)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_frontline", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stdout)
        handler._frontline = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter(project))
    root.setLevel(level)
    # HTTP libraries log whole request URLs at DEBUG, formulas and all.
    for noisy in ("urllib3", "requests", "twilio.http_client"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))


def set_trace(header: str | None) -> contextvars.Token[str | None]:
    """Remember the trace id from an X-Cloud-Trace-Context header ("TRACE/SPAN;o=1")."""
    trace = header.split("/", 1)[0].strip() if header else None
    return _trace.set(trace if trace and re.fullmatch(r"[0-9a-fA-F]{1,64}", trace) else None)


def reset_trace(token: contextvars.Token[str | None]) -> None:
    """Forget the trace of the request that ended."""
    _trace.reset(token)


def log_fields(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log `message` with structured fields (masked like the message)."""
    logger.log(level, message, extra={"fields": fields})
