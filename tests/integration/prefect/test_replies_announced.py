"""A customer's reply reaches Prefect like any collected event: an inbound SMS posted to
the collector (real uvicorn, real SNS signature, a real SQLite store) is announced as
``omni.events.ingested`` on ``omni.event.message.replied`` to the session's real Prefect
server, so a journey that a reply enters starts within seconds; a duplicate delivery of
the same SNS message announces nothing more."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from omni_journey.settings import Settings
from tests.integration.prefect.conftest import PrefectApi, ingested_events, wait_for
from tests.integration.test_collector import NOW, serving
from tests.integration.test_inbound_replies import PHONE, Inbound, _profiles
from tests.support.inbound import TOPIC, SnsSigner, sms

pytestmark = [pytest.mark.slow]

RESOURCE = "omni.event.message.replied"


def _announced() -> list[Any]:
    return ingested_events(RESOURCE)


def test_an_inbound_reply_is_announced_to_prefect(
    prefect_api: PrefectApi, sqlite_store: Engine, tmp_path: Path
) -> None:
    _profiles(
        sqlite_store,
        tmp_path,
        {"customer_id": "c-ana", "phone": PHONE, "consent": {"sms": True}},
    )
    signer = SnsSigner.create()
    assert _announced() == []
    with (
        serving(
            sqlite_store,
            Settings(feedback_topic_arns=TOPIC),
            sns_verifier=signer.verifier(),
            confirm_subscription=print,
        ) as url,
        httpx.Client(timeout=30) as http,
    ):
        inbound = Inbound(url, sqlite_store, http, signer)
        inbound.sent("c-ana", "sms", "cart", "pub-1", NOW - timedelta(hours=1))
        reply = sms(PHONE, "Still available?", "in-1", answers="pub-1")
        for _ in range(2):  # SNS delivers at least once: the second is a duplicate
            answer = inbound.post("/inbound/sms", reply, "s-1")
            assert answer.status_code == 200, answer.text
        [event] = wait_for(_announced, timeout=30)
    assert event.payload == {"count": 1, "source": "collector"}
    assert event.resource["omni.event.name"] == "message.replied"
