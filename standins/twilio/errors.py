"""Twilio's REST error responses: the codes the stand-in answers with and their JSON shape."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

# Codes from Twilio's error dictionary (https://www.twilio.com/docs/api/errors/<code>).
AUTHENTICATE = 20003
NOT_FOUND = 20404
METHOD_NOT_ALLOWED = 20004
UNKNOWN_PARAMETER = 20001
ATTRIBUTES_NOT_JSON = 50304
PARTICIPANT_EXISTS = 50433
BINDING_EXISTS = 50416
UNIQUE_NAME_EXISTS = 50353


class TwilioApiError(Exception):
    """An error the stand-in answers in Twilio's shape; also raised by its direct methods."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON Twilio sends with an error."""
        return error_body(self.status, self.code, self.message)


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's error JSON: code, message, more_info and status."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def default_code(status: int) -> int:
    """Twilio's generic code for an HTTP status (20404, 20429, 20500, 20503, ...)."""
    return AUTHENTICATE if status == HTTPStatus.UNAUTHORIZED else 20000 + status


def default_message(status: int) -> str:
    """The HTTP reason phrase, as Twilio's generic errors use it."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def not_found(path: str) -> TwilioApiError:
    """404 for a path or resource that does not exist."""
    return TwilioApiError(404, NOT_FOUND, f"The requested resource {path} was not found")


def bad_parameter(message: str) -> TwilioApiError:
    """400 for a parameter the operation does not accept or a value it cannot take."""
    return TwilioApiError(400, UNKNOWN_PARAMETER, message)
