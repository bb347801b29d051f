"""Everything one function instance builds once and shares between its requests."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from google.cloud import firestore

from cache.directory import ContactDirectory
from cache.guard import FirestoreGuard
from cache.layout import FirestoreMeter, Layout
from cache.lease import Leases
from cache.records import CustomerRecords
from cache.refresh import Refresher
from cache.snapshots import WorkerSnapshots
from cache.staging import FullSyncStaging
from cache.sync_state import SyncStateStore
from cache.templates import TemplateStore
from contacts.source import CustomerSource
from handlers.base import Services
from handlers.page_tokens import PageTokens
from integrations.airtable import AirtableSource
from integrations.conversations import Conversations
from integrations.rate_limit import RateLimiter
from service.clock import Clock, SystemClock
from service.secrets import SecretManagerClient, SecretResolver, default_client
from service.settings import Settings
from service.signature import SignatureVerifier
from service.task_auth import GOOGLE_CERTS_URL, TaskAuthorizer

EMULATOR_PROJECT = "demo-frontline"


@dataclass(frozen=True)
class Wiring:
    """The objects built from settings and secrets."""

    services: Services
    verifier: SignatureVerifier
    task_authorizer: TaskAuthorizer
    source: CustomerSource
    firestore_meter: FirestoreMeter


class Instance:
    """Builds the clients lazily on the first request (thread-safe) and keeps them."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        secret_client: Callable[[], SecretManagerClient] = default_client,
        certs_url: str = GOOGLE_CERTS_URL,
        firestore_guard: FirestoreGuard | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock or SystemClock()
        self._secrets = SecretResolver(settings, secret_client)
        self._certs_url = certs_url
        self._firestore_guard = firestore_guard
        self._wiring: Wiring | None = None
        self._lock = threading.Lock()

    def wiring(self) -> Wiring:
        """The instance's clients; built once, retried on the next request if building failed."""
        if self._wiring is None:
            with self._lock:
                if self._wiring is None:
                    self._wiring = self._build()
        return self._wiring

    def _build(self) -> Wiring:
        settings = self.settings
        credentials = self._secrets.credentials()
        project = settings.google_cloud_project or (
            EMULATOR_PROJECT if os.environ.get("FIRESTORE_EMULATOR_HOST") else None
        )
        db = firestore.Client(project=project, database=settings.firestore_database)
        layout = Layout(db, settings.firestore_collection_prefix, self._firestore_guard)
        source = AirtableSource(
            settings,
            credentials.airtable_api_key,
            RateLimiter(settings.airtable_requests_per_second),
        )
        snapshots = WorkerSnapshots(layout)
        records = CustomerRecords(layout, settings.default_phone_region)
        templates = TemplateStore(layout)
        state = SyncStateStore(layout)
        refresher = Refresher(
            source=source,
            snapshots=snapshots,
            records=records,
            templates=templates,
            state=state,
            staging=FullSyncStaging(layout),
            leases=Leases(layout, self._clock),
            clock=self._clock,
            ttl_seconds=settings.cache_ttl_seconds,
            sweep_seconds=settings.full_sweep_seconds,
        )
        directory = ContactDirectory(
            source=source,
            snapshots=snapshots,
            records=records,
            templates=templates,
            state=state,
            refresher=refresher,
            clock=self._clock,
            phone_region=settings.default_phone_region,
        )
        page_key = hmac.new(
            credentials.twilio_auth_token.encode(), b"frontline page tokens", hashlib.sha256
        ).digest()
        services = Services(
            directory=directory,
            conversations=Conversations(
                settings.twilio_account_sid,
                credentials.twilio_auth_token,
                settings.twilio_api_base_url,
            ),
            settings=settings,
            page_tokens=PageTokens(page_key),
        )
        audience = f"{settings.public_base_url}/tasks/refresh" if settings.public_base_url else None
        return Wiring(
            services=services,
            verifier=SignatureVerifier(credentials.twilio_auth_token),
            task_authorizer=TaskAuthorizer(
                refresh_token=credentials.refresh_token,
                scheduler_account=settings.scheduler_service_account,
                audience=audience,
                certs_url=self._certs_url,
            ),
            source=source,
            firestore_meter=layout.meter,
        )
