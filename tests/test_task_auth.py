"""Who may run /tasks/refresh: a Google-signed ID token of the scheduler's service account (checked
with google-auth against certificates served locally), or the shared refresh token."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from service.errors import Forbidden
from service.task_auth import TaskAuthorizer

SCHEDULER = "frontline-scheduler@proj.iam.gserviceaccount.com"
AUDIENCE = "https://fn.example.run.app/tasks/refresh"


@pytest.fixture(scope="module")
def signing() -> Iterator[tuple[crypt.RSASigner, str]]:
    """A key pair and a local endpoint serving its certificate the way Google serves its own."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    certs = json.dumps({"k1": cert.public_bytes(serialization.Encoding.PEM).decode()}).encode()

    class Certs(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(certs)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Certs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    yield crypt.RSASigner.from_string(pem, key_id="k1"), f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def token(signer: crypt.RSASigner, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": SCHEDULER,
        "email_verified": True,
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    token: bytes = jwt.encode(signer, payload)
    return token.decode()


def authorizer(certs_url: str, refresh_token: str | None = None) -> TaskAuthorizer:
    return TaskAuthorizer(
        refresh_token=refresh_token,
        scheduler_account=SCHEDULER,
        audience=AUDIENCE,
        certs_url=certs_url,
    )


def test_the_schedulers_id_token_is_accepted(signing: tuple[crypt.RSASigner, str]) -> None:
    signer, certs = signing
    authorizer(certs).check(f"Bearer {token(signer)}")


@pytest.mark.parametrize(
    "claims",
    [
        {"email": "someone-else@proj.iam.gserviceaccount.com"},
        {"aud": "https://elsewhere.example.com/tasks/refresh"},
        {"iss": "https://evil.example.com"},
        {"email_verified": False},
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
    ],
)
def test_other_id_tokens_are_refused(
    signing: tuple[crypt.RSASigner, str], claims: dict[str, Any]
) -> None:
    signer, certs = signing
    with pytest.raises(Forbidden):
        authorizer(certs).check(f"Bearer {token(signer, **claims)}")


def test_a_token_signed_by_another_key_is_refused(signing: tuple[crypt.RSASigner, str]) -> None:
    _, certs = signing
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forged = token(crypt.RSASigner.from_string(pem, key_id="k1"))
    with pytest.raises(Forbidden):
        authorizer(certs).check(f"Bearer {forged}")


def test_the_shared_refresh_token_is_accepted_and_nothing_else(
    signing: tuple[crypt.RSASigner, str],
) -> None:
    _, certs = signing
    auth = authorizer(certs, refresh_token="shared-secret")
    auth.check("Bearer shared-secret")
    for header in [
        None,
        "",
        "Bearer",
        "Bearer shared-secre",
        "Basic shared-secret",
        "Bearer a.b.c",
    ]:
        with pytest.raises(Forbidden) as raised:
            auth.check(header)
        assert "shared-secret" not in raised.value.message
