"""Latency through Prefect: an HTTP event -> outbox row -> message sent, end to end.

    .venv/bin/python -m bench.latency                          # process worker, 1 s polling
    .venv/bin/python -m bench.latency --mode serve             # the flows served instead
    .venv/bin/python -m bench.latency --singles 20 --burst 10000 --peer-burst 200

Starts a Prefect server (its own PREFECT_HOME in a temporary folder, analytics off), a
process work pool, ``prefect --no-prompt deploy --all`` of the repository's
prefect.yaml (plus a Prefect-only peer deployment), a process worker
(``PREFECT_WORKER_QUERY_SECONDS=--query-seconds``) or, with ``--mode serve``, the same
flows ``serve``d, and the collector (``omni-journey serve``). Then:

1. **singles**: one ``Order Completed`` at a time over HTTP (``/v1/track``), each for a
   new customer with email consent, so each enters ``post_purchase_cross_sell``, whose
   first step sends at once; the next event waits for the trigger's ``within`` window;
2. **burst**: ``--burst`` such events in ``--batches`` ``/v1/batch`` calls;
3. **peer**: a deployment with a trigger per event (``within: 0``) and a trivial flow,
   one flow run per event: ``--singles`` events one at a time, then ``--peer-burst``.

Reports event -> outbox row and event -> sent (the message row ``sent``; the file
outbox writes the file in the same step) at p50/p95/p99/max, flow runs, and where a
triggered run's time goes (event -> run created -> picked up -> running -> done).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.latency_stack import PEER_EVENT, WRITE_KEY, Stack, wait_until

JOURNEY = "post_purchase_cross_sell"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def line(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<34} (none)"
    p50, p95, p99 = (pct(values, q) for q in (50, 95, 99))
    return (
        f"{name:<34} n={len(values):<6} p50 {p50:6.2f} s  p95 {p95:6.2f} s  "
        f"p99 {p99:6.2f} s  max {max(values):6.2f} s"
    )


def timezone_for_daytime() -> str:
    """A fixed-offset zone where it is early afternoon now (no quiet hours)."""
    offset = (13 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


class Shop:
    """The store the flows write, read by the benchmark; the collector over HTTP."""

    def __init__(self, stack: Stack) -> None:
        from omni_journey.settings import Settings
        from omni_journey.store import open_store

        self.stack = stack
        self.engine = open_store(stack.env["OMNI_DATABASE_URL"])
        self.settings = Settings()  # from the stack's OMNI_* (set in this process)
        self.auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()

    def customers(self, ids: list[str]) -> None:
        from omni_journey.ingest.intake import ingest_profiles

        zone = timezone_for_daytime()
        records = [
            {"customer_id": c, "email": f"{c}@example.com", "timezone": zone,
             "consent": {"email": True, "sms": False, "push": False},
             "attributes": {"first_name": c.title()}}
            for c in ids
        ]  # fmt: skip
        for start in range(0, len(records), 5000):
            now = datetime.now(UTC)
            result = ingest_profiles(
                self.engine, records[start : start + 5000], now=now, settings=self.settings
            )
            assert not result.rejected, result.rejected[:3]

    def post(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - our collector over http
            f"{self.stack.collector}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": self.auth},
        )
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            assert response.status == 200, response.status

    @staticmethod
    def order(customer: str) -> dict[str, Any]:
        return {
            "type": "track",
            "event": "Order Completed",
            "userId": customer,
            "messageId": f"order-{customer}",
            "timestamp": datetime.now(UTC).isoformat(),
            "properties": {
                "order_id": f"o-{customer}",
                "total": 42.0,
                "currency": "EUR",
                "products": [{"sku": "SERUM-30", "category": "skincare", "price": 42.0,
                              "quantity": 1}],
            },
        }  # fmt: skip

    def outbox(self, customers: Iterable[str]) -> dict[str, tuple[str, Any]]:
        """{customer: (status, sent_at)} of the journey's messages."""
        from sqlalchemy import and_, select

        from omni_journey.store.core import MESSAGES as M

        with self.engine.connect() as connection:
            rows = connection.execute(
                select(M.c.customer_id, M.c.status, M.c.sent_at).where(
                    and_(M.c.journey_key == JOURNEY, M.c.customer_id.in_(list(customers)))
                )
            ).all()
        return {row.customer_id: (row.status, row.sent_at) for row in rows}

    def holdout(self, customers: Iterable[str]) -> set[str]:
        from sqlalchemy import and_, select

        from omni_journey.store.core import ENROLLMENTS as E

        with self.engine.connect() as connection:
            rows = connection.execute(
                select(E.c.customer_id).where(
                    and_(E.c.journey_key == JOURNEY, E.c.holdout.is_(True),
                         E.c.customer_id.in_(list(customers)))
                )
            ).all()  # fmt: skip
        return {row.customer_id for row in rows}


