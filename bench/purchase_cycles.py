"""Purchase cycles: back-test on a generated shop, firing rates, and the daily run's cost.

    .venv/bin/python -m bench.purchase_cycles                          # 20k customers, 40% cyclic
    .venv/bin/python -m bench.purchase_cycles --write-orders /tmp/orders.jsonl
    .venv/bin/omni-journey backtest purchase-cycles --orders /tmp/orders.jsonl
    .venv/bin/python -m bench.purchase_cycles --store sqlite           # time run_purchase_cycles
    .venv/bin/python -m bench.purchase_cycles --store postgres

Prints the back-test (the method against the fixed-interval and after-N-days baselines,
overall and split by the generator's truth), how many customers of a purely random
shop get a reminder over the year, and optionally how long one ``run_purchase_cycles``
takes on a store holding the same orders as ``order.completed`` events.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.segments import _bulk
from omni_journey.cycles.daily import run_purchase_cycles
from omni_journey.lab.cycles_backtest import backtest_purchase_cycles
from omni_journey.lab.synthetic_orders import GeneratedShop, generate_orders, order_events
from omni_journey.store import open_store


def _table(title: str, methods: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}\n")
    print("| method | reminders | hit rate | late | MAE days | coverage | window days |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, s in methods.items():
        print(
            f"| {name} | {s['reminders']:,} | {s['hit_rate']:.1%} | {s['late_share']:.1%} | "
            f"{s['mae_days']:.1f} | {s['coverage']:.1%} | {s['window_days']:.1f} |"
        )


def _write(shop: GeneratedShop, path: Path) -> None:
    with path.open("w") as handle:
        for order in shop.orders:
            row = {
                "customer_id": order.customer_id,
                "at": order.at.isoformat(),
                "category": order.category,
                "amount": order.amount,
            }
            handle.write(json.dumps(row) + "\n")


@contextlib.contextmanager
def _store_url(kind: str) -> Iterator[str]:
    if kind == "postgres":
        from tests.support.postgres import postgres_server  # the test suite's throwaway server

        with postgres_server() as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'cycles.db'}"


def _time_store(shop: GeneratedShop, kind: str) -> None:
    with _store_url(kind) as url:
        engine = open_store(url)
        with engine.begin() as connection:
            _bulk(connection, "events", order_events(shop.orders, received_at=shop.end))
        for label, now in (("first run", shop.end), ("next day", shop.end + timedelta(days=1))):
            started = time.perf_counter()
            report = run_purchase_cycles(engine, now=now)
            seconds = time.perf_counter() - started
            print(
                f"{engine.dialect.name} run_purchase_cycles, {label}: {seconds:.1f} s for "
                f"{len(shop.orders):,} orders, {report.series:,} histories: "
                f"{report.regular:,} regular, {report.scheduled:,} scheduled, "
                f"{report.emitted:,} due, {report.expired:,} expired"
            )
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--share-cyclic", type=float, default=0.4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write-orders", type=Path, help="also write the orders as JSON Lines")
    parser.add_argument("--store", choices=["sqlite", "postgres"], help="time the daily run")
    args = parser.parse_args()

    started = time.perf_counter()
    shop = generate_orders(args.seed, args.customers, args.share_cyclic)
    generated = time.perf_counter() - started
    if args.write_orders:
        _write(shop, args.write_orders)
    started = time.perf_counter()
    report = backtest_purchase_cycles(shop.orders, cyclic=shop.cyclic)
    replayed = time.perf_counter() - started
    data = report.as_dict()
    print(
        f"{report.orders:,} orders of {report.customers:,} customers "
        f"({args.share_cyclic:.0%} cyclic, seed {args.seed}); generated in {generated:.1f} s, "
        f"back-tested in {replayed:.1f} s; learned before {report.split_at.date()}"
    )
    _table("All customers", data["methods"])
    _table("Cyclic buyers only", data["by_truth"]["cyclic"])
    _table("Random buyers only", data["by_truth"]["random"])

    noise = generate_orders(args.seed + 1, args.customers // 4, 0.0)
    quiet = backtest_purchase_cycles(noise.orders).scores["cycles"]
    customers = len({order.customer_id for order in noise.orders})
    share = quiet.customers_reminded / customers
    print(
        f"\nPurely random shop ({customers:,} customers, a year of decisions at every "
        f"purchase): {quiet.customers_reminded:,} customers ({share:.1%}) ever get a "
        f"reminder; {quiet.reminders:,} reminders in all."
    )
    if args.store:
        print()
        _time_store(shop, args.store)


if __name__ == "__main__":
    main()
