"""What the flows share: the pass's time, run names, tags, retries, journey locks.

Flows are thin: they read settings (``OMNI_*``), open the store, call the package's
use cases inside tasks (one task per journey, segment, file or outbox batch, never
one per customer or message), then publish artifacts and Prefect events.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from prefect import Task
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State, TaskRun
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from sqlalchemy.exc import DBAPIError, OperationalError

from omni_journey.errors import TransientDeliveryError
from omni_journey.spec.models import JourneySpec, SendStep
from omni_journey.store.shards import ALL, Shard

__all__ = [
    "artifact_key",
    "ensure_journey_locks",
    "ensure_limits",
    "journey_locks",
    "journey_tags",
    "lock_name",
    "parse_shard",
    "resolve_now",
    "retry_transient",
    "run_name",
    "stamp",
    "tag_flow_run",
]

LOCK_PREFIX = "advance-"


# --- time and names ----------------------------------------------------------------------


def resolve_now(now: datetime | str | None) -> datetime:
    """The pass's ``now``: the parameter (ISO 8601; naive means UTC) or the clock."""
    if now is None:
        return datetime.now(UTC)
    if isinstance(now, str):
        now = datetime.fromisoformat(now.replace("Z", "+00:00"))
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def stamp(now: datetime | str | None) -> str:
    """``2026-05-01T10:00`` (UTC, minutes): the time part of run names."""
    return resolve_now(now).strftime("%Y-%m-%dT%H:%M")


def run_name(prefix: str, subject: str | None = None, default: str = "all") -> Callable[[], str]:
    """A ``flow_run_name`` callable: ``<prefix>-<subject parameter or default>-<now>``,
    e.g. ``advance-browse_abandonment-2026-05-01T10:00``."""

    def name() -> str:
        parameters: dict[str, Any] = dict(flow_run.parameters or {})
        parts = [prefix]
        if subject is not None:
            value = parameters.get(subject)
            if isinstance(value, list | tuple):
                value = "+".join(str(v) for v in value) if value else None
            parts.append(str(value) if value else default)
        parts.append(stamp(parameters.get("now")))
        return "-".join(parts)

    return name


def artifact_key(*parts: str) -> str:
    """An artifact key (lowercase letters, digits and dashes) from ``parts``."""
    text = "-".join(parts).lower()
    return re.sub(r"[^a-z0-9-]+", "-", text).strip("-")[:200]


# --- retries -----------------------------------------------------------------------------


def is_transient(error: BaseException) -> bool:
    """Worth retrying the task: the database was busy or gone, a lock wait timed out,
    a network hiccup. A bug, a bad spec or a bad setting is not."""
    if isinstance(error, OperationalError | TimeoutError | ConnectionError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sqlite3.OperationalError):
        return True
    return isinstance(error, TransientDeliveryError)


def retry_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """``retry_condition_fn``: retry only transient failures."""
    try:
        state.result()
    except Exception as error:
        return is_transient(error)
    return False


# --- tags --------------------------------------------------------------------------------


def journey_tags(spec: JourneySpec) -> list[str]:
    """``journey:<key>`` and ``channel:<c>`` for every channel its send steps may use."""
    channels: set[str] = set()
    for step in spec.steps:
        if isinstance(step, SendStep):
            choice = step.channel
            channels.update([choice] if isinstance(choice, str) else choice)
    return [f"journey:{spec.key}", *(f"channel:{c}" for c in sorted(channels))]


def tag_flow_run(extra: Iterable[str]) -> None:
    """Add ``extra`` tags to the running flow run (best effort: tags are for the UI)."""
    run_id = flow_run.id
    wanted = sorted(set(extra))
    if run_id is None or not wanted:
        return
    try:
        current = set(flow_run.tags or [])
        if set(wanted) <= current:
            return
        with get_client(sync_client=True) as client:
            client.update_flow_run(run_id, tags=sorted(current | set(wanted)))
    except Exception as error:  # never fail a pass over a UI nicety
        get_run_logger().warning("could not tag the flow run: %s", type(error).__name__)


# --- one advance per journey at a time ---------------------------------------------------


def lock_name(journey_key: str, shard: Shard = ALL) -> str:
    """The Prefect global concurrency limit that serialises passes over one journey (or
    over one shard of it: the shards of a journey run side by side)."""
    if shard.everyone:
        return LOCK_PREFIX + journey_key
    return f"{LOCK_PREFIX}{journey_key}-shard-{shard.index}-of-{shard.count}"


def parse_shard(text: str | None) -> Shard:
    """A flow's ``shard`` parameter (``"2/4"``; ``None``: every customer)."""
    return ALL if text is None else Shard.parse(text)


_ensured: dict[str, set[str]] = {}


def ensure_limits(names: Iterable[str]) -> None:
    """Create the missing global concurrency limits ``names`` (1 slot each) in one
    listing and at most one call per new limit; an operator's changes to existing ones
    stay. Remembered per API, so a process asks once."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.settings import PREFECT_API_URL

    api = str(PREFECT_API_URL.value() or "ephemeral")
    wanted = set(names) - _ensured.get(api, set())
    if not wanted:  # this process created or saw them all on this API already
        return
    with get_client(sync_client=True) as client:
        existing: set[str] = set()
        offset = 0
        while True:
            page = client.read_global_concurrency_limits(limit=200, offset=offset)
            existing.update(limit.name for limit in page)
            if len(page) < 200:
                break
            offset += 200
        for name in sorted(wanted - existing):
            with suppress(ObjectAlreadyExists):  # another run created it meanwhile
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
    _ensured.setdefault(api, set()).update(wanted)


def ensure_journey_locks(journey_keys: Iterable[str], shard: Shard = ALL) -> None:
    """Create the missing ``advance-<journey>`` limits (see :func:`ensure_limits`)."""
    ensure_limits(lock_name(key, shard) for key in journey_keys)


@contextmanager
def journey_locks(
    journey_keys: Iterable[str], *, timeout_seconds: float, shard: Shard = ALL
) -> Iterator[None]:
    """Hold the journeys' concurrency slots, taken together in one request (all or
    none, so two passes cannot deadlock); ``TimeoutError`` if another run keeps one
    longer than ``timeout_seconds``. The store locks each journey's event cursor too
    (docs/operations.md): these slots save a second run the wait and the work."""
    names = sorted({lock_name(key, shard) for key in journey_keys})
    with concurrency(names, occupy=1, timeout_seconds=timeout_seconds):
        yield