def epoch(value: Any) -> float:
    stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
    return float(stamp.timestamp())


def singles(shop: Shop, count: int, gap: float) -> tuple[list[float], list[float], int]:
    ids = [f"single-{i}" for i in range(count)]
    shop.customers(ids)
    rows: list[float] = []
    sent: list[float] = []
    held = 0
    for customer in ids:
        started = time.time()
        shop.post("/v1/track", shop.order(customer))
        seen: float | None = None
        deadline = started + 150
        while time.time() < deadline:
            found = shop.outbox([customer]).get(customer)
            if found and seen is None:
                seen = time.time()
            if found and found[0] == "sent":
                done = time.time() - started  # seen sent (polling every 0.1 s)
                # the row was written before it was sent: polling may see both at once
                rows.append(min(seen - started if seen is not None else done, done))
                sent.append(done)
                break
            if not found and time.time() - started > 20 and shop.holdout([customer]):
                held += 1
                break
            time.sleep(0.1)
        time.sleep(max(0.0, started + gap - time.time()))
    return rows, sent, held


def burst(shop: Shop, count: int, batches: int, timeout: float) -> dict[str, Any]:
    ids = [f"burst-{i}" for i in range(count)]
    shop.customers(ids)
    size = -(-count // batches)
    posted: dict[str, float] = {}
    first = time.time()
    for start in range(0, count, size):
        chunk = ids[start : start + size]
        at = time.time()
        shop.post("/v1/batch", {"batch": [shop.order(c) for c in chunk]})
        posted.update(dict.fromkeys(chunk, at))
    accepted_in = time.time() - first
    seen: dict[str, float] = {}
    done: dict[str, float] = {}  # seen sent (polling every 0.25 s)
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = shop.outbox(ids)
        now = time.time()
        for customer, (status, _) in found.items():
            seen.setdefault(customer, now)
            if status == "sent":
                done.setdefault(customer, now)
        held = shop.holdout(ids) if len(found) > 0.8 * count else set()
        if held and len(found) + len(held) >= count and all(s == "sent" for s, _ in found.values()):
            break
        time.sleep(0.25)
    found = shop.outbox(ids)
    sent = {c: done[c] - posted[c] for c in done}
    last = max(done.values(), default=first)
    return {
        "first": first,
        "accepted_in": accepted_in,
        "rows": [min(seen[c] - posted[c], sent.get(c, float("inf"))) for c in seen],
        "sent": list(sent.values()),
        "messages": len(found),
        "unsent": len(found) - len(sent),
        "all_sent_after": last - first,
    }


def emit_peer(key: str) -> None:
    from prefect.events import emit_event

    emit_event(event=PEER_EVENT, resource={"prefect.resource.id": f"bench.peer.{key}"})


def peer_done(stack: Stack, key: str) -> float | None:
    path = stack.peer_dir / f"bench.peer.{key}"
    return float(path.read_text()) if path.exists() else None


def peer(stack: Stack, count: int, burst_size: int, timeout: float) -> dict[str, Any]:
    from prefect.events.utilities import emit_event  # noqa: F401 - load before timing

    done: list[float] = []
    for i in range(count):
        started = time.time()
        emit_peer(f"s{i}")
        key = f"s{i}"
        finished = wait_until(lambda: peer_done(stack, key), timeout=120, interval=0.1)  # noqa: B023
        if finished:
            done.append(finished - started)
    first = time.time()
    emitted = {}
    for i in range(burst_size):
        emitted[f"b{i}"] = time.time()
        emit_peer(f"b{i}")
    wait_until(lambda: all(peer_done(stack, k) for k in emitted), timeout=timeout, interval=1.0)
    finished_at = {k: peer_done(stack, k) for k in emitted}
    completed = [t - emitted[k] for k, t in finished_at.items() if t]
    last = max((t for t in finished_at.values() if t), default=first)
    return {
        "singles": done,
        "burst": completed,
        "burst_completed": len(completed),
        "burst_elapsed": last - first,
    }


def flow_runs(since: float) -> dict[str, list[Any]]:
    """{deployment: [(run, [(state type, timestamp)])]} of runs created after ``since``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    after = datetime.fromtimestamp(since, UTC) - timedelta(seconds=1)
    found: dict[str, list[Any]] = {}
    with get_client(sync_client=True) as client:
        names = {d.id: d.name for d in client.read_deployments()}
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=after)),
            limit=200,
        )
        for run in runs:
            if run.start_time is None or epoch(run.start_time) < since - 1:
                continue  # a scheduled run not started yet (the schedules look ahead)
            states = client.read_flow_run_states(run.id)
            name = names.get(run.deployment_id, "?") if run.deployment_id else "?"
            found.setdefault(name, []).append((run, states))
    return found


def stages(runs: list[Any]) -> str:
    """Medians of created -> pending (picked up) -> running (process started, flow
    loaded) -> final, over ``runs``."""
    parts: dict[str, list[float]] = {"pickup": [], "start": [], "run": []}
    for run, states in runs:
        at = {s.type.value: epoch(s.timestamp) for s in states}
        if {"PENDING", "RUNNING"} <= set(at):
            parts["pickup"].append(at["PENDING"] - epoch(run.created))
            parts["start"].append(at["RUNNING"] - at["PENDING"])
        final = [t for k, t in at.items() if k in ("COMPLETED", "FAILED", "CANCELLED")]
        if "RUNNING" in at and final:
            parts["run"].append(max(final) - at["RUNNING"])
    return ", ".join(f"{name} {statistics.median(v):.2f} s" for name, v in parts.items() if v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("worker", "serve"), default="worker")
    parser.add_argument(
        "--query-seconds",
        type=float,
        default=1.0,
        help="worker polling (PREFECT_WORKER_QUERY_SECONDS) / runner polling",
    )
    parser.add_argument(
        "--engine-command",
        action="store_true",
        help="set the work pool's job variable `command` (python -m prefect.engine)",
    )
    parser.add_argument("--within", type=int, default=10, help="the journey trigger's throttle")
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument(
        "--gap", type=float, default=0.0, help="seconds between single events (default: within + 2)"
    )
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--peer-burst", type=int, default=200)
    parser.add_argument("--peer-timeout", type=float, default=240)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()  # fmt: skip

    tmp = Path(tempfile.mkdtemp(prefix="omni-latency-"))
    stack = Stack(tmp, args.mode, args.query_seconds, args.within, args.engine_command)
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.2f}, "
        f"mode {args.mode}{' (engine command)' if args.engine_command else ''}, "
        f"polling {args.query_seconds} s, within {args.within} s, {tmp}"
    )
    started = time.monotonic()
    try:
        stack.start()
        os.environ.update(
            {k: v for k, v in stack.env.items() if k.startswith(("PREFECT_", "OMNI_"))}
        )
        print(f"stack up in {time.monotonic() - started:.1f} s")
        shop = Shop(stack)
        t_singles = time.time()
        rows, sent, held = singles(shop, args.singles, args.gap or args.within + 2)
        single_runs = flow_runs(t_singles)
        print(f"\n# singles ({args.singles} events, {held} in the holdout)")
        print(line("event -> outbox row", rows))
        print(line("event -> sent", sent))
        for name, runs in sorted(single_runs.items()):
            print(f"  {name}: {len(runs)} flow runs; {stages(runs)}")
        b = burst(shop, args.burst, args.batches, timeout=300) if args.burst else None
        if b is not None:
            burst_runs = flow_runs(b["first"])
            print(f"\n# burst ({args.burst} events in {args.batches} HTTP batches, "
                  f"accepted in {b['accepted_in']:.1f} s)")  # fmt: skip
            print(line("event -> outbox row", b["rows"]))
            print(line("event -> sent", b["sent"]))
            print(f"  {b['messages']} messages, {b['unsent']} not sent; all sent "
                  f"{b['all_sent_after']:.1f} s after the first batch; "
                  f"{len(b['sent']) / max(b['all_sent_after'], 1e-9):.0f} messages/s")  # fmt: skip
            for name, runs in sorted(burst_runs.items()):
                print(f"  {name}: {len(runs)} flow runs")
        p = peer(stack, args.singles, args.peer_burst, args.peer_timeout)
        print("\n# Prefect-only peer (a trigger and a flow run per event)")
        print(line("event -> done, one at a time", p["singles"]))
        print(line(f"event -> done, burst of {args.peer_burst}", p["burst"]))
        rate = p["burst_completed"] / max(p["burst_elapsed"], 1e-9)
        print(f"  {p['burst_completed']} of {args.peer_burst} done in "
              f"{p['burst_elapsed']:.1f} s: {rate:.2f} events/s")  # fmt: skip
        peer_runs = flow_runs(t_singles).get("peer", [])
        print(f"  peer: {len(peer_runs)} flow runs; {stages(peer_runs)}")
        if b is not None and rate:
            ours = len(b["sent"]) / max(b["all_sent_after"], 1e-9)
            print(f"\nthroughput, ours / peer: {ours / rate:,.0f}x")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    finally:
        stack.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
