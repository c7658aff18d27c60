"""One customer's life across channels, told through the real store, the file outbox and
a rejects file: the data an export must return and an erasure must remove."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from omni_journey.analytics.figures import ReportOptions, build_report, report_json
from omni_journey.delivery import dispatch
from omni_journey.delivery.file import FileProvider
from omni_journey.delivery.optout import handle_inbound_sms
from omni_journey.ingest.files import import_file
from omni_journey.runner.passes import JourneyRunner
from omni_journey.settings import Settings
from omni_journey.store.core import MESSAGES
from omni_journey.store.events import append_events
from omni_journey.store.tables import metadata
from tests.integration.engine.conftest import T0, Shop, event, journey, profile
from tests.support.outbox import simple_renderer

EMAIL = "ana.lopez@example.com"
PHONE = "+4915112345678"
NAMES = ("Anabel", "Lopez-Quist")
OTHER_EMAIL = "bob@example.com"
NEEDLES = (EMAIL, PHONE, *NAMES, "anon-ana-1", "ana-crm-7")

CART = journey(
    {
        "key": "cart_abandonment",
        "trigger": {"event": "product.added"},
        "goal": {"event": "order.completed", "within": "7d"},
        "steps": [
            {"id": "wait", "type": "delay", "for": "1h"},
            {"id": "remind", "type": "send", "message": "cart_reminder", "channel": "email"},
            {"id": "linger", "type": "delay", "for": "1h"},
        ],
    }
)
LATER = T0 + timedelta(hours=3)


def ana(**extra: Any) -> dict[str, Any]:
    return profile(
        "ana-crm-7", email=EMAIL, phone=PHONE, consent={"email": True, "sms": True},
        attributes={"first_name": NAMES[0], "last_name": NAMES[1], "tier": "gold"}, **extra,
    )  # fmt: skip


def dispatch_all(engine: Engine, settings: Settings, now: Any) -> None:
    provider = FileProvider(settings.outbox_dir, sender=settings.email_from)
    providers = {channel: provider for channel in ("email", "sms", "push", "whatsapp")}
    dispatch(engine, providers, simple_renderer, settings=settings, now=now, worker_id="w")


def tell(shop: Shop) -> None:
    """Ana browses anonymously, is identified (the anonymous customer merges into her),
    texts STOP, adds to cart with a gift note naming her, gets a reminder through the
    file outbox, clicks it, orders; Bob does the same, minus STOP; an import rejects a
    line about each of them."""
    before = T0 - timedelta(minutes=5)
    browsing = {"id": "v-1", "name": "product.viewed", "identities": {"anonymous_id": "anon-ana-1"},
                "at": before.isoformat(), "properties": {"sku": "S-1"}}  # fmt: skip
    shop.events([browsing], now=before)
    shop.profiles([ana(anonymous_id="anon-ana-1"), profile("bob", email=OTHER_EMAIL)])
    handle_inbound_sms(shop.engine, phone=PHONE, text="STOP", now=T0, inbound_id="in-1")
    note = f"For {NAMES[0]} {NAMES[1]}, {PHONE}"
    shop.events([event("add-1", "product.added", "ana-crm-7", T0, sku="S-1", gift_note=note),
                 event("add-2", "product.added", "bob", T0, sku="S-2")])  # fmt: skip
    runner = JourneyRunner(shop.engine, {CART.key: CART}, {})
    runner.run(T0 + timedelta(minutes=2))
    runner.run(T0 + timedelta(hours=1, minutes=1))
    dispatch_all(shop.engine, shop.settings, T0 + timedelta(hours=1, minutes=2))
    emails = {"ana-crm-7": EMAIL, "bob": OTHER_EMAIL}
    with shop.engine.begin() as connection:
        sent = connection.execute(select(MESSAGES.c.id, MESSAGES.c.customer_id)).all()
        append_events(connection, [
            {"event_id": f"click-{mid}", "name": "message.clicked", "customer_id": cid,
             "at": T0 + timedelta(hours=2), "received_at": T0 + timedelta(hours=2),
             "properties": {"channel": "email", "message_id": str(mid), "url": f"https://x/?e={emails[cid]}"}}
            for mid, cid in sent
        ] + [{"event_id": "message.replied:sms:in-2", "name": "message.replied",
              "customer_id": "ana-crm-7", "at": T0 + timedelta(hours=2),
              "received_at": T0 + timedelta(hours=2),
              "properties": {"channel": "sms", "inbound_id": "in-2",
                             "text": f"Thanks! {NAMES[0]} {NAMES[1]}, {EMAIL}"}}])  # fmt: skip
    shop.events([event("o-1", "order.completed", "ana-crm-7", T0 + timedelta(hours=2), total=20),
                 event("o-2", "order.completed", "bob", T0 + timedelta(hours=2), total=30)],
                now=T0 + timedelta(hours=2))  # fmt: skip
    runner.run(T0 + timedelta(hours=2, minutes=30))
    lines = [
        json.dumps({"customer_id": "ana-crm-7", "email": EMAIL, "timezone": "Mars/Olympus"}),
        json.dumps({"customer_id": "bob", "email": OTHER_EMAIL, "timezone": "Mars/Olympus"}),
        f'{{"customer_id": "x", "name": "{NAMES[0]}", "phone": "0151 12345678", "broken"',
    ]
    source = shop.settings.home / "crm.jsonl"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text("\n".join(lines) + "\n")
    result = import_file(shop.engine, source, "customers", settings=shop.settings, now=LATER)
    assert result.rejected == 3, result
    source.unlink()


def report(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        built = build_report(connection, now=LATER, options=ReportOptions(bootstrap=20))
    data = report_json(built)
    data.pop("generated_at")
    return data


def found_in_store(engine: Engine, needles: tuple[str, ...] = NEEDLES) -> list[tuple[str, str]]:
    """(table, needle) for every needle found in any column of any row of any table."""
    found = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                text = json.dumps([str(v) if not isinstance(v, dict | list) else v for v in row],
                                  ensure_ascii=False, default=str).lower()  # fmt: skip
                found += [(table.name, n) for n in needles if n.lower() in text]
    return sorted(set(found))


def found_in_files(root: Path, needles: tuple[str, ...] = NEEDLES) -> list[tuple[str, str]]:
    """(file, needle) for every needle in any file under ``root``."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", "replace").lower()
        found += [(str(path.relative_to(root)), n) for n in needles if n.lower() in text]
    return found
