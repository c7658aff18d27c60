"""Every route of the collector, any method, headers and body: never a 5xx, never a
partial write.

The routes are read from :func:`omni_journey.collector.app.create_app` itself, so a
route added later fails :func:`test_every_route_is_fuzzed` until it is fuzzed here too.
Each request goes to a real ``uvicorn`` server on a real SQLite file: a Segment call
(and its short forms), the unsubscribe and click links (tokens junk, truncated or
tampered), the SNS endpoints (junk, or notifications signed with a throwaway key whose
certificate the server trusts, carrying arbitrary messages), the console with and
without its credential, ``/health``. Methods, content types, ``Content-Encoding``
(gzip of the body, gzip of junk, a declared but absent encoding) and write keys vary.
The answer must be below 500 (the store is up, so not even 503), and a refused request
(4xx) must leave every table as it was.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from starlette.routing import Mount, Route

from omni_journey.collector.app import create_app
from omni_journey.links import LinkSigner, signing_keys
from omni_journey.settings import Settings
from omni_journey.store import open_store
from tests.integration.test_collector import NOW, serving
from tests.reliability.fuzz import FUZZ, fuzz_timeout
from tests.reliability.test_bad_input import _BODIES, _JSON
from tests.support.inbound import TOPIC, SnsSigner

pytestmark = fuzz_timeout(2.0)

WRITE_KEY = "fuzz-write-key"
CONSOLE_TOKEN = "fuzz-console-token"
ROOT = Path(__file__).resolve().parents[2]
_TABLES = (
    "events",
    "customers",
    "identities",
    "consents",
    "consent_changes",
    "suppressions",
    "messages",
)


def _settings() -> Settings:
    return Settings(
        write_keys=WRITE_KEY,
        secret_key="fuzz-secret-key-0123456789abcdef",
        console_token=CONSOLE_TOKEN,
        feedback_topic_arns=TOPIC,
        collector_rate_limit=1_000_000,
        collector_rate_burst=1_000_000,
        max_body_bytes=64 * 1024,
        project_dir=ROOT,
    )


def _paths() -> list[str]:
    """Every route of the collector, with its parameters filled in (``{x}``)."""
    found = []
    app = create_app(open_store("sqlite://"), _settings(), lambda: NOW)
    for route in app.routes:
        if isinstance(route, Route):
            found.append(route.path)
        elif isinstance(route, Mount):  # the console: a guard in front of its own app
            inner: Any = getattr(route.app, "app", route.app)
            found += [route.path + sub.path for sub in inner.routes if isinstance(sub, Route)]
    return sorted(found)


# every route above, and how it is fuzzed: a template path whose {...} take values
FUZZED = {
    "/health": "/health",
    **{
        path: path
        for path in (
            "/v1/track",
            "/v1/t",
            "/v1/identify",
            "/v1/i",
            "/v1/page",
            "/v1/p",
            "/v1/screen",
            "/v1/s",
            "/v1/alias",
            "/v1/a",
            "/v1/batch",
            "/v1/b",
            "/v1/import",
        )
    },
    "/l/u/{token}": "/l/u/{token}",
    "/l/c/{token}": "/l/c/{token}",
    "/feedback/ses": "/feedback/ses",
    "/inbound/sms": "/inbound/sms",
    "/inbound/whatsapp": "/inbound/whatsapp",
    "/inbound/email": "/inbound/email",
    "/console/": "/console/",
    "/console/customers/{rest:path}": "/console/customers/{text}",
    "/console/journeys/{key}": "/console/journeys/{text}",
    "/console/journeys/{key}/customers": "/console/journeys/{text}/customers",
}


def test_every_route_is_fuzzed() -> None:
    assert _paths() == sorted(FUZZED)


@pytest.fixture(scope="module")
def signer() -> SnsSigner:
    return SnsSigner.create()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, signer: SnsSigner
) -> Iterator[tuple[str, Engine]]:
    engine = open_store(f"sqlite:///{tmp_path_factory.mktemp('http') / 'omni.db'}")
    options: dict[str, Any] = {
        "sns_verifier": signer.verifier(),
        "confirm_subscription": lambda url: None,
    }
    with serving(engine, _settings(), **options) as url:
        yield url, engine
    engine.dispose()


def _link(kind: str, draw: st.DrawFn) -> str:
    """A real signed link's token, or one tampered with, truncated or junk."""
    signer = LinkSigner(signing_keys(_settings()), "http://x")
    link = (
        signer.unsubscribe("c-fuzz", "email", "m-fuzz")
        if kind == "u"
        else signer.click("https://shop.example.com/", "c-fuzz", "email", "m-fuzz")
    )
    token = link.rsplit("/", 1)[1]
    how = draw(st.sampled_from(["real", "flip", "cut", "junk", "long"]))
    if how == "flip":
        at = draw(st.integers(0, len(token) - 1))
        token = token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]
    elif how == "cut":
        token = token[: draw(st.integers(0, len(token) - 1))]
    elif how == "junk":
        token = quote(draw(st.text(max_size=40)), safe="") or "x"
    elif how == "long":
        token = "A" * 20_000
    return token


