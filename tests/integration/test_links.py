"""Signed links on the collector (real uvicorn, real SQLite and PostgreSQL): one-click
unsubscribe (RFC 8058) and tracked clicks, from a rendered email to the dispatcher
refusing to send again."""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select, update

from omni_journey.delivery import dispatch
from omni_journey.links import LinkSigner
from omni_journey.render import RenderContext, RenderedEmail, customer_profile, render_message
from omni_journey.service.pipeline import project_renderer
from omni_journey.settings import Settings
from omni_journey.store import create_store_engine
from omni_journey.store.tables import Consent, Customer, Event, Suppression
from tests.integration.test_collector import NOW, serving
from tests.support.outbox import RecordingProvider, add_customer, add_message, messages

ROOT = Path(__file__).resolve().parents[2]
SECRET = "links-test-secret"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}

_CONSENTS = Consent.__table__  # type: ignore[attr-defined]
_EVENTS = Event.__table__  # type: ignore[attr-defined]
_SUPPRESSIONS = Suppression.__table__  # type: ignore[attr-defined]


@dataclass
class Links:
    url: str
    engine: Engine
    http: httpx.Client
    settings: Settings  # what rendering uses: same secret, links pointing at this server

    @property
    def signer(self) -> LinkSigner:
        return LinkSigner.from_settings(self.settings)

    def consents(self) -> dict[tuple[str, str], Any]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(_CONSENTS)).all()
        return {(r.customer_id, r.channel): r for r in rows}

    def suppressions(self) -> list[tuple[str, str, str]]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(_SUPPRESSIONS)).all()
        return sorted((r.channel, r.address, r.reason) for r in rows)

    def events(self, name: str | None = None) -> list[Any]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(_EVENTS).order_by(_EVENTS.c.seq)).all()
        return [r for r in rows if name is None or r.name == name]


def _collector_settings() -> Settings:
    return Settings(secret_key=SecretStr(SECRET), write_keys="wk")


@pytest.fixture
def links(store: Engine) -> Iterator[Links]:
    with serving(store, _collector_settings()) as url, httpx.Client(timeout=30) as http:
        settings = Settings(
            secret_key=SecretStr(SECRET), link_base_url=f"{url}/l", project_dir=ROOT
        )
        yield Links(url, store, http, settings)


def _render_welcome(links: Links, customer_id: str = "c-1") -> RenderedEmail:
    context = RenderContext(customer_profile(customer_id, {"first_name": "Ana"}))
    email = render_message(ROOT / "templates", "welcome", "email", context, settings=links.settings)
    assert isinstance(email, RenderedEmail)
    return email


# --- one-click unsubscribe ----------------------------------------------------------


def test_rendered_unsubscribe_link_one_click_then_the_dispatcher_refuses(links: Links) -> None:
    add_customer(links.engine, "c-1", email="ana@example.com", attributes={"first_name": "Ana"})
    add_customer(links.engine, "c-2", email="bob@example.com", attributes={"first_name": "Bob"})
    email = _render_welcome(links)
    url = email.unsubscribe_url
    assert url.startswith(f"{links.url}/l/u/") and url in email.html

    page = links.http.get(url)  # what a person (or a link scanner) sees first
    assert page.status_code == 200
    assert '<form method="post">' in page.text and "<button" in page.text
    assert links.consents()[("c-1", "email")].granted is True  # a GET changes nothing
    assert links.events() == [] and links.suppressions() == []

    # RFC 8058: the mail client POSTs List-Unsubscribe=One-Click, form-encoded
    response = links.http.post(url, data=ONE_CLICK)
    assert response.status_code == 200, response.text
    assert "unsubscribed" in response.text
    consent = links.consents()[("c-1", "email")]
    assert (consent.granted, consent.source) == (False, "unsubscribe")
    assert links.suppressions() == [("email", "ana@example.com", "unsubscribe")]
    [event] = links.events("message.unsubscribed")
    assert (event.customer_id, event.at) == ("c-1", NOW)
    assert event.properties == {"channel": "email", "message": "welcome", "source": "link"}
    assert links.consents()[("c-2", "email")].granted is True  # nobody else

    again = links.http.post(url, data=ONE_CLICK)  # idempotent
    assert again.status_code == 200
    assert len(links.events()) == 1
    assert links.suppressions() == [("email", "ana@example.com", "unsubscribe")]
    assert links.consents()[("c-1", "email")].updated_at == consent.updated_at

    add_message(links.engine, "welcome:c-1", "c-1", "email")
    add_message(links.engine, "welcome:c-2", "c-2", "email")
    provider = RecordingProvider()
    report = dispatch(
        links.engine,
        {"email": provider},
        project_renderer(links.settings),
        now=NOW,
        settings=links.settings,
        worker_id="w1",
        clock=lambda: 0.0,
        sleep=lambda _s: None,
    )
    assert (report.sent, report.suppressed) == (1, 1)
    assert [m.customer_id for m in provider.sent] == ["c-2"]
    refused = messages(links.engine)["welcome:c-1"]
    assert (refused.status, refused.error) == ("suppressed", "no_consent")
    # and the email that did go out carries its own one-click link
    assert provider.sent[0].unsubscribe_url == _render_welcome(links, "c-2").unsubscribe_url


