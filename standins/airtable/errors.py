"""Airtable's error answers: status codes and JSON bodies as the real API sends them."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer: raise it anywhere while handling a request."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def typed(status: int, kind: str, message: str) -> ApiError:
    """The usual shape: ``{"error": {"type": …, "message": …}}``."""
    return ApiError(status, {"error": {"type": kind, "message": message}})


def authentication_required() -> ApiError:
    """401: a missing or wrong bearer token."""
    return typed(401, "AUTHENTICATION_REQUIRED", "Authentication required")


def base_not_found() -> ApiError:
    """403: a base the token cannot reach (or that does not exist)."""
    return typed(
        403,
        "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
        "Invalid permissions, or the requested model was not found. Check that both your user"
        " and your token have the required permissions, and that the model names and/or ids"
        " are correct.",
    )


def missing_scope() -> ApiError:
    """403: a token without the scope an endpoint needs (e.g. ``webhook:manage``); Airtable
    gives the same answer as for a base the token cannot reach."""
    return base_not_found()


def too_many_webhooks(limit: int) -> ApiError:
    """422: a base already has Airtable's maximum of webhooks (the error type is a guess: the
    limit is documented, its error is not)."""
    return typed(
        422, "TOO_MANY_WEBHOOKS", f"A base can have at most {limit} webhooks; delete one first"
    )


def table_not_found(table: str, base: str) -> ApiError:
    """404: no such table in the base."""
    return typed(404, "TABLE_NOT_FOUND", f"Could not find table {table} in application {base}")


def not_found() -> ApiError:
    """The bare 404 Airtable gives for a missing record or an unknown route."""
    return ApiError(404, {"error": "NOT_FOUND"})


def model_id_not_found(record_id: str) -> ApiError:
    """404: a single-record write to a record that does not exist."""
    return typed(404, "MODEL_ID_NOT_FOUND", f"Could not find a record with ID {record_id}")


def row_does_not_exist(record_id: str) -> ApiError:
    """422: a batch naming a record that does not exist."""
    return typed(422, "ROW_DOES_NOT_EXIST", f"Record ID {record_id} does not exist in this table")


def invalid_request(message: str | None = None) -> ApiError:
    """422: a parameter or body Airtable would not accept."""
    return typed(
        422,
        "INVALID_REQUEST_UNKNOWN",
        message or "Invalid request: parameter validation failed. Check your request data.",
    )


def invalid_records(message: str) -> ApiError:
    """422: a batch of the wrong size."""
    return typed(422, "INVALID_RECORDS", message)


def unknown_field(name: str) -> ApiError:
    """422: a field name the table does not have."""
    return typed(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')


def view_not_found(view: str, table: str) -> ApiError:
    """422: a ``view`` the table does not have."""
    return typed(422, "VIEW_NAME_NOT_FOUND", f'Could not find view "{view}" in table "{table}"')


def invalid_formula(detail: str) -> ApiError:
    """422: a filterByFormula that does not parse or names unknown fields."""
    return typed(
        422,
        "INVALID_FILTER_BY_FORMULA",
        f"The formula for filtering records is invalid: {detail}",
    )


def invalid_offset(offset: str) -> ApiError:
    """422: an offset that was never handed out."""
    return typed(422, "INVALID_OFFSET_VALUE", f"The value of offset {offset} is invalid")


def iterator_not_available() -> ApiError:
    """422: an offset whose iterator has expired."""
    return typed(
        422,
        "LIST_RECORDS_ITERATOR_NOT_AVAILABLE",
        "The list records iterator is no longer available; start the listing again",
    )


def url_too_long() -> ApiError:
    """414: a URL past Airtable's 16,000-character limit."""
    return typed(414, "URL_TOO_LONG", "The URL exceeds the 16000 character limit")


def rate_limited() -> ApiError:
    """429: over the per-base rate limit, or inside its penalty period."""
    return ApiError(
        429,
        {
            "errors": [
                {
                    "error": "RATE_LIMIT_REACHED",
                    "message": "Rate limit exceeded. Please try again later",
                }
            ]
        },
    )


_STATUS_ERRORS = {
    400: ("BAD_REQUEST", "Bad request"),
    402: ("PAYMENT_REQUIRED", "The account has exceeded a billing plan limit"),
    403: ("NOT_AUTHORIZED", "You are not authorized to perform this operation"),
    413: ("REQUEST_TOO_LARGE", "Request body is too large"),
    500: ("SERVER_ERROR", "Server error"),
    502: ("BAD_GATEWAY", "Bad gateway"),
    503: ("SERVICE_UNAVAILABLE", "Service unavailable"),
    504: ("GATEWAY_TIMEOUT", "Gateway timeout"),
}


def for_status(status: int) -> ApiError:
    """Airtable's answer for ``status``, used to inject faults."""
    if status == 401:
        return authentication_required()
    if status == 404:
        return not_found()
    if status == 422:
        return invalid_request()
    if status == 429:
        return rate_limited()
    kind, message = _STATUS_ERRORS.get(status, ("SERVER_ERROR", "Server error"))
    return typed(status, kind, message)
