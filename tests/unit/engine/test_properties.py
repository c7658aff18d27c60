"""Property-based tests: random valid journeys, random event streams, a ticking clock.

Journeys come from a small grammar: instant steps (send, branch, split, update,
webhook, exit) only jump forward; waits (delay, wait_for) may jump anywhere, so every
loop passes a wait, as ``compile_journey`` demands.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omni_journey.engine import CompiledJourney, compile_journey
from omni_journey.engine.clock import in_clock_window, zone
from omni_journey.engine.types import (
    ACTIVE,
    COMPLETED,
    EXITED,
    CallWebhook,
    Converted,
    CustomerFacts,
    EventView,
    ExitJourney,
    SendMessage,
    StepEntered,
)
from omni_journey.spec.models import JourneySpec
from tests.unit.engine.support import T0, Driver, FakeFacts, event, run_days

NAMES = ("a", "b", "buy")
ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo")
CHANNELS = ("email", "best", ["sms", "email"], ["push"])
CUSTOMERS = tuple(f"c{i}" for i in range(6))
TICK = timedelta(minutes=45)
TICKS = 160  # five days


@st.composite
def step_specs(draw: st.DrawFn, index: int, ids: list[str]) -> dict[str, Any]:
    sid = ids[index]
    ahead = ids[index + 1 :]
    forward = st.one_of(st.none(), st.sampled_from(ahead)) if ahead else st.none()
    anywhere = st.one_of(st.none(), st.sampled_from(ids))
    kinds = ["delay", "wait_for", "send", "update", "webhook", "exit", "split"]
    if ahead:
        kinds.append("branch")
    kind = draw(st.sampled_from(kinds))
    if kind == "delay":
        timing = draw(
            st.sampled_from(
                [
                    {"for": "30m"},
                    {"for": "5h"},
                    {"for": "1d"},
                    {"until": "09:00"},
                    {"until": "23:30"},
                ]
            )
        )
        return {"id": sid, "type": "delay", **timing, "next": draw(anywhere)}
    if kind == "wait_for":
        return {
            "id": sid,
            "type": "wait_for",
            "event": draw(st.sampled_from(NAMES)),
            "timeout": draw(st.sampled_from(["1h", "6h", "2d"])),
            "on_event": draw(anywhere),
            "on_timeout": draw(anywhere),
        }
    if kind == "send":
        return {
            "id": sid,
            "type": "send",
            "message": f"m_{sid}",
            "channel": draw(st.sampled_from(CHANNELS)),
            "next": draw(forward),
        }
    if kind == "update":
        return {"id": sid, "type": "update", "set": {"seen": sid}, "next": draw(forward)}
    if kind == "webhook":
        return {
            "id": sid,
            "type": "webhook",
            "url": "https://hooks.example/x",
            "next": draw(forward),
        }
    if kind == "exit":
        return {"id": sid, "type": "exit"}
    if kind == "branch":
        return {
            "id": sid,
            "type": "branch",
            "arms": [{"when": {"segment": "vip"}, "next": draw(st.sampled_from(ahead))}],
            "else": draw(forward),
        }
    weights = draw(st.lists(st.integers(1, 5), min_size=2, max_size=3))
    return {
        "id": sid,
        "type": "split",
        "variants": [
            {"name": f"v{i}", "weight": w, "next": draw(forward)} for i, w in enumerate(weights)
        ],
    }


@st.composite
def journeys(draw: st.DrawFn) -> CompiledJourney:
    n = draw(st.integers(1, 6))
    ids = [f"s{i}" for i in range(n)]
    spec: dict[str, Any] = {
        "key": "prop",
        "trigger": draw(
            st.sampled_from([{"event": "a"}, {"event": "a", "where": {"v": {"gte": 2}}}])
        ),
        "entry": {"re_entry": draw(st.sampled_from(["never", "always", "after 1d"]))},
        "steps": [draw(step_specs(i, ids)) for i in range(n)],
    }
    if draw(st.booleans()):
        spec["exit_when"] = [{"event": "buy"}]
    if draw(st.booleans()):
        spec["goal"] = {"event": draw(st.sampled_from(["buy", "b"])), "within": "2d"}
    if draw(st.booleans()):
        spec["holdout"] = draw(st.sampled_from(["10%", "50%"]))
    if draw(st.booleans()):
        spec["quiet_hours"] = draw(
            st.sampled_from(
                [{"start": "21:00", "end": "08:00"}, {"start": "12:00", "end": "14:00"}]
            )
        )
    if draw(st.booleans()):
        spec["send_window"] = {
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "start": "09:00",
            "end": "18:00",
        }
    if draw(st.booleans()):
        spec["frequency_cap"] = {"max": draw(st.integers(1, 2)), "per": "1d"}
    return compile_journey(JourneySpec.model_validate(spec), 1)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[FakeFacts, list[EventView]]:
    customers = {}
    for c in CUSTOMERS:
        eligible = {
            ch: draw(st.sampled_from([None, None, "no_consent", "suppressed"]))
            for ch in ("email", "sms", "push", "whatsapp")
        }
        customers[c] = CustomerFacts(c, timezone=draw(st.sampled_from(ZONES)), eligible=eligible)
    vip = draw(st.sets(st.sampled_from(CUSTOMERS)))
    raw = draw(
        st.lists(
            st.tuples(
                st.sampled_from(CUSTOMERS),
                st.sampled_from(("a", "a", *NAMES)),
                st.integers(0, 4 * 24 * 60),
                st.integers(0, 3),
            ),
            min_size=10,
            max_size=60,
        )
    )
    events = [
        event(name, c, T0 + timedelta(minutes=m), seq=i, event_id=f"e{i}", v=v)
        for i, (c, name, m, v) in enumerate(raw)
    ]
    return FakeFacts(customers, segments={"vip": vip}), events


def drive(j: CompiledJourney, world: tuple[FakeFacts, list[EventView]]) -> Driver:
    facts, events = world
    fresh = FakeFacts(dict(facts.customers), facts.segments)  # the driver writes sends back
    driver = Driver(j, fresh)
    run_days(driver, events, T0 - TICK, ticks=TICKS, step=TICK)
    return driver


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(journeys(), worlds())
def test_random_journeys_keep_the_invariants(
    j: CompiledJourney, world: tuple[FakeFacts, list[EventView]]
) -> None:
    driver = drive(j, world)
    # no customer is ever in two places of one journey
    for snapshot in driver.history:
        active = Counter(s.customer_id for s in snapshot.values() if s.state == ACTIVE)
        assert all(n == 1 for n in active.values())
    # no idempotency key repeats
    keys = [e.idempotency_key for e in driver.of(SendMessage)] + [
        e.idempotency_key for e in driver.of(CallWebhook)
    ]
    assert len(keys) == len(set(keys))
    # every enrollment is in a known state
    for s in driver.states.values():
        if s.state == ACTIVE:
            assert s.wake_at is not None and s.ended_at is None
            assert s.step_id in j.steps if not s.holdout else s.step_id is None
        else:
            assert s.state in (COMPLETED, EXITED)
            assert s.wake_at is None and s.ended_at is not None
            assert s.end_reason is not None
            assert s.end_reason in ("completed", "holdout") or s.end_reason.startswith(
                ("exit_when:", "exit_step:")
            ), s.end_reason
    # each ended enrollment said so exactly once; conversions at most once each
    exits = Counter(e.enrollment_id for e in driver.of(ExitJourney))
    ended = {s.id for s in driver.states.values() if s.state != ACTIVE}
    assert set(exits) == ended and all(n == 1 for n in exits.values())
    conversions = Counter(e.enrollment_id for e in driver.of(Converted))
    assert all(n == 1 for n in conversions.values())
    # holdout enrollments take no steps
    held = {s.id for s in driver.states.values() if s.holdout}
    assert not [e for e in driver.of(StepEntered) if e.enrollment_id in held]
    # steps entered exist; sends obey quiet hours and the window in the customer's zone
    assert {e.step_id for e in driver.of(StepEntered)} <= set(j.steps)
    zones = {c: zone(driver.facts.customer(c).timezone) or zone("UTC") for c in CUSTOMERS}
    for send in driver.of(SendMessage):
        local = send.send_after.astimezone(zones[send.customer_id])
        if j.spec.quiet_hours:
            q = j.spec.quiet_hours
            assert not in_clock_window(local.time(), q.start, q.end)
        if j.spec.send_window:
            assert local.strftime("%a").lower() in j.spec.send_window.days
    # caps on local calendar days
    if j.spec.frequency_cap:
        per_day = Counter(
            (s.customer_id, s.send_after.astimezone(zones[s.customer_id]).date())
            for s in driver.of(SendMessage)
        )
        assert max(per_day.values(), default=0) <= j.spec.frequency_cap.max


@SETTINGS
@given(journeys(), worlds())
def test_replaying_the_same_inputs_gives_the_same_outputs(
    j: CompiledJourney, world: tuple[FakeFacts, list[EventView]]
) -> None:
    first, second = drive(j, world), drive(j, world)
    assert first.effects == second.effects
    assert first.states == second.states
