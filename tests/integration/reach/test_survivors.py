"""One survivor chase: the dispatcher's recipients, the collector's link pages and the
preview follow a merge chain to the same customer, with one hop limit, and agree that a
broken chain (a cycle, a missing row, too many hops) has no survivor."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, select

from omni_journey.collector.link_pages import unsubscribe
from omni_journey.delivery.recipients import load_recipients
from omni_journey.identity.survivors import MAX_MERGE_HOPS, follow_merges, survivor_of
from omni_journey.links import LinkClaims
from omni_journey.render.preview import PreviewError, load_preview_subject
from omni_journey.store.core import CONSENTS, CUSTOMERS, SUPPRESSIONS

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
# c-a -> c-b -> c-c (live); c-x -> nowhere; c-p <-> c-q; long-0 -> ... -> long-N
CHAIN = {"c-a": "c-b", "c-b": "c-c", "c-c": None}
BROKEN = {"c-x": "c-missing", "c-p": "c-q", "c-q": "c-p"}


def _long_chain(hops: int, prefix: str) -> dict[str, str | None]:
    ids = [f"{prefix}-{n}" for n in range(hops + 1)]
    return {a: b for a, b in zip(ids, [*ids[1:], None], strict=True)}


def _add(engine: Engine, merges: dict[str, str | None]) -> None:
    with engine.begin() as connection:
        for cid, into in merges.items():
            live = into is None
            connection.execute(
                insert(CUSTOMERS),
                {"id": cid, "email": f"{cid}@example.com" if live else None,
                 "attributes": {"first_name": cid}, "merged_into": into,
                 "created_at": NOW, "updated_at": NOW},
            )  # fmt: skip
            connection.execute(
                insert(CONSENTS),
                {"customer_id": cid, "channel": "email", "granted": True,
                 "source": "test", "updated_at": NOW},
            )  # fmt: skip


def test_the_chase_follows_a_chain_to_the_survivor_within_one_hop_limit(store: Engine) -> None:
    within = _long_chain(MAX_MERGE_HOPS, "ok")
    beyond = _long_chain(MAX_MERGE_HOPS + 1, "far")
    _add(store, CHAIN | BROKEN | within | beyond)
    asked = [*CHAIN, *BROKEN, "ok-0", "far-0", "far-1", "c-nobody"]
    with store.connect() as connection:
        found = {cid: str(row.id) for cid, row in follow_merges(connection, asked).items()}
        one = survivor_of(connection, "c-a")
    assert found == {
        "c-a": "c-c",
        "c-b": "c-c",
        "c-c": "c-c",
        "ok-0": f"ok-{MAX_MERGE_HOPS}",
        "far-1": f"far-{MAX_MERGE_HOPS + 1}",  # one hop fewer than far-0
    }
    assert one is not None and one.id == "c-c" and one.merged_into is None


def test_recipients_links_and_preview_reach_the_same_survivor(sqlite_store: Engine) -> None:
    _add(sqlite_store, CHAIN | BROKEN)
    with sqlite_store.connect() as connection:
        recipients = load_recipients(connection, ["c-a", "c-x", "c-p"], now=NOW)
    assert {asked: view.id for asked, view in recipients.customers.items()} == {"c-a": "c-c"}
    assert recipients.address(recipients.customers["c-a"], "email") == "c-c@example.com"

    subject = load_preview_subject(sqlite_store, "c-a")
    assert (subject.email, subject.merged_from) == ("c-c@example.com", "c-a")
    assert subject.context.customer["id"] == "c-c"
    with pytest.raises(PreviewError, match="merged into a customer that does not exist"):
        load_preview_subject(sqlite_store, "c-p")
    with pytest.raises(PreviewError, match="there is no customer"):
        load_preview_subject(sqlite_store, "c-nobody")

    claims = LinkClaims(kind="unsubscribe", customer_id="c-a", channel="email", message="m")
    result = unsubscribe(sqlite_store, claims, "token-a", now=NOW)
    assert (result.changed, result.suppressed) == (True, True)
    with sqlite_store.connect() as connection:
        consent = dict(
            connection.execute(
                select(CONSENTS.c.customer_id, CONSENTS.c.granted).where(
                    CONSENTS.c.channel == "email"
                )
            ).all()
        )
        blocked = connection.execute(select(SUPPRESSIONS.c.address)).scalars().all()
    assert consent["c-c"] is False and consent["c-a"] is True
    assert blocked == ["c-c@example.com"]
