"""What Prefect orchestration costs on this machine: flow runs, task runs, batches.

    .venv/bin/python -m bench.prefect_costs                 # a temporary Prefect server
    .venv/bin/python -m bench.prefect_costs --runs 10 --sample 300
    PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/python -m bench.prefect_costs

Measures, against a real Prefect API (``prefect_test_harness`` unless
``PREFECT_API_URL`` is set):

1. an empty flow run: sync (default heartbeats), sync with heartbeats off, async;
2. a task run inside a flow, called directly and submitted to the thread pool;
3. 10,000 messages (``--messages``) as 20 batch tasks (``--batches``) against one task
   per message, the latter timed on ``--sample`` messages and extrapolated; the same
   per-message work (render a short text, hash it) runs in both, and bare (no Prefect);
4. how long the server takes to record the sample's task runs after the flow returned;
5. six task runs (one per journey, as ``advance`` runs them) untagged and each with a
   ``journey:<key>`` tag, and six 1-slot global concurrency limits taken in the flow
   around each task and inside each task (median flow-run time of ``--runs`` runs).

Prints medians and the ratios between figures of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def work(message: int) -> str:
    """The same small per-message work in every variant."""
    text = (
        f"Hi customer {message}, still thinking about Serum? https://shop.example.com/p/{message}"
    )
    return hashlib.sha256(text.encode()).hexdigest()


@contextlib.contextmanager
def prefect_api() -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    from prefect.testing.utilities import prefect_test_harness

    with tempfile.TemporaryDirectory() as home:
        Path(home).mkdir(exist_ok=True)
        with (
            temporary_settings(updates={PREFECT_HOME: Path(home)}),
            prefect_test_harness(server_startup_timeout=120),
        ):
            yield str(PREFECT_API_URL.value())


def timed(call: Callable[[], Any], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="flow runs per flow measurement")
    parser.add_argument("--tasks", type=int, default=200, help="tasks for the per-task cost")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--sample", type=int, default=200, help="one-task-per-message sample")
    args = parser.parse_args()

    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    @flow
    def empty_flow() -> None:
        return None

    @flow
    async def empty_async_flow() -> None:
        return None

    @task(cache_policy=NO_CACHE)
    def one_message(message: int) -> str:
        return work(message)

    @task(cache_policy=NO_CACHE)
    def batch_of(messages: list[int]) -> int:
        for message in messages:
            work(message)
        return len(messages)

    @flow
    def tasks_direct(count: int) -> Any:
        for i in range(count):
            one_message(i)
        from prefect.runtime import flow_run

        return flow_run.id

    @flow
    def tasks_submitted(count: int) -> Any:
        futures = [one_message.submit(i) for i in range(count)]
        for future in futures:
            future.result()
        from prefect.runtime import flow_run

        return flow_run.id

    @flow
    def as_batches(messages: int, batches: int) -> Any:
        size = -(-messages // batches)
        for start in range(0, messages, size):
            batch_of(list(range(start, min(start + size, messages))))
        from prefect.runtime import flow_run

        return flow_run.id

    @flow
    def per_message(messages: int) -> Any:
        for i in range(messages):
            one_message(i)
        from prefect.runtime import flow_run

        return flow_run.id

    from prefect import tags as tagged
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.sync import concurrency

    journeys = [f"bench-journey-{i}" for i in range(6)]

    @task(cache_policy=NO_CACHE)
    def journey_task(key: str) -> str:
        return work(len(key))

    @task(cache_policy=NO_CACHE)
    def journey_task_with_slot(key: str) -> str:
        with concurrency(key, occupy=1, timeout_seconds=60):
            return work(len(key))

    @flow
    def six_untagged() -> None:
        for key in journeys:
            journey_task(key)

    @flow
    def six_tagged() -> None:
        for key in journeys:
            with tagged(f"journey:{key}"):
                journey_task(key)

    @flow
    def six_slots_in_flow() -> None:
        for key in journeys:
            with concurrency(key, occupy=1, timeout_seconds=60):
                journey_task(key)

    @flow
    def six_slots_in_tasks() -> None:
        for key in journeys:
            journey_task_with_slot(key)

    def recorded(run_id: Any) -> int:
        with get_client(sync_client=True) as client:
            response = client.request(
                "POST",
                "/task_runs/count",
                json={"flow_runs": {"id": {"any_": [str(run_id)]}}},
            )
            return int(response.json())

    with prefect_api() as url:
        print(f"Prefect API: {url}; load average {os.getloadavg()[0]:.2f}")
        empty_flow()  # warm up: imports, client, first-run set-up
        sync = statistics.median(timed(empty_flow, args.runs))
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            quiet = statistics.median(timed(empty_flow, args.runs))

        async def async_runs() -> list[float]:
            await empty_async_flow()
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                await empty_async_flow()
                times.append(time.perf_counter() - started)
            return times

        asynchronous = statistics.median(asyncio.run(async_runs()))

        def settle(run_id: Any, expected: int) -> float:
            """Seconds until the server has recorded the run's ``expected`` task runs."""
            started = time.perf_counter()
            while recorded(run_id) < expected and time.perf_counter() - started < 300:
                time.sleep(0.5)
            return time.perf_counter() - started

        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            bare = timed(lambda: [work(i) for i in range(args.messages)], 1)[0]
            batch_times = []
            for _ in range(3):
                started = time.perf_counter()
                run_id = as_batches(args.messages, args.batches)
                batch_times.append(time.perf_counter() - started)
                settle(run_id, args.batches)
            batched = statistics.median(batch_times)
            started = time.perf_counter()
            run_id = tasks_direct(args.tasks)
            direct = (time.perf_counter() - started - quiet) / args.tasks
            settle(run_id, args.tasks)
            started = time.perf_counter()
            run_id = tasks_submitted(args.tasks)
            submitted = (time.perf_counter() - started - quiet) / args.tasks
            settle(run_id, args.tasks)
            started = time.perf_counter()
            sample_run = per_message(args.sample)
            sampled = time.perf_counter() - started
            lag = settle(sample_run, args.sample)
        extrapolated = quiet + (sampled - quiet) * args.messages / args.sample

        with get_client(sync_client=True) as client:
            for key in journeys:
                with contextlib.suppress(Exception):
                    client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(name=key, limit=1)
                    )
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            journey_costs = {}
            for name, variant in (
                ("6 journey tasks, untagged", six_untagged),
                ("6 journey tasks, each tagged journey:<key>", six_tagged),
                ("6 journey tasks, slot taken in the flow", six_slots_in_flow),
                ("6 journey tasks, slot taken inside each task", six_slots_in_tasks),
            ):
                variant()  # warm up
                journey_costs[name] = statistics.median(timed(variant, args.runs))

    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    rows = [
        ("sync flow run (default heartbeats)", sync),
        ("sync flow run (heartbeats off)", quiet),
        ("async flow run", asynchronous),
        ("task run, called in a flow", direct),
        ("task run, submitted to the thread pool", submitted),
        (f"{args.messages:,} messages, no Prefect", bare),
        (f"{args.messages:,} messages as {args.batches} batch tasks (one flow)", batched),
        (f"{args.sample} messages, one task each (one flow)", sampled),
        (f"{args.messages:,} messages, one task each (extrapolated)", extrapolated),
        (f"server recording {args.sample} task runs after the flow", lag),
    ]
    rows += list(journey_costs.items())
    print()
    for name, seconds in rows:
        print(f"{name:<62} {seconds:9.3f} s")
    print()
    print(f"sync / async flow run:                 {sync / asynchronous:6.1f}x")
    print(f"sync default / heartbeats off:         {sync / quiet:6.1f}x")
    print(f"one task per message / batch tasks:    {extrapolated / batched:6.1f}x")
    print(f"batch tasks / no Prefect:              {batched / bare:6.1f}x")
    costs = list(journey_costs.values())  # untagged, tagged, slots in flow, in tasks
    print(f"tagged / untagged journey tasks:       {costs[1] / costs[0]:6.1f}x")
    print(f"slots in tasks / slots in the flow:    {costs[3] / costs[2]:6.1f}x")


if __name__ == "__main__":
    main()
