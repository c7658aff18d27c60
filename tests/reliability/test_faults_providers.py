"""Provider faults, through the real parts: every provider as the settings build it
(``load_providers``: boto3 against the moto stand-in, firebase-admin against the FCM
stand-in, httpx against a local receiver), the real dispatcher on a real SQLite store.

For each provider, eight customers get one message each. Four are left alone; the other
four meet a fault: throttling beyond the SDK's own retries, server errors (5xx), an
answer slower than the client waits (a timeout: the stand-in still delivers it), and a
permanent refusal. The first dispatch must send the four untouched messages; then
dispatch runs again, later, until nothing is due, and the ledger must hold: every
message sent exactly once or failed with its reason (the timed-out one ``in_doubt`` on a
provider without idempotency, and delivered once, never twice), nothing left claimed.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import firebase_admin
import pytest
from botocore.config import Config
from sqlalchemy import Engine

from omni_journey.delivery import dispatch, load_providers
from omni_journey.delivery import ses as ses_module
from omni_journey.delivery import sms as sms_module
from omni_journey.delivery import whatsapp as whatsapp_module
from omni_journey.settings import Settings
from tests.integration.delivery.conftest import REGION, SENDER, _proxy, moto_url
from tests.reliability.faults import (
    SECRET,
    WebhookReceiver,
    fcm_account,
    settle,
    statuses,
    webhook_receiver,
)
from tests.support.aws_proxy import AwsProxy
from tests.support.fcm_standin import FcmStandIn, fcm_standin
from tests.support.outbox import T0, add_customer, add_message, simple_renderer

__all__ = ["_proxy", "moto_url"]  # the moto fixtures, shared with the delivery tests

CUSTOMERS = [f"c-{n:03d}" for n in range(8)]
CLEAN, THROTTLED, BROKEN, SLOW, REFUSED = CUSTOMERS[:4], *CUSTOMERS[4:]
TIMEOUT = 1.0  # seconds every client waits for an answer here
SLOWER = 2.5  # seconds the stand-in holds a slow call


@dataclass
class Stands:
    proxy: AwsProxy
    fcm: FcmStandIn
    hooks: WebhookReceiver


@dataclass(frozen=True)
class Case:
    """One provider: how customers are reached, which faults to inject, what arrived."""

    channel: str
    address: Callable[[str], str]
    inject: Callable[[Stands, Callable[[str], str]], None]
    delivered: Callable[[Stands, Callable[[str], str]], Counter[str]]  # customer -> times
    idempotent: bool = False


def _phone(customer: str) -> str:
    return f"+49151123450{customer[-2:]}"


def _by_customer(addresses: list[str], address: Callable[[str], str]) -> Counter[str]:
    owner = {address(c): c for c in CUSTOMERS}
    return Counter(owner[a] for a in addresses if a in owner)


def _aws_faults(
    service: str, throttle: tuple[int, str], permanent: tuple[int, str]
) -> Callable[[Stands, Callable[[str], str]], None]:
    def inject(stands: Stands, address: Callable[[str], str]) -> None:
        proxy = stands.proxy
        proxy.fail(service, *throttle, "Maximum sending rate exceeded.", times=2,
                   match=address(THROTTLED).encode())  # fmt: skip
        proxy.fail(service, 503, "ServiceUnavailable", "try later", times=2,
                   match=address(BROKEN).encode())  # fmt: skip
        proxy.slow(service, SLOWER, match=address(SLOW).encode())
        proxy.fail(service, *permanent, "refused for good", times=10,
                   match=address(REFUSED).encode())  # fmt: skip

    return inject


def _ses_delivered(stands: Stands, address: Callable[[str], str]) -> Counter[str]:
    sends = [body for service, body in stands.proxy.forwarded
             if service == "ses" and body.startswith(b"{")]  # fmt: skip  # not the set-up
    return _by_customer([json.loads(b)["Destination"]["ToAddresses"][0] for b in sends], address)


def _fcm_faults(stands: Stands, address: Callable[[str], str]) -> None:
    stands.fcm.fail("quota", match=address(THROTTLED))
    stands.fcm.fail("internal", times=5, match=address(BROKEN))  # the SDK retries 500 4 times
    stands.fcm.slow(SLOWER, match=address(SLOW))
    stands.fcm.fail("unregistered", times=10, match=address(REFUSED))


def _hook_faults(stands: Stands, address: Callable[[str], str]) -> None:
    stands.hooks.fail(429, match=THROTTLED)
    stands.hooks.fail(503, match=BROKEN)
    stands.hooks.slow(SLOWER, match=SLOW)
    stands.hooks.fail(410, times=10, match=REFUSED)


CASES = {
    "ses": Case(
        "email", lambda c: f"{c}@example.com",
        _aws_faults("ses", (429, "TooManyRequestsException"), (400, "MessageRejected")),
        _ses_delivered,
    ),
    "sms-voice-v2": Case(
        "sms", _phone,
        _aws_faults("sms-voice", (400, "ThrottlingException"), (400, "ValidationException")),
        lambda s, a: _by_customer([m["DestinationPhoneNumber"] for m in s.proxy.sms], a),
    ),
    "socialmessaging": Case(
        "whatsapp", _phone,
        _aws_faults("social-messaging", (429, "ThrottledRequestException"),
                    (400, "ValidationException")),
        lambda s, a: _by_customer([m["message"]["to"] for m in s.proxy.whatsapp], a),
    ),
    "fcm": Case(
        "push", lambda c: f"tok-{c}", _fcm_faults,
        lambda s, a: _by_customer([m["token"] for m in s.fcm.sent], a),
    ),
    "webhook": Case(
        "webhook", lambda c: c, _hook_faults,
        lambda s, a: Counter({c: 1 for c in CUSTOMERS if s.hooks.received[f"k-{c}"]}),
        idempotent=True,
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def fcm() -> Iterator[FcmStandIn]:
    with fcm_standin() as standin:
        yield standin


@pytest.fixture(scope="module")
def hooks() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def stands(_proxy: AwsProxy, moto_url: str, fcm: FcmStandIn, hooks: WebhookReceiver) -> Stands:
    with urllib.request.urlopen(
        urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    ):
        pass
    _proxy.reset()
    fcm.reset()
    hooks.received.clear()
    hooks.faults.clear()
    return Stands(_proxy, fcm, hooks)


def _short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every client waits TIMEOUT for an answer (the factories' own settings otherwise)."""
    for module in (ses_module, sms_module, whatsapp_module):
        monkeypatch.setattr(
            module, "Config", lambda **kw: Config(**{**kw, "read_timeout": TIMEOUT})
        )
    real = firebase_admin.initialize_app

    def initialize_app(credential: Any, options: dict[str, Any], name: str) -> Any:
        return real(credential, options={**options, "httpTimeout": TIMEOUT}, name=name)

    monkeypatch.setattr(firebase_admin, "initialize_app", initialize_app)  # as fcm.py calls it


