"""``dispatch``: send what the outbox holds, one task per outbox batch.

Each ``send-batch-<n>`` task is one pass of :func:`omni_journey.delivery.dispatch`
over at most ``OMNI_DISPATCH_BATCH_SIZE`` claimed messages (provider chunks, rate
limits, retries with backoff, suppressions, in-flight marks: all inside). The flow
stops when a batch claims fewer messages than asked (the outbox is drained), when a
provider pauses (quota: the next scheduled run goes on), or after ``max_batches``.

A batch whose provider calls failed ends as a **failed task** whose message names
the provider error codes and counts (the messages themselves are already recorded:
retried later with backoff, or failed). It is not retried by Prefect, because the
dispatcher already handles each message's retries; a task is retried only for a
transient failure of its own (the database busy or gone).

Every run publishes ``dispatch-in-doubt``: the messages in doubt (a sender died during
their provider call; :mod:`omni_journey.delivery.in_doubt`), ids and times only.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from sqlalchemy import Engine, and_, func, select

from flows._artifacts import Progress, markdown_table, publish_summary, publish_table
from flows._common import resolve_now, retry_transient, run_name, stamp, tag_flow_run
from omni_journey.delivery import DispatchReport, Renderer, dispatch, load_providers
from omni_journey.delivery.base import Provider
from omni_journey.delivery.in_doubt import InDoubt, list_in_doubt
from omni_journey.delivery.ratelimit import TokenBucket
from omni_journey.service.pipeline import project_renderer, worker_id
from omni_journey.settings import Settings, get_settings
from omni_journey.store import open_store
from omni_journey.store.core import MESSAGES

__all__ = ["SendBatchError", "dispatch_outbox", "send_batch"]

# error sources that are about one record, not about a provider call
_RECORD_LEVEL = frozenset({"dispatch"})


class SendBatchError(RuntimeError):
    """Provider calls in a batch failed; ``report`` says what happened to each message."""

    def __init__(self, report: DispatchReport, problems: dict[str, int]) -> None:
        self.report = report
        self.problems = problems
        paused = "; paused " + ", ".join(sorted(report.paused)) if report.paused else ""
        detail = ", ".join(f"{code} x{n}" for code, n in sorted(problems.items()))
        super().__init__(
            f"{report.failed} failed and {report.retried} to retry of {report.claimed} "
            f"messages: {detail}{paused}"
        )


def provider_problems(report: DispatchReport) -> dict[str, int]:
    """``provider:code`` -> count of the batch's provider-side errors (throttling,
    rejected addresses, crashes, render errors); per-record checks such as an unknown
    customer or a missing address are counted in the artifacts, not failed on."""
    return {
        code: count
        for code, count in report.errors.items()
        if code.split(":", 1)[0] not in _RECORD_LEVEL
    }


@task(
    name="send-batch",
    task_run_name="send-batch-{number}",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def send_batch(
    engine: Engine,
    providers: dict[str, Provider],
    renderer: Renderer,
    settings: Settings,
    *,
    number: int,
    now: datetime,
    limit: int,
    worker: str,
    simulated: bool = False,
) -> DispatchReport:
    """Claim and send at most ``limit`` due messages (one dispatcher pass);
    ``simulated``: stamp everything with ``now`` (see :func:`dispatch_outbox`)."""
    report = dispatch(
        engine,
        providers,
        renderer,
        now=now,
        settings=settings,
        worker_id=f"{worker}:{number}"[:64],
        limit=limit,
        **(_frozen_clock(settings, providers) if simulated else {}),
    )
    get_run_logger().info("batch %d: %s", number, report.summary())
    problems = provider_problems(report)
    if problems or report.paused:
        raise SendBatchError(report, problems)
    return report


def _still() -> float:
    return 0.0


def _frozen_clock(settings: Settings, providers: dict[str, Provider]) -> dict[str, Any]:
    """A dispatcher clock that never moves (timestamps stay at the pass's ``now``);
    the rate limits keep the real clock: they protect a provider in real time."""
    rates = settings.provider_rate_limits
    buckets = {p.name: TokenBucket(rates.get(p.name)) for p in providers.values()}
    return {"clock": _still, "rate_limiters": buckets}


def _since(started: float) -> timedelta:
    return timedelta(seconds=time.monotonic() - started)


def _due(engine: Engine, now: datetime) -> int:
    with engine.connect() as connection:
        found: Any = connection.execute(
            select(func.count()).where(
                and_(MESSAGES.c.status == "pending", MESSAGES.c.send_after <= now)
            )
        ).scalar_one()
    return int(found)


def _merge(total: DispatchReport, part: DispatchReport) -> None:
    for name in ("claimed", "sent", "failed", "suppressed", "retried", "deferred", "in_doubt"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.claims_lost += part.claims_lost
    for provider, counts in part.by_provider.items():
        total.by_provider[provider].update(counts)
    total.errors.update(part.errors)
    total.paused.update(part.paused)


def _in_doubt(engine: Engine, at: datetime, settings: Settings) -> list[InDoubt]:
    """The messages in doubt; a row not yet given a provider shows its channel's one."""
    with engine.connect() as connection:
        found = list_in_doubt(connection, now=at, limit=IN_DOUBT_LISTED)
    return [
        item
        if item.provider
        else replace(item, provider=str(getattr(settings, f"{item.channel}_provider", "")))
        for item in found
    ]


IN_DOUBT_LISTED = 200  # rows in the artifact; the summary gives the count


def _publish_in_doubt(found: list[InDoubt], when: str) -> None:
    """``dispatch-in-doubt``: the messages in doubt now (ids, journey, step, channel,
    provider, since; never an address), published every run so it is never stale."""
    rows = [{k: v for k, v in item.as_dict().items() if k != "enrollment_id"} for item in found]
    publish_table(
        rows,
        key=("dispatch", "in-doubt"),
        description=f"Messages in doubt at {when} (omni-journey messages in-doubt)",
    )


def _publish(
    total: DispatchReport,
    failures: list[str],
    batches: int,
    at: datetime,
    in_doubt: list[InDoubt] | None = None,
) -> None:
    when = stamp(at)
    if in_doubt is not None:
        _publish_in_doubt(in_doubt, when)
    columns = ("sent", "failed", "suppressed", "retried", "deferred")
    rows = [
        {"provider": provider, **{c: counts.get(c, 0) for c in columns}}
        for provider, counts in sorted(total.by_provider.items())
    ]
    rows.append({"provider": "(all)", **{c: getattr(total, c) for c in columns}})
    publish_table(rows, key=("dispatch",), description=f"Outbox pass at {when}, per provider")
    errors = [{"error": code, "count": n} for code, n in sorted(total.errors.items())]
    lines = [
        f"# Outbox pass at {when} UTC",
        "",
        f"{batches} batches: {total.summary()}",
        "",
        markdown_table(rows),
    ]
    if errors:
        lines += ["", "## Errors", "", markdown_table(errors)]
    if failures:
        lines += ["", "## Failed batches", ""] + [f"- {f}" for f in failures]
    if in_doubt:
        more = "+" if len(in_doubt) >= IN_DOUBT_LISTED else ""
        lines += [
            "",
            "## In doubt",
            "",
            f"{len(in_doubt)}{more} messages in doubt (a sender died during the provider "
            "call): see the `dispatch-in-doubt` table or `omni-journey messages in-doubt`",
        ]
    publish_summary("\n".join(lines), key=("dispatch", "summary"), description=f"Outbox {when}")


@flow(name="dispatch", flow_run_name=run_name("dispatch"), timeout_seconds=6 * 3600)
def dispatch_outbox(
    limit: int | None = None,
    now: datetime | None = None,
    max_batches: int = 200,
    simulated: bool = False,
) -> dict[str, Any]:
    """Send due outbox messages (at most ``limit``) in batches; returns the summed
    dispatch report (claimed, sent, failed, suppressed, retried, deferred, ...).

    ``simulated``: ``now`` is a simulated time (the demo): every timestamp of the pass
    (claims, ``sent_at``, events) is ``now`` instead of ``now`` plus the wall-clock
    time the pass has taken, so a replay gives the same outbox on any machine."""
    logger = get_run_logger()
    started = time.monotonic()
    at = resolve_now(now)
    settings = get_settings()
    providers = load_providers(settings)
    renderer = project_renderer(settings)
    tag_flow_run(f"channel:{c}" for c in sorted(providers))
    worker = f"prefect-{str(flow_run.id or worker_id())[:8]}"
    batch = send_batch.with_options(timeout_seconds=settings.dispatch_claim_seconds + 60)
    engine = open_store(settings.resolved_database_url)
    total = DispatchReport()
    failures: list[str] = []
    batches = 0
    try:
        due = _due(engine, at) if limit is None else min(limit, _due(engine, at))
        progress = (
            Progress(f"Sending {due} due messages") if due > settings.dispatch_batch_size else None
        )
        remaining = limit
        while batches < max_batches and (remaining is None or remaining > 0):
            size = settings.dispatch_batch_size
            if remaining is not None:
                size = min(size, remaining)
            batches += 1
            wall = at if simulated else at + _since(started)
            state: State[Any] = batch(
                engine,
                providers,
                renderer,
                settings,
                number=batches,
                now=wall,
                limit=size,
                worker=worker,
                simulated=simulated,
                return_state=True,
            )
            result = state.result(raise_on_failure=False)
            report = result.report if isinstance(result, SendBatchError) else result
            if not isinstance(report, DispatchReport):  # the task itself broke
                failures.append(f"batch {batches}: {state.message}")
                break
            _merge(total, report)
            if isinstance(result, SendBatchError):
                failures.append(f"batch {batches}: {result}")
            if remaining is not None:
                remaining -= report.claimed
            if progress is not None:
                progress.update(total.claimed, due)
            if report.claimed < size or report.paused:
                break
        in_doubt = _in_doubt(engine, at if simulated else at + _since(started), settings)
    finally:
        engine.dispose()
    _publish(total, failures, batches, at, in_doubt)
    logger.info("dispatched in %d batches: %s", batches, total.summary())
    if failures:
        raise RuntimeError(f"{len(failures)} of {batches} send batches failed: " + failures[0])
    return total.as_dict() | {"batches": batches}


if __name__ == "__main__":
    dispatch_outbox()
