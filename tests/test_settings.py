"""Settings are read once into one typed object; every bad one is named in one startup error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = {
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "token",
    "AIRTABLE_API_KEY": "pat",
    "AIRTABLE_BASE_ID": "appAAAAAAAAAAAAAA",
}


def test_defaults() -> None:
    settings = Settings.from_env(MINIMAL)
    assert settings.airtable_endpoint_url == "https://api.airtable.com"
    assert settings.airtable_customers_table == "Customers"
    assert settings.airtable_templates_table == "Templates"
    assert settings.firestore_database == "(default)"
    assert settings.firestore_collection_prefix == ""
    assert settings.cache_ttl_seconds == 60
    assert settings.full_sweep_seconds == 3600
    assert settings.default_phone_region == "US"
    assert settings.signature_validation is True
    assert settings.allow_customer_delete is False
    assert settings.customer_fields["owner"] == "owner"
    assert settings.template_fields["whatsapp_approved"] == "whatsAppApproved"


def test_the_quickstart_names_are_accepted() -> None:
    env = {k: v for k, v in MINIMAL.items() if not k.startswith("TWILIO_")}
    settings = Settings.from_env({**env, "ACCOUNT_SID": "AC" + "2" * 32, "AUTH_TOKEN": "old"})
    assert settings.twilio_account_sid == "AC" + "2" * 32
    assert settings.twilio_auth_token == "old"


def test_every_bad_setting_is_named_at_once() -> None:
    env = {
        "TWILIO_ACCOUNT_SID": "nope",
        "AIRTABLE_BASE_ID": "base",
        "CACHE_TTL_SECONDS": "soon",
        "PUBLIC_BASE_URL": "ftp://x",
        "TWILIO_SMS_NUMBER": "call me",
        "PROXY_NUMBERS": "[1, 2]",
        "LOG_LEVEL": "LOUD",
        "ALLOW_CUSTOMER_DELETE": "maybe",
        "AIRTABLE_FIELDS": '{"customers": {"colour": "Colour"}}',
    }
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    message = str(raised.value)
    for name in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "AIRTABLE_API_KEY",
        "AIRTABLE_BASE_ID",
        "CACHE_TTL_SECONDS",
        "PUBLIC_BASE_URL",
        "TWILIO_SMS_NUMBER",
        "PROXY_NUMBERS",
        "LOG_LEVEL",
        "ALLOW_CUSTOMER_DELETE",
        "AIRTABLE_FIELDS",
    ):
        assert name in message
    assert len(raised.value.problems) == 11


def test_signature_validation_cannot_be_switched_off_on_google_cloud() -> None:
    local = Settings.from_env({**MINIMAL, "TWILIO_SIGNATURE_VALIDATION": "false"})
    assert local.signature_validation is False
    with pytest.raises(SettingsError, match="refused on Google Cloud"):
        Settings.from_env({**MINIMAL, "TWILIO_SIGNATURE_VALIDATION": "false", "K_SERVICE": "fn"})


def test_secrets_may_come_from_secret_manager_names() -> None:
    env = {k: v for k, v in MINIMAL.items() if k not in ("TWILIO_AUTH_TOKEN", "AIRTABLE_API_KEY")}
    with pytest.raises(SettingsError, match="GOOGLE_CLOUD_PROJECT"):
        Settings.from_env(
            {**env, "TWILIO_AUTH_TOKEN_SECRET": "tw", "AIRTABLE_API_KEY_SECRET": "at"}
        )
    settings = Settings.from_env(
        {
            **env,
            "TWILIO_AUTH_TOKEN_SECRET": "projects/p/secrets/tw",
            "AIRTABLE_API_KEY_SECRET": "at",
            "GOOGLE_CLOUD_PROJECT": "p",
        }
    )
    assert settings.twilio_auth_token is None
    assert settings.airtable_api_key_secret == "at"


def test_secret_values_stay_out_of_the_repr() -> None:
    text = repr(Settings.from_env({**MINIMAL, "REFRESH_TOKEN": "refresh-me"}))
    assert "token" not in text.replace("auth_token_secret", "").replace("refresh_token_secret", "")
    assert "pat" not in text
    assert "refresh-me" not in text


def test_column_names_can_be_renamed() -> None:
    settings = Settings.from_env(
        {
            **MINIMAL,
            "AIRTABLE_FIELDS": '{"customers": {"name": "Full name"}, "templates": {"text": "B"}}',
        }
    )
    assert settings.customer_fields["name"] == "Full name"
    assert settings.customer_fields["sms"] == "sms"
    assert settings.template_fields["text"] == "B"


def test_functions_framework_refuses_to_start_with_one_clear_message() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "AIRTABLE_"))}
    env["AIRTABLE_BASE_ID"] = "wrong"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "functions-framework"),
            "--target=frontline",
            "--source=main.py",
            "--port=0",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "AIRTABLE_API_KEY", "AIRTABLE_BASE_ID"):
        assert name in output