def _settings(tmp_path: Path, stands: Stands, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in {
        "AWS_ENDPOINT_URL": stands.proxy.url, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    _short_waits(monkeypatch)
    return Settings(
        home=tmp_path / "home",
        secret_key=SECRET,
        unsubscribe_url="https://shop.example.com/unsubscribe",
        rate_limits="",
        send_concurrency=1,
        aws_max_attempts=2,
        email_provider="ses",
        email_from=SENDER,
        sms_provider="sms-voice-v2",
        sms_origination_identity="+15005550006",
        whatsapp_provider="socialmessaging",
        whatsapp_phone_number_id="phone-number-id-1",
        push_provider="fcm",
        fcm_credentials_path=fcm_account(stands.fcm, tmp_path, monkeypatch),
        webhook_provider="webhook",
        webhook_timeout_seconds=TIMEOUT,
    )


def _verify_sender(proxy: AwsProxy) -> None:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    session.client("ses", endpoint_url=proxy.url).verify_email_identity(EmailAddress=SENDER)


def _close(providers: dict[str, Any]) -> None:
    firebase_admin.delete_app(providers["push"].app)
    providers["webhook"].client.close()
    for channel in ("email", "sms", "whatsapp"):
        providers[channel].client.close()


@pytest.mark.parametrize("name", sorted(CASES))
def test_throttling_5xx_timeouts_and_refusals_end_with_each_message_sent_once_or_failed(
    name: str,
    sqlite_store: Engine,
    tmp_path: Path,
    stands: Stands,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    case = CASES[name]
    settings = _settings(tmp_path, stands, monkeypatch)
    _verify_sender(stands.proxy)
    providers = load_providers(settings)
    request.addfinalizer(lambda: _close(providers))
    for customer in CUSTOMERS:
        add_customer(sqlite_store, customer, email=case.address(customer) if
                     case.channel == "email" else None,
                     phone=_phone(customer), push_tokens=[f"tok-{customer}"])  # fmt: skip
        hook = {"url": f"{stands.hooks.url}/{customer}", "body": {"customer": customer}}
        add_message(sqlite_store, f"k-{customer}", customer, case.channel,
                    decision=hook if case.channel == "webhook" else None)  # fmt: skip
    case.inject(stands, case.address)

    def run(round_: int) -> Any:
        at = T0 + timedelta(hours=2 * round_)
        return dispatch(
            sqlite_store, providers, simple_renderer, now=at, settings=settings,
            worker_id=f"w{round_}", clock=lambda: 0.0, sleep=lambda _s: None,
        )  # fmt: skip

    first = run(0)
    after_first = statuses(sqlite_store)
    assert {after_first[f"k-{c}"][0] for c in CLEAN} == {"sent"}  # the run went on
    assert first.sent >= len(CLEAN)  # (FCM's quota pauses push: the rest waits a minute)
    for round_ in range(1, 6):  # again, later, without new faults, until nothing is due
        if not run(round_).claimed:
            break
    delivered = case.delivered(stands, case.address)
    figures = settle(sqlite_store, {f"k-{c}": n for c, n in delivered.items()})
    final = statuses(sqlite_store)
    for customer in (*CLEAN, THROTTLED, BROKEN):
        assert final[f"k-{customer}"][0] == "sent", final[f"k-{customer}"]
    status, error = final[f"k-{REFUSED}"]
    assert status == "failed" and error
    slow_status, slow_error = final[f"k-{SLOW}"]
    if case.idempotent:  # sent again under the same Idempotency-Key: acted on once
        assert slow_status == "sent"
    else:  # no answer and no idempotency key: never risk a second send
        assert slow_status == "failed" and "in_doubt" in (slow_error or "")
    assert figures.duplicates == 0 and figures.lost == 0
    print(f"\nfaults {name}: {figures}")
