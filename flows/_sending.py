"""Sending the due outbox, shared by ``dispatch`` and by ``advance`` (``send=True``).

One ``send-batch-<n>`` task is one pass of :func:`omni_journey.delivery.dispatch` over
at most ``OMNI_DISPATCH_BATCH_SIZE`` claimed messages. :func:`send_due` runs batches
until the outbox is drained (a batch claims fewer than asked), a provider pauses, or
``max_batches`` ran.

**One sender at a time, on SQLite.** There the rate limits (``OMNI_RATE_LIMITS``) are
token buckets in the sending process, so two processes sending at once would each send
at the full rate. Every sender therefore holds the Prefect global concurrency limit
``dispatch-sender`` (1 slot, created on first use) for as long as it sends: a scheduled
``dispatch`` and an ``advance`` run that sends what it queued take turns, never
overlap. The slot's lease expires when a sender dies. On PostgreSQL the limits are one
token bucket per provider in the store, shared by every sender, so senders take no
turn: runs send side by side, each shard's (``shard``) or all. Claims in the outbox stay
exclusive either way (a message is claimed by one sender, sent once), so the slot
protects the providers, not the messages.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.concurrency.sync import concurrency
from prefect.logging import get_run_logger
from sqlalchemy import Engine, and_, func, select

from flows._artifacts import Progress
from flows._common import ensure_limits, retry_transient
from omni_journey.delivery import DispatchReport, Renderer, dispatch
from omni_journey.delivery.base import Provider
from omni_journey.delivery.ratelimit import TokenBucket
from omni_journey.settings import Settings
from omni_journey.store.core import MESSAGES
from omni_journey.store.shards import ALL, Shard

__all__ = [
    "SENDER_LIMIT",
    "SendBatchError",
    "Sent",
    "count_due",
    "provider_problems",
    "send_batch",
    "send_due",
    "sender_slot",
]

SENDER_LIMIT = "dispatch-sender"
SENDER_LEASE_SECONDS = 300  # a dead sender's slot frees itself after this

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
    shard: Shard = ALL,
) -> DispatchReport:
    """Claim and send at most ``limit`` due messages (one dispatcher pass; only to
    ``shard``'s customers); ``simulated``: stamp everything with ``now`` (see
    ``dispatch_outbox``)."""
    report = dispatch(
        engine,
        providers,
        renderer,
        now=now,
        settings=settings,
        worker_id=f"{worker}:{number}"[:64],
        limit=limit,
        shard=shard,
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


def count_due(engine: Engine, now: datetime) -> int:
    """Pending outbox messages due at ``now``."""
    with engine.connect() as connection:
        found: Any = connection.execute(
            select(func.count()).where(
                and_(MESSAGES.c.status == "pending", MESSAGES.c.send_after <= now)
            )
        ).scalar_one()
    return int(found)


def merge(total: DispatchReport, part: DispatchReport) -> None:
    """Add ``part``'s counts to ``total``."""
    for name in ("claimed", "sent", "failed", "suppressed", "retried", "deferred", "in_doubt"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.claims_lost += part.claims_lost
    for provider, counts in part.by_provider.items():
        total.by_provider[provider].update(counts)
    total.errors.update(part.errors)
    total.paused.update(part.paused)


@dataclass
class Sent:
    """What :func:`send_due` did: the summed report, failed batches, batches run."""

    total: DispatchReport = field(default_factory=DispatchReport)
    failures: list[str] = field(default_factory=list)
    batches: int = 0


def send_due(
    engine: Engine,
    providers: dict[str, Provider],
    renderer: Renderer,
    settings: Settings,
    *,
    at: datetime,
    worker: str,
    limit: int | None = None,
    max_batches: int = 200,
    simulated: bool = False,
    shard: Shard = ALL,
) -> Sent:
    """Send due messages (at most ``limit``) batch by batch, as of ``at`` plus the time
    the pass has taken (``simulated``: always ``at``). The caller holds
    :func:`sender_slot`."""
    started = time.monotonic()
    batch = send_batch.with_options(timeout_seconds=settings.dispatch_claim_seconds + 60)
    sent = Sent()
    due = count_due(engine, at) if limit is None else min(limit, count_due(engine, at))
    progress = (
        Progress(f"Sending {due} due messages") if due > settings.dispatch_batch_size else None
    )
    remaining = limit
    while sent.batches < max_batches and (remaining is None or remaining > 0):
        size = settings.dispatch_batch_size
        if remaining is not None:
            size = min(size, remaining)
        sent.batches += 1
        wall = at if simulated else at + timedelta(seconds=time.monotonic() - started)
        state: State[Any] = batch(
            engine,
            providers,
            renderer,
            settings,
            number=sent.batches,
            now=wall,
            limit=size,
            worker=worker,
            simulated=simulated,
            shard=shard,
            return_state=True,
        )
        result = state.result(raise_on_failure=False)
        report = result.report if isinstance(result, SendBatchError) else result
        if not isinstance(report, DispatchReport):  # the task itself broke
            sent.failures.append(f"batch {sent.batches}: {state.message}")
            break
        merge(sent.total, report)
        if isinstance(result, SendBatchError):
            sent.failures.append(f"batch {sent.batches}: {result}")
        if remaining is not None:
            remaining -= report.claimed
        if progress is not None:
            progress.update(sent.total.claimed, due)
        if report.claimed < size or report.paused:
            break
    return sent


@contextmanager
def sender_slot(*, timeout_seconds: float, shared: bool = False) -> Iterator[None]:
    """Hold ``dispatch-sender`` (see the module's docstring); ``TimeoutError`` when
    another run keeps sending for longer than ``timeout_seconds``. ``shared``: the rate
    limits hold across processes already
    (:func:`omni_journey.delivery.ratelimit.limits_shared`), so senders need no turn:
    several send at once, each claiming its own messages."""
    if shared:
        yield
        return
    ensure_limits([SENDER_LIMIT])
    with concurrency(
        SENDER_LIMIT,
        occupy=1,
        timeout_seconds=timeout_seconds,
        lease_duration=SENDER_LEASE_SECONDS,
    ):
        yield
