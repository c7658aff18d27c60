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

One sender at a time: the run holds the ``dispatch-sender`` concurrency slot while it
sends (``flows/_sending.py``), as does an ``advance`` run that sends what it queued;
a run that waits over ``SENDER_WAIT_SECONDS`` for it sends nothing (the other sender
drains the outbox, or the next run goes on).

Every run publishes ``dispatch-in-doubt``: the messages in doubt (a sender died during
their provider call; :mod:`omni_journey.delivery.in_doubt`), ids and times only.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from sqlalchemy import Engine

from flows._artifacts import markdown_table, publish_summary, publish_table
from flows._common import parse_shard, resolve_now, run_name, stamp, tag_flow_run
from flows._sending import (
    SendBatchError,
    Sent,
    provider_problems,
    send_batch,
    send_due,
    sender_slot,
)
from omni_journey.delivery import DispatchReport, load_providers
from omni_journey.delivery.in_doubt import InDoubt, list_in_doubt
from omni_journey.delivery.ratelimit import limits_shared
from omni_journey.service.pipeline import project_renderer, worker_id
from omni_journey.settings import Settings, get_settings
from omni_journey.store import open_store

__all__ = ["SendBatchError", "dispatch_outbox", "provider_problems", "send_batch"]

# how long a run waits for another sender (an advance run sending what it queued) to
# finish; under the every-minute schedule, so runs never pile up
SENDER_WAIT_SECONDS = 45


def _since(started: float) -> timedelta:
    return timedelta(seconds=time.monotonic() - started)


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
    shard: str | None = None,
) -> dict[str, Any]:
    """Send due outbox messages (at most ``limit``) in batches; returns the summed
    dispatch report (claimed, sent, failed, suppressed, retried, deferred, ...).
    ``shard`` (``"I/N"``): only the messages to that shard of the customers, so N runs
    share the outbox (on PostgreSQL they send side by side: docs/scaling.md).

    ``simulated``: ``now`` is a simulated time (the demo): every timestamp of the pass
    (claims, ``sent_at``, events) is ``now`` instead of ``now`` plus the wall-clock
    time the pass has taken, so a replay gives the same outbox on any machine."""
    logger = get_run_logger()
    started = time.monotonic()
    part = parse_shard(shard)
    at = resolve_now(now)
    settings = get_settings()
    providers = load_providers(settings)
    renderer = project_renderer(settings)
    tag_flow_run(f"channel:{c}" for c in sorted(providers))
    worker = f"prefect-{str(flow_run.id or worker_id())[:8]}"
    engine = open_store(settings.resolved_database_url)
    sent = Sent()
    try:
        try:
            with sender_slot(timeout_seconds=SENDER_WAIT_SECONDS, shared=limits_shared(engine)):
                sent = send_due(
                    engine,
                    providers,
                    renderer,
                    settings,
                    at=at,
                    worker=worker,
                    limit=limit,
                    max_batches=max_batches,
                    simulated=simulated,
                    shard=part,
                )
        except TimeoutError:
            logger.info(
                "another run kept sending for over %d s; it drains the outbox, "
                "or the next run does",
                SENDER_WAIT_SECONDS,
            )
        in_doubt = _in_doubt(engine, at if simulated else at + _since(started), settings)
    finally:
        engine.dispose()
    total, failures, batches = sent.total, sent.failures, sent.batches
    _publish(total, failures, batches, at, in_doubt)
    logger.info("dispatched in %d batches: %s", batches, total.summary())
    if failures:
        raise RuntimeError(f"{len(failures)} of {batches} send batches failed: " + failures[0])
    return total.as_dict() | {"batches": batches}


if __name__ == "__main__":
    dispatch_outbox()