def test_the_confirmation_page_leaks_nothing_and_is_not_cached(links: Links) -> None:
    add_customer(links.engine, "c-1", email="ana@example.com")
    page = links.http.get(links.signer.unsubscribe("c-1", "email", "welcome"))
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "form-action 'self'" in page.headers["content-security-policy"]
    assert page.headers["content-type"].startswith("text/html")
    assert "c-1" not in page.text and "ana@example.com" not in page.text
    assert links.http.head(links.signer.unsubscribe("c-1", "email", "welcome")).status_code == 200
    assert links.events() == []


def test_an_sms_link_withdraws_sms_consent_and_suppresses_the_number(links: Links) -> None:
    add_customer(links.engine, "c-1", email="ana@example.com", phone="+4915112345678")
    response = links.http.post(links.signer.unsubscribe("c-1", "sms", "cart_reminder"))
    assert response.status_code == 200  # no body at all is fine too: the signature decides
    consents = links.consents()
    assert (consents[("c-1", "sms")].granted, consents[("c-1", "email")].granted) == (False, True)
    assert links.suppressions() == [("sms", "+4915112345678", "unsubscribe")]


def test_a_merged_customer_unsubscribes_the_survivor(links: Links) -> None:
    add_customer(links.engine, "c-old", email="old@example.com")
    add_customer(links.engine, "c-new", email="new@example.com")
    with links.engine.begin() as connection:
        connection.execute(
            update(Customer.__table__)  # type: ignore[attr-defined]
            .where(Customer.__table__.c.id == "c-old")  # type: ignore[attr-defined]
            .values(merged_into="c-new")
        )
    response = links.http.post(links.signer.unsubscribe("c-old", "email", "m"), data=ONE_CLICK)
    assert response.status_code == 200
    assert links.consents()[("c-new", "email")].granted is False
    assert links.suppressions() == [("email", "new@example.com", "unsubscribe")]
    assert [e.customer_id for e in links.events()] == ["c-new"]


def test_an_unknown_customer_still_records_the_wish(links: Links) -> None:
    response = links.http.post(links.signer.unsubscribe("c-gone", "email", "m"), data=ONE_CLICK)
    assert response.status_code == 200
    consent = links.consents()[("c-gone", "email")]
    assert (consent.granted, consent.source) == (False, "unsubscribe")
    assert links.suppressions() == []  # no address known
    assert [e.name for e in links.events()] == ["message.unsubscribed"]


