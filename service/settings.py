"""Settings: every environment variable the service reads, parsed once per instance."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

# The columns users copy from the quickstart's table; each can be renamed through AIRTABLE_FIELDS.
DEFAULT_CUSTOMER_FIELDS: Mapping[str, str] = {
    "id": "id",
    "name": "name",
    "sms": "sms",
    "whatsapp": "whatsapp",
    "email": "email",
    "linkedin": "linkedin",
    "notes": "notes",
    "owner": "owner",
    "opt_out": "opt_out",
    "avatar": "avatar",
}
DEFAULT_TEMPLATE_FIELDS: Mapping[str, str] = {
    "category": "category",
    "text": "text",
    "whatsapp_approved": "whatsAppApproved",
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_BASE_ID = re.compile(r"^app[A-Za-z0-9]{14}$")
_PHONE = re.compile(r"^(whatsapp:)?\+?[0-9 ()./-]{6,20}$")


class SettingsError(Exception):
    """One or more settings are missing or malformed; the message lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings: " + "; ".join(problems) + " (see README, 'Settings')")


@dataclass(frozen=True)
class Settings:
    """The service's configuration. Secret values stay None when they come from Secret Manager."""

    twilio_account_sid: str
    airtable_base_id: str
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_auth_token_secret: str | None = None
    twilio_sms_number: str | None = None
    twilio_whatsapp_number: str | None = None
    proxy_numbers: Mapping[str, str] = field(default_factory=dict)
    twilio_api_base_url: str | None = None
    signature_validation: bool = True
    airtable_api_key: str | None = field(default=None, repr=False)
    airtable_api_key_secret: str | None = None
    airtable_endpoint_url: str = "https://api.airtable.com"
    airtable_customers_table: str = "Customers"
    airtable_templates_table: str = "Templates"
    customer_fields: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_CUSTOMER_FIELDS)
    )
    template_fields: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_TEMPLATE_FIELDS)
    )
    airtable_requests_per_second: float = 5.0
    google_cloud_project: str | None = None
    firestore_database: str = "(default)"
    firestore_collection_prefix: str = ""
    public_base_url: str | None = None
    default_worker: str | None = None
    default_phone_region: str = "US"
    cache_ttl_seconds: int = 60
    full_sweep_seconds: int = 3600
    task_budget_seconds: int = 480
    refresh_token: str | None = field(default=None, repr=False)
    refresh_token_secret: str | None = None
    scheduler_service_account: str | None = None
    allow_customer_delete: bool = False
    log_level: str = "INFO"
    on_google_cloud: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse settings from environment variables; raise SettingsError listing every problem."""
        reader = _Reader(env)
        account_sid = reader.text("TWILIO_ACCOUNT_SID", alias="ACCOUNT_SID")
        if account_sid is None:
            reader.problem("TWILIO_ACCOUNT_SID (or ACCOUNT_SID) is required")
        elif not _ACCOUNT_SID.match(account_sid):
            reader.problem("TWILIO_ACCOUNT_SID must look like AC followed by 32 hex digits")
        auth_token = reader.text("TWILIO_AUTH_TOKEN", alias="AUTH_TOKEN")
        auth_token_secret = reader.text("TWILIO_AUTH_TOKEN_SECRET")
        if auth_token is None and auth_token_secret is None:
            reader.problem("TWILIO_AUTH_TOKEN (or TWILIO_AUTH_TOKEN_SECRET) is required")
        api_key = reader.text("AIRTABLE_API_KEY")
        api_key_secret = reader.text("AIRTABLE_API_KEY_SECRET")
        if api_key is None and api_key_secret is None:
            reader.problem("AIRTABLE_API_KEY (or AIRTABLE_API_KEY_SECRET) is required")
        base_id = reader.text("AIRTABLE_BASE_ID")
        if base_id is None:
            reader.problem("AIRTABLE_BASE_ID is required")
        elif not _BASE_ID.match(base_id):
            reader.problem("AIRTABLE_BASE_ID must look like app followed by 14 letters or digits")
        on_google_cloud = bool(env.get("K_SERVICE"))
        signature_validation = reader.boolean("TWILIO_SIGNATURE_VALIDATION", True)
        if not signature_validation and on_google_cloud:
            reader.problem(
                "TWILIO_SIGNATURE_VALIDATION=false is refused on Google Cloud (K_SERVICE is set)"
            )
        project = reader.text("GOOGLE_CLOUD_PROJECT")
        for name, value in (
            ("TWILIO_AUTH_TOKEN_SECRET", auth_token_secret),
            ("AIRTABLE_API_KEY_SECRET", api_key_secret),
            ("REFRESH_TOKEN_SECRET", reader.peek("REFRESH_TOKEN_SECRET")),
        ):
            if value and "/" not in value and project is None:
                reader.problem(f"{name} is a short secret id, so GOOGLE_CLOUD_PROJECT is required")
        settings = cls(
            twilio_account_sid=account_sid or "",
            airtable_base_id=base_id or "",
            twilio_auth_token=auth_token,
            twilio_auth_token_secret=auth_token_secret,
            twilio_sms_number=reader.phone("TWILIO_SMS_NUMBER"),
            twilio_whatsapp_number=reader.phone("TWILIO_WHATSAPP_NUMBER"),
            proxy_numbers=reader.proxy_numbers("PROXY_NUMBERS"),
            twilio_api_base_url=reader.url("TWILIO_API_BASE_URL"),
            signature_validation=signature_validation,
            airtable_api_key=api_key,
            airtable_api_key_secret=api_key_secret,
            airtable_endpoint_url=reader.url("AIRTABLE_ENDPOINT_URL") or "https://api.airtable.com",
            airtable_customers_table=reader.text("AIRTABLE_CUSTOMERS_TABLE") or "Customers",
            airtable_templates_table=reader.text("AIRTABLE_TEMPLATES_TABLE") or "Templates",
            customer_fields=reader.field_map(
                "AIRTABLE_FIELDS", DEFAULT_CUSTOMER_FIELDS, "customers"
            ),
            template_fields=reader.field_map(
                "AIRTABLE_FIELDS", DEFAULT_TEMPLATE_FIELDS, "templates"
            ),
            airtable_requests_per_second=reader.number(
                "AIRTABLE_REQUESTS_PER_SECOND", 5.0, 0.1, 50
            ),
            google_cloud_project=project,
            firestore_database=reader.text("FIRESTORE_DATABASE") or "(default)",
            firestore_collection_prefix=reader.collection_prefix("FIRESTORE_COLLECTION_PREFIX"),
            public_base_url=reader.url("PUBLIC_BASE_URL"),
            default_worker=reader.text("DEFAULT_WORKER"),
            default_phone_region=reader.region("DEFAULT_PHONE_REGION", "US"),
            cache_ttl_seconds=reader.integer("CACHE_TTL_SECONDS", 60, 1, 86_400),
            full_sweep_seconds=reader.integer("FULL_SWEEP_SECONDS", 3600, 60, 7 * 86_400),
            task_budget_seconds=reader.integer("TASK_BUDGET_SECONDS", 480, 10, 3600),
            refresh_token=reader.text("REFRESH_TOKEN"),
            refresh_token_secret=reader.text("REFRESH_TOKEN_SECRET"),
            scheduler_service_account=reader.text("SCHEDULER_SERVICE_ACCOUNT"),
            allow_customer_delete=reader.boolean("ALLOW_CUSTOMER_DELETE", False),
            log_level=reader.choice("LOG_LEVEL", LOG_LEVELS, "INFO"),
            on_google_cloud=on_google_cloud,
        )
        if reader.problems:
            raise SettingsError(reader.problems)
        return settings


class _Reader:
    """Reads raw environment values and collects every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def peek(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def text(self, name: str, alias: str | None = None) -> str | None:
        value = self.peek(name)
        if value is None and alias is not None:
            value = self.peek(alias)
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.peek(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        self.problem(f"{name} must be true or false")
        return default

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.peek(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.problem(f"{name} must be a whole number")
            return default
        if not low <= number <= high:
            self.problem(f"{name} must be between {low} and {high}")
            return default
        return number

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.peek(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            self.problem(f"{name} must be a number")
            return default
        if not low <= number <= high:
            self.problem(f"{name} must be between {low} and {high}")
            return default
        return number

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.peek(name)
        if value is None:
            return default
        if value.upper() not in choices:
            self.problem(f"{name} must be one of {', '.join(choices)}")
            return default
        return value.upper()

    def url(self, name: str) -> str | None:
        value = self.peek(name)
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            self.problem(f"{name} must be an http(s) URL")
            return None
        return value.rstrip("/")

    def phone(self, name: str) -> str | None:
        value = self.peek(name)
        if value is not None and not _PHONE.match(value):
            self.problem(f"{name} must be a phone number such as +14155550100")
            return None
        return value

    def region(self, name: str, default: str) -> str:
        value = self.peek(name)
        if value is None:
            return default
        if not re.fullmatch(r"[A-Za-z]{2}", value):
            self.problem(f"{name} must be a two-letter region code such as US")
            return default
        return value.upper()

    def collection_prefix(self, name: str) -> str:
        value = self.peek(name) or ""
        if not re.fullmatch(r"[A-Za-z0-9_-]{0,64}", value):
            self.problem(f"{name} may hold only letters, digits, - and _ (at most 64)")
            return ""
        return value

    def proxy_numbers(self, name: str) -> dict[str, str]:
        raw = self.peek(name)
        if raw is None:
            return {}
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and _PHONE.match(v) for k, v in parsed.items()
        ):
            self.problem(
                f'{name} must be a JSON object of worker to number, e.g. {{"a@x.com": "+1..."}}'
            )
            return {}
        return parsed

    def field_map(self, name: str, defaults: Mapping[str, str], table: str) -> dict[str, str]:
        """Column names of one table, AIRTABLE_FIELDS is {"customers": {..}, "templates": {..}}."""
        raw = self.peek(name)
        merged = dict(defaults)
        if raw is None:
            return merged
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            if table == "customers":
                self.problem(
                    f'{name} must be a JSON object such as {{"customers": {{"name": "Full name"}}}}'
                )
            return merged
        overrides = parsed.get(table, {})
        if not isinstance(overrides, dict) or not all(
            isinstance(v, str) and v.strip() for v in overrides.values()
        ):
            self.problem(f"{name}.{table} must map column roles to non-empty column names")
            return merged
        unknown = sorted(set(overrides) - set(defaults))
        if unknown:
            self.problem(f"{name}.{table} has unknown column roles: {', '.join(unknown)}")
        merged.update({k: v for k, v in overrides.items() if k in defaults})
        return merged
