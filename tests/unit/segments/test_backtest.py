"""The generator and the back-test: the method against both baselines, and how often
it fires for random and for cyclic buyers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omni_journey.lab.cycles_backtest import (
    OrderFileError,
    backtest_purchase_cycles,
    load_orders,
)
from omni_journey.lab.synthetic_orders import generate_orders


def test_the_generator_is_seeded_and_keeps_the_truth() -> None:
    one = generate_orders(seed=1, customers=200, share_cyclic=0.3)
    two = generate_orders(seed=1, customers=200, share_cyclic=0.3)
    assert one.orders == two.orders
    assert one.orders != generate_orders(seed=2, customers=200, share_cyclic=0.3).orders
    cyclic_customers = {customer for customer, _ in one.cyclic}
    assert 40 < len(cyclic_customers) < 80
    assert all(one.start <= order.at < one.end for order in one.orders)
    assert not generate_orders(seed=1, customers=100, share_cyclic=0.0).cyclic


def test_the_method_beats_both_baselines_on_a_mixed_shop() -> None:
    shop = generate_orders(seed=21, customers=800, share_cyclic=0.4)
    report = backtest_purchase_cycles(shop.orders, cyclic=shop.cyclic)
    method, fixed, after = (
        report.scores[name] for name in ("cycles", "fixed_interval", "after_n_days")
    )
    assert method.hit_rate > fixed.hit_rate + 0.2
    assert method.hit_rate > after.hit_rate + 0.2
    assert method.mae_days < fixed.mae_days and method.mae_days < after.mae_days
    assert method.late_share < min(fixed.late_share, after.late_share)
    # not by drawing wider windows
    assert method.window_days < 1.5 * fixed.window_days
    # and on cyclic buyers alone, where all three remind, it still times better
    cyclic = report.by_truth["cyclic"]
    assert cyclic["cycles"].hit_rate > cyclic["fixed_interval"].hit_rate
    assert cyclic["cycles"].customers_reminded > 0.9 * cyclic["fixed_interval"].customers_reminded


def test_it_rarely_fires_on_random_buying() -> None:
    shop = generate_orders(seed=22, customers=800, share_cyclic=0.0)
    report = backtest_purchase_cycles(shop.orders)
    customers = len({order.customer_id for order in shop.orders})
    # a whole year of decisions at every purchase
    assert report.scores["cycles"].customers_reminded / customers < 0.10
    assert report.scores["cycles"].reminders < 0.02 * report.scores["fixed_interval"].reminders


def test_it_fires_for_most_cyclic_buyers() -> None:
    shop = generate_orders(seed=23, customers=300, share_cyclic=1.0)
    report = backtest_purchase_cycles(shop.orders)
    customers = len({order.customer_id for order in shop.orders})
    assert report.scores["cycles"].customers_reminded / customers > 0.9


def test_the_report_serialises() -> None:
    shop = generate_orders(seed=24, customers=60, share_cyclic=0.5)
    data = backtest_purchase_cycles(shop.orders, cyclic=shop.cyclic).as_dict()
    json.dumps(data)
    assert set(data["methods"]) == {"cycles", "fixed_interval", "after_n_days"}
    assert set(data["by_truth"]) == {"cyclic", "random"}
    with pytest.raises(ValueError, match="no orders"):
        backtest_purchase_cycles([])


def test_order_files_in_json_lines_and_csv(tmp_path: Path) -> None:
    jsonl = tmp_path / "orders.jsonl"
    jsonl.write_text(
        '{"customer_id": "c-1", "at": "2025-01-01T10:00:00Z", "category": "tea", "amount": 9.5}\n'
        "\n"
        '{"customer_id": "c-1", "at": "2025-01-15T10:00:00+01:00", "category": "tea"}\n'
    )
    csv = tmp_path / "orders.csv"
    csv.write_text(
        "customer_id,at,category,amount\n"
        "c-1,2025-01-01T10:00:00Z,tea,9.5\n"
        "c-1,2025-01-15T09:00:00Z,tea,\n"
    )
    from_jsonl, from_csv = load_orders(jsonl), load_orders(csv)
    assert from_jsonl == from_csv
    assert from_jsonl[1].at.isoformat() == "2025-01-15T09:00:00+00:00"
    assert from_jsonl[0].amount == 9.5


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"customer_id": "c", "at": "2025-01-01T10:00:00", "category": "t"}', "no time zone"),
        ('{"customer_id": "c", "at": "yesterday", "category": "t"}', "not ISO 8601"),
        ('{"at": "2025-01-01T10:00:00Z", "category": "t"}', "missing customer_id"),
        ("[1, 2]", "a JSON object per line"),
        ("{oops", "not JSON"),
    ],
)
def test_bad_order_lines_name_the_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "orders.jsonl"
    good = '{"customer_id": "c", "at": "2025-01-01T10:00:00Z", "category": "t"}'
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(OrderFileError) as error:
        load_orders(path)
    assert error.value.line == 2
    assert problem in str(error.value)
    assert str(error.value).startswith(f"{path}:2: ")
