"""Secrets: a value in the environment wins; otherwise it is read once from Secret Manager."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from service.errors import DependencyUnavailable
from service.logs import log_fields
from service.settings import Settings

_log = logging.getLogger(__name__)


class SecretManagerClient(Protocol):
    """The one method of google-cloud-secret-manager's client this service uses."""

    def access_secret_version(self, *, request: dict[str, str], timeout: float) -> Any:
        """Return an AccessSecretVersionResponse (with `.payload.data`)."""
        ...


@dataclass(frozen=True)
class Credentials:
    """The secret values an instance needs. Never logged: repr hides them."""

    twilio_auth_token: str = field(repr=False)
    airtable_api_key: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)


def secret_resource_name(secret: str, project: str | None) -> str:
    """A short id means the latest version of that secret in the project; a full name is kept."""
    if secret.startswith("projects/"):
        return secret if "/versions/" in secret else f"{secret}/versions/latest"
    return f"projects/{project}/secrets/{secret}/versions/latest"


def default_client() -> SecretManagerClient:
    """The real Secret Manager client (imported lazily: local runs never need it)."""
    from google.cloud import secretmanager

    client: SecretManagerClient = secretmanager.SecretManagerServiceClient()
    return client


class SecretResolver:
    """Resolves the service's secrets from the environment or Secret Manager."""

    def __init__(
        self, settings: Settings, client_factory: Callable[[], SecretManagerClient] = default_client
    ) -> None:
        self._settings = settings
        self._client_factory = client_factory
        self._client: SecretManagerClient | None = None

    def credentials(self) -> Credentials:
        """Read every secret this instance needs; raise DependencyUnavailable naming the secret."""
        settings = self._settings
        return Credentials(
            twilio_auth_token=self._value(
                "TWILIO_AUTH_TOKEN", settings.twilio_auth_token, settings.twilio_auth_token_secret
            ),
            airtable_api_key=self._value(
                "AIRTABLE_API_KEY", settings.airtable_api_key, settings.airtable_api_key_secret
            ),
            refresh_token=self._optional(
                "REFRESH_TOKEN", settings.refresh_token, settings.refresh_token_secret
            ),
        )

    def _value(self, name: str, value: str | None, secret: str | None) -> str:
        resolved = self._optional(name, value, secret)
        if resolved is None:
            raise DependencyUnavailable(f"{name} is not set and no {name}_SECRET names a secret")
        return resolved

    def _optional(self, name: str, value: str | None, secret: str | None) -> str | None:
        if value is not None:
            return value
        if secret is None:
            return None
        resource = secret_resource_name(secret, self._settings.google_cloud_project)
        try:
            if self._client is None:
                self._client = self._client_factory()
            response = self._client.access_secret_version(request={"name": resource}, timeout=10)
            text = bytes(response.payload.data).decode("utf-8").strip()
        except Exception as error:
            # Callers are not authenticated yet (the signature check needs this secret): they get
            # a generic 503; the log names the secret and the error type, never a value.
            log_fields(
                _log,
                logging.ERROR,
                "could not read a secret from Secret Manager: check that it "
                "exists and that the runtime service account may access it",
                setting=name,
                secret=resource,
                error=type(error).__name__,
            )
            raise DependencyUnavailable(
                f"the service could not read its {name} secret; see the logs", retry_after=30
            ) from error
        if not text:
            log_fields(
                _log,
                logging.ERROR,
                "a Secret Manager secret is empty",
                setting=name,
                secret=resource,
            )
            raise DependencyUnavailable(f"the service's {name} secret is empty; see the logs")
        return text
