"""``omni-journey preview`` run as a user runs it, against a real SQLite store."""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from omni_journey.render import LinkSigner
from omni_journey.store import open_store
from omni_journey.store.tables import Customer, Event

ROOT = Path(__file__).resolve().parents[2]
SECRET = "preview-test-secret"
NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A project (the shipped templates) and a store with two customers and an order."""
    project = tmp_path / "shop"
    shutil.copytree(ROOT / "templates", project / "templates")
    home = tmp_path / "home"
    engine = open_store(f"sqlite:///{home / 'omni.db'}")
    with Session(engine) as session:
        session.add(
            Customer(
                id="c-42",
                email="ana@example.com",
                phone="+4915112345678",
                locale="de-AT",
                timezone="Europe/Berlin",
                attributes={"first_name": "<b>Ana</b>", "tier": "gold", "push_token": "tok-1"},
                created_at=NOW,
                updated_at=NOW,
            )
        )
        session.add(Customer(id="c-old", merged_into="c-42", created_at=NOW, updated_at=NOW))
        session.add(
            Event(
                event_id="evt-order-1",
                name="order.completed",
                customer_id="c-42",
                at=NOW,
                received_at=NOW,
                properties={
                    "order_id": "o-9001",
                    "total": 31.5,
                    "currency": "EUR",
                    "products": [{"sku": "BEANS-1", "name": "House Beans", "quantity": 2}],
                },
            )
        )
        session.commit()
    engine.dispose()
    return tmp_path


def _preview(shop: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    environment.update(
        OMNI_HOME=str(shop / "home"),
        OMNI_PROJECT_DIR=str(shop / "shop"),
        OMNI_SECRET_KEY=SECRET,
    )
    return subprocess.run(
        [sys.executable, "-m", "omni_journey", "preview", *args],
        cwd=shop,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _section(stdout: str, channel: str) -> str:
    return stdout.split(f"== {channel}\n", 1)[1].split("\n== ", 1)[0]


def test_preview_renders_every_channel_for_a_real_customer(shop: Path) -> None:
    result = _preview(shop, "welcome", "--customer", "c-42")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # the customer's locale de-AT falls back to the German content
    assert "subject:   Willkommen, <b>Ana</b>!" in out

    previews = sorted((shop / "home" / "previews").iterdir())
    assert [p.suffix for p in previews] == [".eml", ".html"]
    html = previews[1].read_text()
    assert "&lt;b&gt;Ana&lt;/b&gt;" in html and "<b>Ana</b>" not in html
    assert 'style="' in html  # CSS inlined
    assert str(previews[1]) in out and "c-42" not in previews[1].name

    mime = email.message_from_bytes(previews[0].read_bytes(), policy=email.policy.default)
    assert mime["To"] == "ana@example.com"
    assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [part.get_content_type() for part in mime.iter_parts()] == [
        "text/plain",
        "text/html",
    ]

    sms = _section(out, "sms")
    assert sms.startswith("GSM-7, 2 segment(s), ")
    assert "Willkommen bei Example Shop, <b>Ana</b>!" in sms
    link = next(word for word in sms.split() if word.startswith("http"))
    claims = LinkSigner(SECRET, "https://x.example").verify(link)
    assert (claims.customer_id, claims.channel, claims.message) == ("c-42", "sms", "welcome")

    push = _section(out, "push")
    size_line, body = push.split("\n", 1)
    payload = json.loads(body)
    assert payload["notification"]["title"] == "Willkommen im Shop"
    compact = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert size_line == f"FCM payload: {len(compact)} bytes (limit 4096)"
    assert "tok-1" not in out  # no push token anywhere

    whatsapp = _section(out, "whatsapp")
    assert "template welcome_v1 (de)" in whatsapp


def test_preview_with_a_stored_event_a_channel_and_a_locale(shop: Path) -> None:
    result = _preview(
        shop,
        "order_thanks",
        "--customer",
        "c-42",
        "--event-id",
        "evt-order-1",
        "--channel",
        "sms",
        "--locale",
        "en",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("== sms\n")
    assert "== email" not in result.stdout
    assert "Thank you for your order o-9001, <b>Ana</b>!" in result.stdout


def test_a_merged_customer_previews_as_the_survivor(shop: Path) -> None:
    result = _preview(shop, "welcome", "--customer", "c-old", "--channel", "push")
    assert result.returncode == 0, result.stderr
    assert "customer c-old was merged into c-42" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("welcome", "--customer", "c-nobody"), 'error: there is no customer "c-nobody"'),
        (("welcom", "--customer", "c-42"), 'hint: did you mean "welcome"?'),
        (
            ("order_thanks", "--customer", "c-42", "--event-id", "evt-x"),
            'error: customer "c-42" has no event "evt-x"',
        ),
    ],
)
def test_unknown_customer_message_or_event_exit_1(
    shop: Path, args: tuple[str, ...], message: str
) -> None:
    result = _preview(shop, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert not (shop / "home" / "previews").exists()


def test_a_template_that_fails_exits_1_with_the_location(shop: Path) -> None:
    sms = shop / "shop" / "templates" / "welcome" / "sms.txt"
    sms.write_text("Hi {{ customer.nickname }}\n")
    result = _preview(shop, "welcome", "--customer", "c-42", "--locale", "en", "--channel", "sms")
    assert result.returncode == 1
    assert "templates/welcome/sms.txt:1:1: error[undefined-variable]" in result.stderr
