"""Secrets: the environment wins, else Secret Manager is read once; values never leak."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from service.errors import DependencyUnavailable
from service.secrets import SecretResolver, secret_resource_name
from service.settings import Settings

BASE = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "AIRTABLE_BASE_ID": "appAAAAAAAAAAAAAA"}


@dataclass
class _Payload:
    data: bytes


@dataclass
class _Response:
    payload: _Payload


class FakeSecretManager:
    """Stands in for SecretManagerServiceClient at its one method, recording each request."""

    def __init__(self, secrets: dict[str, str], fail: bool = False) -> None:
        self.secrets = secrets
        self.fail = fail
        self.requests: list[str] = []

    def access_secret_version(self, *, request: dict[str, str], timeout: float) -> Any:
        self.requests.append(request["name"])
        if self.fail:
            raise PermissionError(f"403 Permission denied on {request['name']}")
        return _Response(_Payload(self.secrets[request["name"]].encode()))


def test_short_ids_name_the_latest_version_in_the_project() -> None:
    assert secret_resource_name("tw", "proj") == "projects/proj/secrets/tw/versions/latest"
    assert (
        secret_resource_name("projects/p/secrets/tw", None)
        == "projects/p/secrets/tw/versions/latest"
    )
    full = "projects/p/secrets/tw/versions/3"
    assert secret_resource_name(full, None) == full


def test_values_come_from_secret_manager_once() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "GOOGLE_CLOUD_PROJECT": "proj",
            "TWILIO_AUTH_TOKEN_SECRET": "tw",
            "AIRTABLE_API_KEY_SECRET": "projects/other/secrets/at/versions/2",
        }
    )
    fake = FakeSecretManager(
        {
            "projects/proj/secrets/tw/versions/latest": "twilio-token\n",
            "projects/other/secrets/at/versions/2": "airtable-pat",
        }
    )
    created: list[FakeSecretManager] = []

    def factory() -> FakeSecretManager:
        created.append(fake)
        return fake

    credentials = SecretResolver(settings, factory).credentials()
    assert credentials.twilio_auth_token == "twilio-token"
    assert credentials.airtable_api_key == "airtable-pat"
    assert credentials.refresh_token is None
    assert len(created) == 1
    assert len(fake.requests) == 2


def test_a_value_in_the_environment_wins_and_secret_manager_is_not_called() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "TWILIO_AUTH_TOKEN": "env-token",
            "TWILIO_AUTH_TOKEN_SECRET": "projects/p/secrets/tw",
            "AIRTABLE_API_KEY": "env-pat",
        }
    )
    fake = FakeSecretManager({})
    credentials = SecretResolver(settings, lambda: fake).credentials()
    assert (credentials.twilio_auth_token, credentials.airtable_api_key) == ("env-token", "env-pat")
    assert fake.requests == []


def test_a_failing_read_is_named_in_the_logs_and_never_echoes_a_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings.from_env(
        {**BASE, "AIRTABLE_API_KEY": "env-pat", "TWILIO_AUTH_TOKEN_SECRET": "projects/p/secrets/tw"}
    )
    with pytest.raises(DependencyUnavailable) as raised:
        SecretResolver(settings, lambda: FakeSecretManager({}, fail=True)).credentials()
    assert "TWILIO_AUTH_TOKEN" in raised.value.message
    assert "projects/" not in raised.value.message  # callers are not authenticated yet
    logged = [r for r in caplog.records if r.levelname == "ERROR"]
    assert logged[0].fields["secret"] == "projects/p/secrets/tw/versions/latest"  # type: ignore[attr-defined]
    assert "env-pat" not in raised.value.message + caplog.text


def test_the_credentials_repr_hides_values() -> None:
    settings = Settings.from_env(
        {**BASE, "TWILIO_AUTH_TOKEN": "s3cret-a", "AIRTABLE_API_KEY": "s3cret-b"}
    )
    text = repr(SecretResolver(settings, lambda: FakeSecretManager({})).credentials())
    assert "s3cret" not in text
