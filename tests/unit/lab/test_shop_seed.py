"""The demo shop is a function of its seed: same seed, same customers, behaviour and
answers (the demo's reproducibility starts here; the store side is in
tests/integration/test_determinism.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from omni_journey.lab.shop import START, SentMessage, Shop


def _play(seed: int) -> list[Any]:
    shop = Shop(seed, 60)
    profiles, history = shop.generate(days=21)
    organic = shop.advance(START + timedelta(days=2))
    sent = [
        SentMessage(i, cid, channel, "cart_reminder", START + timedelta(hours=3))
        for i, (cid, channel) in enumerate(
            (c, ("email", "sms", "push", "whatsapp")[n % 4])
            for n, c in enumerate(shop.customer_ids)
        )
    ]
    answers = shop.respond(sent)
    return [profiles, history, organic, answers, shop.consent_updates()]


def test_the_same_seed_plays_the_same_shop() -> None:
    assert _play(7) == _play(7)


def test_another_seed_plays_another_shop() -> None:
    assert _play(7)[1] != _play(8)[1]
