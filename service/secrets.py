"""Secrets: a value in the environment wins; otherwise it is read once from Secret Manager."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from service.errors import DependencyUnavailable
from service.settings import Settings


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
            # The error text of the client may quote the request, never the payload; keep only
            # its type so nothing secret-adjacent reaches a response.
            raise DependencyUnavailable(
                f"could not read {name} from Secret Manager secret {resource} "
                f"({type(error).__name__}); check that the secret exists and that the "
                "runtime service account may access it",
                retry_after=30,
            ) from error
        if not text:
            raise DependencyUnavailable(f"Secret Manager secret {resource} for {name} is empty")
        return text