def _b64(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _bad_tokens(good: LinkSigner) -> dict[str, str]:
    link = good.unsubscribe("c-1", "email", "welcome")
    token = link.rsplit("/", 1)[1]
    payload, signature = token.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    return {
        "flipped-signature": f"{payload}.{flipped}",
        "other-customer": _b64([1, "c-2", "email", "welcome", None]) + f".{signature}",
        "other-secret": LinkSigner("another", "https://x").unsubscribe("c-1", "email", "w")
        .rsplit("/", 1)[1],
        "click-token": good.click("https://a.example", "c-1", "email", "w").rsplit("/", 1)[1],
        "no-signature": payload,
        "not-ascii": quote(f"{payload}é.{signature}"),
        "huge": "A" * 9000 + "." + signature,
        "dots": f"{payload}.{signature}.x",
    }  # fmt: skip


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_bad_unsubscribe_token_is_400_with_no_detail(links: Links, method: str) -> None:
    add_customer(links.engine, "c-1", email="ana@example.com")
    add_customer(links.engine, "c-2", email="bob@example.com")
    for name, token in _bad_tokens(links.signer).items():
        response = links.http.request(method, f"{links.url}/l/u/{token}", data=ONE_CLICK)
        assert (name, response.status_code) == (name, 400)
        for leak in ("signature", "malformed", "c-1", "c-2", "ana@", "Traceback"):
            assert leak not in response.text, (name, leak)
    assert {k: c.granted for k, c in links.consents().items()} == {
        (c, ch): True for c in ("c-1", "c-2") for ch in ("email", "sms", "push", "whatsapp")
    }
    assert links.events() == [] and links.suppressions() == []


# --- clicks ---------------------------------------------------------------------------


def test_a_click_is_recorded_then_redirected(links: Links) -> None:
    add_customer(links.engine, "c-1", email="ana@example.com")
    email = _render_welcome(links)
    [click] = set(re.findall(rf'href="({re.escape(links.url)}/l/c/[^"]+)"', email.html))

    first = links.http.get(click)
    second = links.http.get(click)
    checked = links.http.head(click)  # link checkers: redirected, not counted

    for response in (first, second, checked):
        assert response.status_code == 302
        assert response.headers["location"] == "https://shop.example.com/?utm_campaign=welcome"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
    events = links.events()
    assert [(e.name, e.customer_id) for e in events] == [("message.clicked", "c-1")] * 2
    assert events[0].properties == {
        "channel": "email",
        "message": "welcome",
        "url": "https://shop.example.com/?utm_campaign=welcome",
        "source": "link",
    }
    assert events[0].event_id != events[1].event_id


def test_a_tampered_click_is_400_never_an_open_redirect(links: Links) -> None:
    good = links.signer.click("https://shop.example.com/p/1", "c-1", "email", "m")
    head, token = good.rsplit("/", 1)
    signature = token.split(".")[1]
    evil_payload = _b64([1, "c-1", "email", "m", "https://evil.example.net/"])
    forged = LinkSigner("guessed-secret", "https://x").click(
        "https://evil.example.net/", "c", "e", "m"
    )
    for link in (
        f"{head}/{evil_payload}.{signature}",
        f"{links.url}/l/c/{forged.rsplit('/', 1)[1]}",
        f"{links.url}/l/c/{links.signer.unsubscribe('c-1', 'email', 'm').rsplit('/', 1)[1]}",
    ):
        response = links.http.get(link)
        assert response.status_code == 400, link
        assert "location" not in response.headers
        assert "evil" not in response.text
    # a query string never chooses the target
    response = links.http.get(f"{good}?url=https://evil.example.net/&next=//evil.example.net")
    assert response.headers["location"] == "https://shop.example.com/p/1"
    assert [e.name for e in links.events()] == ["message.clicked"]


# --- operations -----------------------------------------------------------------------


def test_store_down_unsubscribe_is_503_but_a_click_still_redirects() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    engine = create_store_engine(f"postgresql+psycopg://omni@127.0.0.1:{dead_port}/none")
    signer = LinkSigner(SECRET, "https://x")
    try:
        with serving(engine, _collector_settings()) as url, httpx.Client(timeout=30) as http:
            token = signer.unsubscribe("c-1", "email", "m").rsplit("/", 1)[1]
            unsubscribe = http.post(f"{url}/l/u/{token}", data=ONE_CLICK)
            target = "https://shop.example.com/p/1"
            token = signer.click(target, "c-1", "email", "m").rsplit("/", 1)[1]
            click = http.get(f"{url}/l/c/{token}")
    finally:
        engine.dispose()
    assert unsubscribe.status_code == 503  # never "done" unless it is stored
    assert unsubscribe.headers["retry-after"] == "60"
    assert (click.status_code, click.headers["location"]) == (302, target)


def test_logs_carry_no_token_customer_or_address(
    links: Links, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    add_customer(links.engine, "c-1", email="ana@example.com")
    unsubscribe = links.signer.unsubscribe("c-1", "email", "welcome")
    click = links.signer.click("https://shop.example.com/p/1", "c-1", "email", "welcome")
    links.http.get(unsubscribe)
    links.http.post(unsubscribe, data=ONE_CLICK)
    links.http.get(click)
    links.http.get(unsubscribe + "x")  # refused
    server_side = [r for r in caplog.records if r.name.startswith(("omni_journey", "uvicorn"))]
    logged = "\n".join(r.getMessage() for r in server_side)  # (httpx logs the test's URLs)
    assert "unsubscribed via link" in logged
    assert '"POST /l/u/[redacted] HTTP/1.1" 200' in logged  # uvicorn's access log
    tokens = [link.rsplit("/", 1)[1] for link in (unsubscribe, click)]
    for secret in ("c-1", "ana@example.com", *tokens, *(t.split(".")[0] for t in tokens)):
        assert secret not in logged
