"""firebase-admin (real SDK, real HTTP) against the FCM stand-in: tokens pruned, quota
pauses, 503 retried by the SDK then by us."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import firebase_admin
import firebase_admin._http_client
import google.auth.credentials
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from firebase_admin import messaging
from sqlalchemy import Engine, select

from omni_journey.delivery import dispatch
from omni_journey.delivery.fcm import FcmProvider, create_fcm_provider
from omni_journey.settings import Settings
from omni_journey.store.tables import Identity, Suppression
from tests.support.fcm_standin import ACCESS_TOKEN, FcmStandIn, fcm_standin
from tests.support.outbox import T0, add_customer, add_message, messages, simple_renderer


@pytest.fixture(scope="module")
def standin() -> Iterator[FcmStandIn]:
    with fcm_standin() as server:
        yield server


@pytest.fixture
def fcm(
    standin: FcmStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FcmProvider]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    account = tmp_path / "service-account.json"
    account.write_text(json.dumps({
        "type": "service_account",
        "project_id": "omni-test",
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": "omni@omni-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"{standin.url}/token",
    }))  # fmt: skip
    monkeypatch.setattr(
        messaging._MessagingService, "FCM_URL", standin.url + "/v1/projects/{0}/messages:send"
    )
    # google-auth's background iamcredentials lookup after a token refresh: not here.
    monkeypatch.setattr(
        google.auth.credentials.CredentialsWithRegionalAccessBoundary,
        "_is_regional_access_boundary_lookup_required",
        lambda self: False,
    )
    # firebase-admin retries 500/503 itself with back-off; keep the retries, not the sleep.
    monkeypatch.setattr(firebase_admin._http_client.DEFAULT_RETRY_CONFIG, "backoff_factor", 0)
    provider = create_fcm_provider(Settings(fcm_credentials_path=account))
    yield provider
    firebase_admin.delete_app(provider.app)


def test_push_through_firebase_admin_prunes_dead_tokens(
    sqlite_store: Engine, tmp_path: Path, fcm: FcmProvider, standin: FcmStandIn
) -> None:
    tokens = {
        "c-ok": "good-token-1",
        "c-unreg": "unregistered-1",
        "c-invalid": "invalid-1",
        "c-down": "unavailable-1",
    }
    for customer, token in tokens.items():
        add_customer(sqlite_store, customer, push_tokens=[token])
        add_message(sqlite_store, f"k-{customer}", customer, "push")
    settings = Settings(home=tmp_path / "home", rate_limits="")

    report = dispatch(sqlite_store, {"push": fcm}, simple_renderer, now=T0, settings=settings,
                      worker_id="w1", clock=lambda: 0.0, sleep=lambda _s: None)  # fmt: skip

    assert (report.sent, report.failed, report.retried) == (1, 2, 1)
    rows = messages(sqlite_store)
    assert rows["k-c-ok"].status == "sent"
    [delivered] = [m for m in standin.sent if m["token"] == "good-token-1"]
    assert rows["k-c-ok"].provider_message_id == delivered["name"]
    assert delivered["notification"] == {"title": "Hello", "body": "Hello there"}
    assert delivered["data"]["omni_message"] == str(rows["k-c-ok"].id)
    assert rows["k-c-unreg"].error.startswith("fcm: UNREGISTERED")
    assert rows["k-c-invalid"].error.startswith("fcm: INVALID_ARGUMENT")
    assert rows["k-c-down"].status == "pending"
    # firebase-admin retried the 503 itself (4 retries) before we scheduled ours
    assert sum(1 for _, token, _ in standin.requests if token == "unavailable-1") == 5
    assert {auth for _, _, auth in standin.requests} == {f"Bearer {ACCESS_TOKEN}"}
    with sqlite_store.connect() as connection:
        left = set(connection.execute(select(Identity.value)).scalars())  # type: ignore[call-overload]
        suppressed = {
            (r.address, r.reason)
            for r in connection.execute(select(Suppression.__table__))  # type: ignore[attr-defined]
        }
    assert left == {"good-token-1", "unavailable-1"}
    assert suppressed == {("unregistered-1", "UNREGISTERED"), ("invalid-1", "INVALID_ARGUMENT")}


def test_quota_exceeded_backs_off_a_minute(
    sqlite_store: Engine, tmp_path: Path, fcm: FcmProvider, standin: FcmStandIn
) -> None:
    add_customer(sqlite_store, "c-1", push_tokens=["quota-1"])
    add_message(sqlite_store, "k-1", "c-1", "push")
    settings = Settings(home=tmp_path / "home", rate_limits="")

    report = dispatch(sqlite_store, {"push": fcm}, simple_renderer, now=T0, settings=settings,
                      worker_id="w1", clock=lambda: 0.0, sleep=lambda _s: None)  # fmt: skip

    assert report.paused == {"fcm": "QUOTA_EXCEEDED"}
    row = messages(sqlite_store)["k-1"]
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.send_after >= T0 + timedelta(minutes=1)
