"""Send time: the best hour within a day, shrunk toward the population, never quiet."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omni_journey.channels.sendtime import best_send_time, candidate_slots, shrunk_histogram
from omni_journey.engine.clock import in_clock_window
from omni_journey.spec.models import QuietHours

NOW = datetime(2026, 5, 4, 7, 30, tzinfo=UTC)  # 09:30 in Berlin
BERLIN = ZoneInfo("Europe/Berlin")
FLAT = [1.0] * 24
EVENING_PEOPLE = [1.0] * 24
EVENING_PEOPLE[19] = 30.0


def _hist(**hours: float) -> list[float]:
    values = [0.0] * 24
    for key, count in hours.items():
        values[int(key[1:])] = count
    return values


def test_a_clear_personal_peak_wins() -> None:
    at = best_send_time(_hist(h21=8), FLAT, NOW, BERLIN, None, random.Random(1), explore=0.0)
    assert at.astimezone(BERLIN).hour == 21
    assert at == datetime(2026, 5, 4, 19, 0, tzinfo=UTC)


def test_without_history_the_population_decides() -> None:
    at = best_send_time([0.0] * 24, EVENING_PEOPLE, NOW, BERLIN, None, random.Random(1), explore=0)
    assert at.astimezone(BERLIN).hour == 19


def test_a_thin_history_is_shrunk_toward_the_population() -> None:
    weights = shrunk_histogram(_hist(h3=1), EVENING_PEOPLE, strength=10.0)
    assert weights.index(max(weights)) == 19
    strong = shrunk_histogram(_hist(h3=40), EVENING_PEOPLE, strength=10.0)
    assert strong.index(max(strong)) == 3
    assert sum(weights) == pytest.approx(1.0)


def test_the_current_hour_means_now() -> None:
    at = best_send_time(_hist(h9=5), FLAT, NOW, BERLIN, None, random.Random(1), explore=0.0)
    assert at == NOW


def test_quiet_hours_are_never_chosen_even_when_the_customer_reads_at_night() -> None:
    quiet = QuietHours(start=time(21, 0), end=time(8, 0))
    at = best_send_time(_hist(h23=20, h18=2), FLAT, NOW, BERLIN, quiet, random.Random(1), explore=0)
    assert at.astimezone(BERLIN).hour == 18


def test_a_few_percent_are_randomised() -> None:
    rng = random.Random(7)
    picks = [
        best_send_time(_hist(h21=50), FLAT, NOW, BERLIN, None, rng, explore=0.05)
        for _ in range(2000)
    ]
    off_peak = sum(1 for at in picks if at.astimezone(BERLIN).hour != 21)
    assert 0.02 < off_peak / len(picks) < 0.08


def test_slots_cover_the_next_day_across_a_dst_change() -> None:
    before_switch = datetime(2026, 3, 28, 12, 30, tzinfo=UTC)  # Berlin springs forward on the 29th
    slots = candidate_slots(before_switch, BERLIN, None)
    assert len(slots) == 24
    assert slots[0] == before_switch
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(slots[1:]))
    assert slots[-1] < before_switch + timedelta(hours=24)


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.floats(0, 50), min_size=24, max_size=24),
    minutes=st.integers(0, 60 * 24 * 365),
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"]),
    start=st.integers(0, 23),
    length=st.integers(1, 20),
    seed=st.integers(0, 1000),
    explore=st.sampled_from([0.0, 0.05, 1.0]),
)
def test_never_inside_quiet_hours_and_always_within_a_day(
    counts: list[float], minutes: int, zone: str, start: int, length: int, seed: int, explore: float
) -> None:
    tz = ZoneInfo(zone)
    quiet = QuietHours(start=time(start, 0), end=time((start + length) % 24, 0))
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    at = best_send_time(counts, FLAT, now, tz, quiet, random.Random(seed), explore=explore)
    assert now <= at < now + timedelta(hours=24)
    local = at.astimezone(tz).time().replace(tzinfo=None)
    if candidate_slots(now, tz, quiet):
        assert not in_clock_window(local, quiet.start, quiet.end)
    else:
        assert at == now


def test_slots_start_on_local_hours_in_half_hour_zones() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    slots = candidate_slots(NOW, kolkata, None)
    assert {s.astimezone(kolkata).minute for s in slots[1:]} == {0}
