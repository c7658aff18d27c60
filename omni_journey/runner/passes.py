"""One pass over the journeys: publish versions, enroll, advance, queue sends.

A pass holds each journey while it works on it, so two passes of one journey take
turns (:mod:`~omni_journey.runner.locks`); its batches are
:class:`~omni_journey.runner.batches.Batches`, one transaction each.

A runner made with ``shard=Shard(i, n)`` (``omni-journey run --shard i/n``) works on
the customers of its shard only, so ``n`` workers, one per shard, share each journey's
pass on PostgreSQL: it holds the journey only long enough to check its layout (the
number of shards it runs as, :mod:`~omni_journey.runner.layout`), then holds its shard
for the shard's migrations, scheduled audience, events (from the shard's own cursor)
and wake-ups. The default, one shard, is the whole journey, as before.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from omni_journey.channels.policy import ChannelPolicy, RulePolicy
from omni_journey.engine.types import ACTIVE
from omni_journey.errors import ConfigError
from omni_journey.runner import writes
from omni_journey.runner.batches import Batches
from omni_journey.runner.effects import PassReport
from omni_journey.runner.heap import frozen_heap
from omni_journey.runner.layout import read_layout, scheduled_marks, stream_head
from omni_journey.runner.session import PassSession
from omni_journey.runner.versions import (
    CompiledVersions,
    RefusedJourneysError,
    publish_allowed,
    publish_versions,
)
from omni_journey.segments.evaluate import evaluate_segments
from omni_journey.segments.fact_cache import FactCache
from omni_journey.spec.models import (
    FrequencyCap,
    JourneySpec,
    ScheduleTrigger,
    SegmentSpec,
    SegmentTrigger,
)
from omni_journey.store.core import ENROLLMENTS
from omni_journey.store.shards import ALL, Shard

__all__ = ["JourneyRunner", "LayoutChangedError", "PassReport", "publish_versions"]

_MAX_BATCHES = 1000
_LAYOUT_TRIES = 3


class LayoutChangedError(ConfigError):
    """Workers with different shard counts keep handing one journey to each other."""


class JourneyRunner(Batches):
    """Runs passes over a set of journeys against one store (over one shard of their
    customers: ``shard``, default all of them)."""

    def __init__(
        self,
        engine: Engine,
        journeys: Mapping[str, JourneySpec],
        segments: Mapping[str, SegmentSpec],
        *,
        batch_size: int = 5000,
        global_cap: FrequencyCap | None = None,
        policy: ChannelPolicy | None = None,
        evaluate_trigger_segments: bool = True,
        trigger_max_age: timedelta | None = timedelta(days=1),
        shard: Shard = ALL,
    ) -> None:
        if not shard.everyone and engine.dialect.name == "sqlite":
            raise ConfigError(
                "OMNI_DATABASE_URL",
                f"shard {shard} on SQLite, which runs one writer at a time",
                "shards need PostgreSQL; on SQLite run one worker without --shard",
            )
        self.engine = engine
        self.journeys = dict(journeys)
        self.segments = dict(segments)
        self.batch_size = batch_size
        self.global_cap = global_cap
        self.policy: ChannelPolicy = policy or RulePolicy()
        self.evaluate_trigger_segments = evaluate_trigger_segments
        self.trigger_max_age = trigger_max_age
        self.shard = shard
        self._versions = CompiledVersions(self.segments)
        self._local = threading.local()  # the running pass's session, per thread

    # --- the pass ---------------------------------------------------------------

    def run(self, now: datetime, only: Iterable[str] | None = None) -> PassReport:
        report = PassReport()
        keys = sorted(set(only) if only is not None else self.journeys)
        with frozen_heap(), self.engine.connect() as connection:  # facts read afresh
            self._local.session = PassSession(connection, FactCache(self.segments, now))
            try:
                self._run(now, keys, report)
            finally:
                self._local.session = None
        if report.refused:  # after every other journey ran
            raise RefusedJourneysError(report.refused, report)
        return report

    def _run(self, now: datetime, keys: list[str], report: PassReport) -> None:
        with self._begin() as connection:
            versions, refused = publish_allowed(connection, self.journeys, now)
        report.refused.extend(d for d in refused if Path(d.path).stem in keys)
        keys = [key for key in keys if key in versions]
        if self.evaluate_trigger_segments:
            wanted = sorted(
                {
                    spec.trigger.segment
                    for key, spec in self.journeys.items()
                    if key in keys and isinstance(spec.trigger, SegmentTrigger)
                }
                & set(self.segments)
            )
            if wanted:
                evaluate_segments(self.engine, self.segments, now=now, keys=wanted)
        session: PassSession = self._local.session
        for key in keys:
            if not self.journeys[key].enabled:
                continue
            if self.shard.everyone:
                with session.journey(key):  # while another pass holds it, wait
                    self._settle_layout(key, versions[key], now, report)
                    self._journey_pass(key, versions[key], now, report, ALL)
            else:
                self._shard_pass(key, versions[key], now, report)

    def _shard_pass(self, key: str, version_id: int, now: datetime, report: PassReport) -> None:
        """This runner's shard of journey ``key``: the layout checked (and changed to
        this runner's count if it differs) while holding the journey, then the shard's
        pass while holding the shard, if the layout is still this runner's then (a
        worker of another count may have changed it in between: then again)."""
        session: PassSession = self._local.session
        for _ in range(_LAYOUT_TRIES):
            with session.journey(key):
                self._settle_layout(key, version_id, now, report)
            with session.shard(key, self.shard):
                with self._begin() as connection:
                    layout = read_layout(connection, key)
                if layout is not None and layout.shards == self.shard.count:
                    self._journey_pass(key, version_id, now, report, self.shard)
                    return
        raise LayoutChangedError(
            "--shard",
            f"journey {key!r}: workers started with different shard counts keep changing "
            "its layout",
            f"run every worker of this store with the same count, --shard I/{self.shard.count}",
        )

    def _settle_layout(self, key: str, version_id: int, now: datetime, report: PassReport) -> None:
        """Make the journey run as this runner's number of shards (the caller holds the
        journey): a new journey starts so; another count hands over
        (:mod:`~omni_journey.runner.layout`): every shard of the old layout held, its
        events up to the newest one's ``seq`` finished, the new cursors written there."""
        count = self.shard.count
        with self._begin() as connection:
            layout = read_layout(connection, key)
            if layout is None:  # one shard makes its cursor at its first event batch
                if count > 1:
                    writes.set_layout(connection, key, count, 0, None, now)
                return
            if layout.shards == count:
                return
            head = stream_head(connection)
        session: PassSession = self._local.session
        old = Shard(1, layout.shards).all()
        with contextlib.ExitStack() as held:
            if layout.shards > 1:  # one shard is the journey, which the caller holds
                for shard in old:
                    held.enter_context(session.shard(key, shard))
            scheduled = isinstance(self.journeys[key].trigger, ScheduleTrigger)
            for shard in old:
                for _ in range(_MAX_BATCHES):
                    if not self._event_batch(key, version_id, now, report, shard, head):
                        break
                if scheduled:
                    self._scheduled_audience(key, version_id, now, report, shard)
            with self._begin() as connection:
                marks = scheduled_marks(connection, key, layout)
                served = max((m for m in marks if m is not None), default=None)
                writes.set_layout(connection, key, count, head, served, now)

    def _journey_pass(
        self, key: str, version_id: int, now: datetime, report: PassReport, shard: Shard
    ) -> None:
        self._migrate(key, version_id, now, shard)
        if isinstance(self.journeys[key].trigger, ScheduleTrigger):
            self._scheduled_audience(key, version_id, now, report, shard)
        for _ in range(_MAX_BATCHES):
            if not self._event_batch(key, version_id, now, report, shard):
                break
        for _ in range(_MAX_BATCHES):
            if not self._due_batch(key, now, report, shard):
                break

    def next_wake(self) -> datetime | None:
        """The earliest time an active enrollment wants to be advanced (for simulate)."""
        with self.engine.connect() as connection:
            return connection.execute(
                select(func.min(ENROLLMENTS.c.wake_at)).where(ENROLLMENTS.c.state == ACTIVE)
            ).scalar_one_or_none()
