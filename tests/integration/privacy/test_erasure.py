"""Erasure through the real store (SQLite file and PostgreSQL), the file outbox and a
rejects file: after it, the customer's email, phone and name are nowhere the product
writes, the report adds up exactly as before, and doing it again changes nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from omni_journey.delivery.optout import handle_inbound_sms
from omni_journey.history import find_customer, load_history
from omni_journey.privacy import KEEP_PROPERTIES, erase_customer, export_customer
from omni_journey.runner.passes import JourneyRunner
from omni_journey.settings import Settings
from omni_journey.store.core import (
    CONSENT_CHANGES,
    ENROLLMENTS,
    ERASURES,
    EVENTS,
    MESSAGES,
    SUPPRESSIONS,
)
from tests.integration.engine.conftest import Shop, event, journey, profile
from tests.integration.privacy.story import (
    CART,
    EMAIL,
    LATER,
    NEEDLES,
    OTHER_EMAIL,
    PHONE,
    dispatch_all,
    found_in_files,
    found_in_store,
    report,
    tell,
)
from tests.support.outbox import add_customer

NOW = LATER + timedelta(minutes=5)


def test_erasure_leaves_no_personal_data_and_the_report_adds_up(shop: Shop) -> None:
    tell(shop)
    home = shop.settings.home
    # the story did write the data everywhere the check looks
    assert {t for t, _ in found_in_store(shop.engine)} >= {
        "customers", "identities", "events", "suppressions", "messages", "journey_log"
    }  # fmt: skip
    assert {f.split("/")[0] for f, _ in found_in_files(home)} >= {"outbox", "rejects"}
    before = report(shop.engine)
    assert before["delivery"] and before["journeys"][0]["funnel"]

    result = erase_customer(shop.engine, shop.settings, PHONE, now=NOW)

    assert result.erased and result.erasure_id
    assert found_in_store(shop.engine) == []
    assert found_in_files(home) == []
    assert report(shop.engine) == before
    counts = result.counts
    assert counts["customers"] == 2  # Ana and the anonymous visitor merged into her
    assert counts["outbox_files"] == 1 and counts["rejects_lines"] == 2
    assert counts["suppressions"] == 1 and counts["consent_changes"] >= 3
    with shop.engine.connect() as connection:
        [record] = connection.execute(select(ERASURES)).all()
        assert record.id == result.erasure_id and record.finished_at == NOW
        assert record.counts == counts and len(record.tombstones) == 2
        # Bob is untouched
        bob = find_customer(connection, OTHER_EMAIL, "DE")
        assert bob is not None and bob.id == "bob"
        assert load_history(connection, bob).consent["email"]["granted"] is True
        assert find_customer(connection, "anon-ana-1", "DE") is None
        # her rows stay, under opaque ids, counted but anonymous
        tombstones = set(record.tombstones)
        kept = connection.execute(select(EVENTS.c.customer_id, EVENTS.c.properties)).all()
        assert {c for c, _ in kept} - {"bob"} <= tombstones
        assert all(set(p) <= KEEP_PROPERTIES for c, p in kept if c in tombstones)
        assert {"channel", "message_id"} in [set(p) for c, p in kept if c in tombstones]
        ended = connection.execute(
            select(ENROLLMENTS.c.state).where(ENROLLMENTS.c.customer_id.in_(tombstones))
        ).scalars()
        assert set(ended) == {"completed"}
        assert (
            connection.execute(
                select(CONSENT_CHANGES).where(CONSENT_CHANGES.c.customer_id.in_(tombstones))
            ).all()
            == []
        )
    assert (home / "rejects").is_dir() and found_in_files(home, (OTHER_EMAIL,))  # Bob's line

    again = erase_customer(shop.engine, shop.settings, PHONE, now=NOW + timedelta(minutes=1))
    assert not again.erased and again.counts == {}
    assert report(shop.engine) == before
    with shop.engine.connect() as connection:
        assert len(connection.execute(select(ERASURES)).all()) == 1


def test_queued_messages_are_cancelled_not_sent(shop: Shop) -> None:
    tell(shop)
    later = NOW + timedelta(days=1)
    again = journey({**CART.model_dump(mode="json", by_alias=True, exclude_none=True),
                     "key": "cart_again"})  # fmt: skip
    shop.events([event("add-9", "product.added", "ana-crm-7", later, sku="S-9")], now=later)
    runner = JourneyRunner(shop.engine, {again.key: again}, {})
    runner.run(later + timedelta(minutes=1))
    runner.run(later + timedelta(hours=1, minutes=1))
    with shop.engine.connect() as connection:
        [queued] = (
            connection.execute(select(MESSAGES.c.id).where(MESSAGES.c.status == "pending"))
            .scalars()
            .all()
        )

    erased_at = later + timedelta(hours=1, minutes=2)
    result = erase_customer(shop.engine, shop.settings, EMAIL, now=erased_at)
    assert result.counts["messages_cancelled"] == 1
    dispatch_all(shop.engine, shop.settings, later + timedelta(hours=2))
    with shop.engine.connect() as connection:
        row = connection.execute(select(MESSAGES).where(MESSAGES.c.id == queued)).one()
        [active] = connection.execute(
            select(ENROLLMENTS).where(ENROLLMENTS.c.journey_key == "cart_again")
        ).all()
    assert (row.status, row.error, row.sent_at) == ("cancelled", "erased", None)
    assert (active.state, active.end_reason) == ("exited", "erased")
    assert found_in_files(shop.settings.home) == []
    assert found_in_store(shop.engine) == []


def test_export_holds_everything_then_nothing(shop: Shop) -> None:
    tell(shop)
    document = export_customer(shop.engine, shop.settings, "anon-ana-1", now=NOW)
    assert document is not None
    assert document["customer_id"] == "ana-crm-7"
    assert document["profile"]["email"] == EMAIL
    assert document["profile"]["attributes"]["first_name"] == "Anabel"
    assert len(document["merged_customers"]) == 1
    kinds = {(i["kind"], i["value"]) for i in document["identities"]}
    assert {("email", EMAIL), ("phone", PHONE), ("anonymous_id", "anon-ana-1")} <= kinds
    sms = document["consent"]["sms"]
    assert sms["granted"] is False
    assert [(c["value"], c["source"]) for c in sms["history"]] == [
        (True, "profile"), (False, "sms_keyword")
    ]  # fmt: skip
    assert {(s["channel"], s["reason"]) for s in document["suppressions"]} == {("sms", "opt_out")}
    names = [e["name"] for e in document["events"]]
    assert "product.viewed" in names and "product.added" in names  # the anonymous browsing too
    added = next(e for e in document["events"] if e["name"] == "product.added")
    assert "Anabel" in added["properties"]["gift_note"]
    [message] = document["messages"]
    assert message["status"] == "sent" and message["rendered"]
    assert (
        EMAIL in message["rendered"][0]["content"] and "Anabel" in message["rendered"][0]["content"]
    )
    assert document["enrollments"] and document["decisions"]
    assert all(NEEDLE not in str(document) for NEEDLE in (OTHER_EMAIL,))

    erase_customer(shop.engine, shop.settings, "ana-crm-7", now=NOW)
    assert export_customer(shop.engine, shop.settings, EMAIL, now=NOW) is None
    assert export_customer(shop.engine, shop.settings, "anon-ana-1", now=NOW) is None
    assert NEEDLES


def test_the_sqlite_file_keeps_no_trace(sqlite_store: Engine, tmp_path: Path) -> None:
    """Deleted rows leave their bytes in SQLite's free pages and write-ahead log unless
    overwritten: the erasure zeroes them, so the file itself holds no trace."""
    shop = Shop(sqlite_store, Settings(home=tmp_path / "home"))
    tell(shop)
    database = Path(str(sqlite_store.url.database))
    assert EMAIL.encode() in b"".join(p.read_bytes() for p in database.parent.glob("omni.db*"))

    erase_customer(shop.engine, shop.settings, EMAIL, now=NOW)

    sqlite_store.dispose()
    stored = b"".join(p.read_bytes() for p in database.parent.glob("omni.db*")).lower()
    assert [n for n in NEEDLES if n.lower().encode() in stored] == []


def test_an_address_another_customer_shares_stays_suppressed(shop: Shop) -> None:
    """A family's shared phone: erasing one of them keeps the opt-out that protects the
    other, and the other's profile; the erased one's own email is gone."""
    shop.profiles([profile("kid", email="kid@example.com", phone=PHONE, consent={"sms": True})])
    add_customer(shop.engine, "mum", email="mum@example.com", phone=PHONE)  # a CRM row
    handle_inbound_sms(shop.engine, phone=PHONE, text="STOP", now=NOW, inbound_id="in-9")

    result = erase_customer(shop.engine, shop.settings, "kid@example.com", now=NOW)

    assert result.erased and result.counts["suppressions"] == 0
    assert found_in_store(shop.engine, ("kid@example.com",)) == []
    with shop.engine.connect() as connection:
        mum = find_customer(connection, "mum", "DE")
        assert mum is not None and mum.phone == PHONE
        suppressed = connection.execute(select(SUPPRESSIONS.c.channel, SUPPRESSIONS.c.address))
        assert suppressed.all() == [("sms", PHONE)]
