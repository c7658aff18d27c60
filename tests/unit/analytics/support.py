"""A hand-made report (no store) for the forms, charts and page tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from omni_journey.analytics import (
    ChannelDelivery,
    Funnel,
    JourneyFigures,
    MixRow,
    PolicyRow,
    PolicyValue,
    Report,
    StepFunnel,
    SuppressionCount,
)
from omni_journey.analytics.lift import judge

NOW = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)
DAY = datetime(2026, 5, 4, tzinfo=UTC)


def funnel(key: str = "cart") -> Funnel:
    return Funnel(
        journey_key=key,
        name="Cart <abandonment>",
        since=None,
        until=NOW,
        entered=1100,
        holdout=100,
        refused={"already_active": 7},
        waiting_holdout=4,
        converted=150,
        converted_holdout=10,
        converted_untouched=30,
        exited={"completed": 700, "exit_when:order.completed": 150, "holdout": 90},
        steps=[
            StepFunnel("wait", "delay", entered=1000, exited={"exit_when:order.completed": 30}),
            StepFunnel(
                "remind",
                "send",
                entered=970,
                sent={"email": 600, "push": 300},
                skipped={"no_consent": 50, "frequency_cap": 20},
                converted=80,
            ),
            StepFunnel("bought", "wait_for", entered=970, waiting=12, converted=0),
            StepFunnel(
                "last",
                "send",
                entered=850,
                sent={"email": 800},
                skipped={"no_consent": 50},
                converted=30,
                exited={"completed": 700},
            ),
        ],
    )


def report(*, policy: bool = True) -> Report:
    mix = [
        MixRow(DAY, "email", 500),
        MixRow(DAY, "push", 200),
        MixRow(DAY + timedelta(days=2), "email", 900),
        MixRow(DAY + timedelta(days=2), "sms", 40),
    ]
    delivery = [
        ChannelDelivery(
            "email",
            sent=1400,
            suppressed=12,
            failed=3,
            delivered=1380,
            opened=600,
            clicked=90,
            bounced=20,
            complained=1,
            unsubscribed=5,
        ),
        ChannelDelivery("push", sent=200, delivered=0, opened=40),
        ChannelDelivery("sms", sent=40, failed=2, unsubscribed=1),
    ]
    value = PolicyValue(
        since=DAY,
        until=NOW,
        decisions=900,
        customers=850,
        logged_policies={"rule-v1": 900},
        logged=PolicyRow("running policy (rule-v1)", 120.0, 90.0, 150.0),
        estimates=[
            PolicyRow("email", 100.0, 70.0, 130.0, 101.0, 60.0, 140.0, 0.8, 500.0),
            PolicyRow("random", 95.0, 60.0, 125.0, support=0.6),
            PolicyRow("rule", 120.0, 90.0, 150.0, support=1.0),
            PolicyRow("most-engaged", 131.0, 95.0, 170.0, support=0.7),
        ],
        conversion_value=25.0,
        costs={"email": 0.001, "sms": 0.07},
        warnings=["most logged decisions were deterministic"],
    )
    return Report(
        generated_at=NOW,
        since=None,
        until=NOW,
        bucket="day",
        journeys=[
            JourneyFigures(funnel(), judge("cart", 140, 1000, 10, 100, until=NOW)),
            JourneyFigures(
                Funnel("welcome", None, None, NOW, 0, 0, {}, 0, 0, 0, 0, {}, []),
                judge("welcome", 0, 0, 0, 0, until=NOW),
            ),
        ],
        mix=mix,
        delivery=delivery,
        suppressions=[SuppressionCount("email", "hard_bounce", 3)],
        policy=value if policy else None,
    )
