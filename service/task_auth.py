"""Who may call /tasks/refresh: Cloud Scheduler's OIDC token, or the shared refresh token."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

from service.errors import Forbidden
from service.logs import log_fields

_log = logging.getLogger(__name__)
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")


class TaskAuthorizer:
    """Accepts `Authorization: Bearer <REFRESH_TOKEN>` or a Google-signed ID token whose e-mail
    is SCHEDULER_SERVICE_ACCOUNT and whose audience is the task's public URL."""

    def __init__(
        self,
        *,
        refresh_token: str | None,
        scheduler_account: str | None,
        audience: str | None,
        certs_url: str = GOOGLE_CERTS_URL,
    ) -> None:
        self._refresh_token = refresh_token
        self._scheduler_account = scheduler_account
        self._audience = audience
        self._certs_url = certs_url

    def check(self, authorization: str | None) -> None:
        """Return if the caller may run the task; raise Forbidden (403) otherwise."""
        denied = Forbidden("this task needs the scheduler's credentials")
        if (
            not authorization
            or not authorization.startswith("Bearer ")
            or len(authorization) > 8_192
        ):
            raise denied
        token = authorization[len("Bearer ") :].strip()
        if self._refresh_token and hmac.compare_digest(
            token.encode(), self._refresh_token.encode()
        ):
            return
        if self._scheduler_account and self._audience and token.count(".") == 2:
            claims = self._verified_claims(token)
            if (
                claims is not None
                and claims.get("iss") in GOOGLE_ISSUERS
                and claims.get("email") == self._scheduler_account
                and claims.get("email_verified") is True
            ):
                return
        log_fields(_log, logging.WARNING, "task call refused")
        raise denied

    def _verified_claims(self, token: str) -> Mapping[str, Any] | None:
        from google.auth import exceptions as auth_exceptions
        from google.auth.transport import requests as auth_requests
        from google.oauth2 import id_token

        try:
            claims: Mapping[str, Any] = id_token.verify_token(
                token, auth_requests.Request(), audience=self._audience, certs_url=self._certs_url
            )
        except (ValueError, auth_exceptions.GoogleAuthError) as error:
            log_fields(_log, logging.WARNING, "task token rejected", error=type(error).__name__)
            return None
        return claims
