"""``advance``: one pass over the journeys (all, or one), one task per journey.

Each task runs while the flow holds the journey's Prefect concurrency slot
(``advance-<journey>``, created with 1 slot on first use), so two runs never advance
one journey at once; :class:`~omni_journey.runner.passes.JourneyRunner` enters
customers from new trigger events, applies exits, goals and waits, wakes due
enrollments and queues sends in the outbox, batch by batch. Deployment triggers start
it for one journey within seconds of its trigger event; the every-minute schedule runs
all journeys as a safety net (waits that come due, anything a throttle left behind).

With ``send=True`` (what the generated triggers pass) a pass that queued messages then
sends the outbox's due messages itself, with the ``dispatch`` flow's ``send-batch``
task, while it holds the one-sender slot (``flows/_sending.py``): a message due now
goes out seconds after its event instead of at the next scheduled ``dispatch``. If a
``dispatch`` run is sending, the pass leaves its messages to it (or to the next one).

Artifacts: a per-step table for every journey advanced (key ``advance-<journey>``), a
markdown summary of the pass, and progress when there is more than one journey.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from sqlalchemy import Engine

from flows._artifacts import (
    JourneyPass,
    Progress,
    journey_step_rows,
    last_log_id,
    markdown_table,
    publish_summary,
    publish_table,
    summarize,
)
from flows._common import (
    ensure_journey_locks,
    journey_locks,
    journey_tags,
    parse_shard,
    resolve_now,
    retry_transient,
    run_name,
    stamp,
    tag_flow_run,
)
from flows._sending import Sent, send_due, sender_slot
from omni_journey.delivery import load_providers
from omni_journey.delivery.ratelimit import limits_shared
from omni_journey.runner.passes import JourneyRunner
from omni_journey.service.pipeline import (
    build_runner,
    load_valid_project,
    project_renderer,
    worker_id,
)
from omni_journey.settings import Settings, get_settings
from omni_journey.spec.project import Project
from omni_journey.store import open_store
from omni_journey.store.shards import ALL, Shard

__all__ = ["AdvanceError", "advance", "advance_journey"]

TASK_TIMEOUT_SECONDS = 1800
LOCK_TIMEOUT_SECONDS = 600
# how long a sending pass waits for a dispatch run that is sending: it drains the
# outbox itself, so waiting longer only keeps this run alive
SENDER_WAIT_SECONDS = 10
# the pass's counters of outbox rows it wrote (messages, webhook calls)
_OUTBOX_COUNTERS = ("queued", "webhooks")


class AdvanceError(RuntimeError):
    """Some journeys could not be advanced (their tasks failed; the others went on)."""


@task(
    name="advance-journey",
    task_run_name="advance-{journey_key}",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retry_transient,
    timeout_seconds=TASK_TIMEOUT_SECONDS,
    cache_policy=NO_CACHE,
)
def advance_journey(runner: JourneyRunner, journey_key: str, now: datetime) -> JourneyPass:
    """Advance one journey as of ``now`` (the caller holds its concurrency slot);
    idempotent, so a retry after a crash redoes only what was not committed."""
    logger = get_run_logger()
    before = last_log_id(runner.engine)
    report = runner.run(now, only=[journey_key])
    steps = journey_step_rows(runner.engine, runner.journeys[journey_key], after_log_id=before)
    counts = dict(report.journeys.get(journey_key, {}))
    logger.info("%s: %s", journey_key, summarize(counts))
    return JourneyPass(journey_key, counts, steps)


def _keys(project: Project, journey: str | None) -> list[str]:
    if journey is not None:
        project.journey(journey)  # SpecError naming the file, or "did you mean"
        return [journey]
    return sorted(key for key, spec in project.journeys.items() if spec.enabled)


def _advance(
    engine: Engine,
    project: Project,
    settings: Settings,
    keys: list[str],
    at: datetime,
    shard: Shard = ALL,
) -> tuple[list[JourneyPass], dict[str, str]]:
    runner = build_runner(engine, project, settings, shard=shard)
    progress = Progress(f"Advancing {len(keys)} journeys") if len(keys) > 1 else None
    passes: list[JourneyPass] = []
    failed: dict[str, str] = {}
    for number, key in enumerate(keys, start=1):
        # The journey's slot is taken here, in the flow, around its task and the task's
        # retries, and the tags are on the flow run, not on the tasks: on Prefect 3.8 a
        # slot taken inside a task run, or a tagged task run, often waited about 2 s
        # (bench/README.md, "Prefect costs"). One journey at a time, so a run started
        # by a trigger waits only for that journey, never for a whole pass.
        try:
            with journey_locks([key], timeout_seconds=LOCK_TIMEOUT_SECONDS, shard=shard):
                state: State[Any] = advance_journey(runner, key, at, return_state=True)
        except TimeoutError:
            failed[key] = f"another run held the journey for over {LOCK_TIMEOUT_SECONDS} s"
        else:
            if state.is_completed():
                passes.append(state.result())
            else:
                failed[key] = state.message or state.name or "failed"
        if progress is not None:
            progress.update(number, len(keys))
    return passes, failed


def _publish(passes: list[JourneyPass], failed: dict[str, str], at: datetime, subject: str) -> None:
    when = stamp(at)
    for result in passes:
        publish_table(
            result.steps,
            key=("advance", result.journey),
            description=f"{result.journey} at {when}: what this pass did per step, "
            "and who waits where now",
        )
    totals = [
        {
            "journey": p.journey,
            "entered": p.counts.get("entered", 0),
            "queued": p.counts.get("queued", 0),
            "skipped": p.counts.get("skipped", 0),
            "deferred": p.counts.get("deferred", 0),
            "converted": p.counts.get("converted", 0),
            "exited": p.counts.get("exited", 0) + p.counts.get("completed", 0),
        }
        for p in passes
    ]
    lines = [f"# Journey pass at {when} UTC", "", markdown_table(totals), ""]
    for p in passes:
        lines.append(f"- **{p.journey}**: {summarize(p.counts)}")
    for key, reason in sorted(failed.items()):
        lines.append(f"- **{key}**: FAILED: {reason}")
    publish_summary(
        "\n".join(lines),
        key=("advance", subject, "summary"),
        description=f"Journey pass at {when}",
    )


@flow(
    name="advance",
    flow_run_name=run_name("advance", "journey"),
    timeout_seconds=3 * 3600,
)
def advance(
    journey: str | None = None,
    now: datetime | None = None,
    send: bool = False,
    shard: str | None = None,
) -> dict[str, dict[str, int]]:
    """Advance every enabled journey, or only ``journey``, as of ``now`` (default: the
    clock); with ``send``, then send the due outbox if the pass queued anything.
    ``shard`` (``"I/N"``, PostgreSQL): only that shard of the customers, so N runs share
    a pass (docs/scaling.md). Returns each journey's counters (entered,
    queued:<channel>, skipped:<reason>, deferred, exited, converted...)."""
    logger = get_run_logger()
    part = parse_shard(shard)
    at = resolve_now(now)
    settings = get_settings()
    project = load_valid_project(settings)
    keys = _keys(project, journey)
    tag_flow_run(tag for key in keys for tag in journey_tags(project.journeys[key]))
    if not keys:
        logger.info("no enabled journeys in %s", settings.project_dir)
        return {}
    ensure_journey_locks(keys, part)
    engine = open_store(settings.resolved_database_url)
    try:
        passes, failed = _advance(engine, project, settings, keys, at, part)
        _publish(passes, failed, at, journey or "all")
        queued = sum(p.counts.get(c, 0) for p in passes for c in _OUTBOX_COUNTERS)
        logger.info(
            "advanced %d journeys: %s",
            len(passes),
            summarize(_total(p.counts for p in passes)),
        )
        # the clock's time now (the pass took a while), or the time the caller gave
        sent = (
            _send(engine, settings, resolve_now(None) if now is None else at, part)
            if send and queued
            else None
        )
    finally:
        engine.dispose()
    problems = [f"{key}: {reason}" for key, reason in sorted(failed.items())]
    if sent is not None and sent.failures:
        problems.append(
            f"{len(sent.failures)} of {sent.batches} send batches failed: " + sent.failures[0]
        )
    if problems:
        raise AdvanceError("could not advance " + "; ".join(problems))
    return {p.journey: p.counts for p in passes}


def _send(engine: Engine, settings: Settings, at: datetime, shard: Shard = ALL) -> Sent | None:
    """Send the due outbox now (one sender at a time); None when a dispatch run was
    sending for longer than :data:`SENDER_WAIT_SECONDS` (it, or the next, sends)."""
    from flows.dispatch import _publish as publish_sent

    logger = get_run_logger()
    providers = load_providers(settings)
    renderer = project_renderer(settings)
    worker = f"prefect-{str(flow_run.id or worker_id())[:8]}"
    try:
        with sender_slot(timeout_seconds=SENDER_WAIT_SECONDS, shared=limits_shared(engine)):
            sent = send_due(
                engine, providers, renderer, settings, at=at, worker=worker, shard=shard
            )
    except TimeoutError:
        logger.info("a dispatch run is sending: it sends what this pass queued")
        return None
    publish_sent(sent.total, sent.failures, sent.batches, at)
    logger.info("sent in %d batches: %s", sent.batches, sent.total.summary())
    return sent


def _total(counts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for counter in counts:
        for name, value in counter.items():
            total[name] = total.get(name, 0) + value
    return total


if __name__ == "__main__":
    advance()