@st.composite
def _request(draw: st.DrawFn, signer: SnsSigner) -> dict[str, Any]:
    template = FUZZED[draw(st.sampled_from(sorted(FUZZED)))]
    path = template.format(
        token=_link(template[3], draw) if "{token}" in template else "",
        text=draw(st.sampled_from(["c-1", "welcome", "%00", "..%2F..%2Fetc", "ü" * 3, "x" * 3000])),
    )
    method = draw(
        st.sampled_from(
            ["GET", "POST", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]
        )
    )
    body: bytes = draw(_BODIES)
    if path.startswith(("/feedback", "/inbound")) and draw(st.booleans()):
        kind = draw(st.sampled_from(["Notification", "SubscriptionConfirmation", "Junk"]))
        message = json.dumps(draw(_JSON)) if draw(st.booleans()) else draw(st.text(max_size=60))
        if kind == "Notification":
            envelope = signer.notification(
                json.loads(message) if message.startswith("{") else {"notificationType": message}
            )
        elif kind == "Junk":  # a type SNS never sends: nothing to sign it with
            envelope = {**signer.notification({}), "Type": kind, "Message": message}
        else:
            envelope = signer.sign(
                Type=kind,
                Token="t",
                Message=message,
                SubscribeURL="https://sns.us-east-1.amazonaws.com/?Action=x",
            )
        body = json.dumps(envelope).encode()
    headers: dict[str, str | bytes] = {}
    content_type = draw(
        st.sampled_from(
            [
                "application/json",
                "application/json; charset=latin-1",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "",
                "\u00ff/\u00ff",
            ]
        )
    )
    if content_type:
        headers["content-type"] = content_type.encode()  # sent as UTF-8 bytes
    encoding = draw(st.sampled_from(["", "", "gzip", "gzip-junk", "deflate", "br", "gzip, gzip"]))
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "gzip-junk":
        body, encoding = b"\x1f\x8b" + body, "gzip"
    if encoding:
        headers["content-encoding"] = encoding
    auth = draw(st.sampled_from(["write-key", "wrong", "none", "console", "console-wrong"]))
    user, password = {
        "write-key": (WRITE_KEY, ""),
        "wrong": ("nope", ""),
        "console": ("", CONSOLE_TOKEN),
        "console-wrong": ("", "x"),
    }.get(auth, ("", ""))
    if user or password:
        credential = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["authorization"] = f"Basic {credential}"
    return {"method": method, "path": path, "headers": headers, "content": body}


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in _TABLES
        }


@FUZZ
@given(data=st.data())
def test_no_request_to_any_route_gets_a_server_error_or_writes_when_refused(
    server: tuple[str, Engine], signer: SnsSigner, data: st.DataObject
) -> None:
    url, engine = server
    request = data.draw(_request(signer))
    before = _counts(engine)
    content = None if request["method"] in ("GET", "HEAD") else request["content"]
    response = httpx.request(
        request["method"],
        url + request["path"],
        headers=request["headers"],
        content=content,
        timeout=30,
        follow_redirects=False,
    )
    assert response.status_code < 500, (request["path"], response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert _counts(engine) == before, (request["path"], response.status_code, response.text)
