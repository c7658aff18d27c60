"""The production pipeline, wired once: project -> runner -> outbox -> providers.

``omni-journey run``, ``dispatch``, ``simulate``, the demo and the Prefect flows all
go through these functions, so every entry point runs the same code.

:func:`select_policy` is where ``OMNI_CHANNEL_POLICY`` takes effect: every runner
:func:`build_runner` makes decides ``channel: best`` with the policy it returns.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from omni_journey.channels.policy import ChannelPolicy, RulePolicy
from omni_journey.runner.passes import JourneyRunner
from omni_journey.settings import Settings
from omni_journey.spec.durations import parse_duration
from omni_journey.spec.models import FrequencyCap
from omni_journey.spec.project import (
    EVENTS_FILE,
    JOURNEYS_DIR,
    SEGMENTS_DIR,
    TEMPLATES_DIR,
    Project,
    load_project,
)
from omni_journey.store.shards import ALL, Shard

if TYPE_CHECKING:  # sending loads the dispatcher and the renderer; a pass needs neither
    from omni_journey.delivery import CustomerView, DispatchReport, OutboxRow, Renderer

__all__ = [
    "PolicyChoice",
    "build_runner",
    "dispatch_due",
    "global_cap",
    "load_valid_project",
    "project_renderer",
    "select_policy",
    "worker_id",
]

log = logging.getLogger("omni_journey.service")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


_loaded: dict[Path, tuple[tuple[tuple[str, int, int], ...], Project]] = {}
_loaded_lock = threading.Lock()


def _fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Every project file's path, size and modification time: a change to any of them
    (or a file added or removed) changes the fingerprint."""
    files = [root / EVENTS_FILE]
    for folder in (JOURNEYS_DIR, SEGMENTS_DIR, TEMPLATES_DIR):
        files += sorted((root / folder).rglob("*"))
    found: list[tuple[str, int, int]] = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        found.append((str(file), stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def load_valid_project(settings: Settings) -> Project:
    """The project under ``OMNI_PROJECT_DIR``; :class:`SpecError` if any file is invalid
    (an invalid journey never runs).

    A process that loads the same unchanged project again (a served flow, the demo's
    passes) gets the parsed project back: parsing every file took 0.1-0.2 s a pass."""
    root = Path(settings.project_dir).resolve()
    fingerprint = _fingerprint(root)
    with _loaded_lock:
        cached = _loaded.get(root)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    project = load_project(root).require_valid()
    with _loaded_lock:
        _loaded[root] = (fingerprint, project)
    return project


def global_cap(settings: Settings) -> FrequencyCap | None:
    """``OMNI_FREQUENCY_CAP`` (``"3/1d"``) as a cap across all journeys."""
    if not settings.frequency_cap:
        return None
    count, period = settings.frequency_cap.split("/", 1)
    per: timedelta = parse_duration(period)
    return FrequencyCap(max=int(count), per=per)


@dataclass(frozen=True)
class PolicyChoice:
    """The channel policy a pass uses, and one line that says which one decides and why
    (``warning``: a model is active but cannot be loaded, so the rule decides)."""

    policy: ChannelPolicy
    note: str
    warning: bool = False


def select_policy(engine: Engine, settings: Settings) -> PolicyChoice:
    """The channel policy ``OMNI_CHANNEL_POLICY`` asks for.

    ``rule``: :class:`RulePolicy`. ``learned``: :class:`LearnedPolicy` with the
    settings' conversion value, costs and exploration; it loads the active model now
    (and notices a newer one at each batch). With no model, or one that cannot be
    loaded, the rule decides inside it, still exploring ``OMNI_CHANNEL_COLD_EPSILON``
    of the ``best`` decisions so the first model has every channel to learn from. A
    model that cannot be loaded never stops a pass: customers still get their messages
    through the rule, the error (naming the file) is logged once and recorded in each
    decision (``extra.model_error``), and ``warning`` is set.

    numpy and the learned policy are imported only for ``learned``; scikit-learn never
    (only training needs it)."""
    if settings.channel_policy == "rule":
        return PolicyChoice(
            RulePolicy(), "channel policy: rule (OMNI_CHANNEL_POLICY=rule): cheapest eligible"
        )
    from omni_journey.channels.learned import LearnedPolicy

    policy = LearnedPolicy.from_settings(settings)
    assert policy.loader is not None
    with engine.connect() as connection:
        model = policy.loader.get(connection)
    if model is not None:
        return PolicyChoice(
            policy,
            f"channel policy: learned, model {model.version} (expected value minus cost; "
            f"explores {_share(policy.epsilon)} of best-channel decisions)",
        )
    exploring = (
        f"; explores {_share(policy.cold_epsilon)} of best-channel decisions so a first "
        "model has every channel to learn from"
        if policy.cold_epsilon > 0
        else ""
    )
    if policy.loader.error:
        return PolicyChoice(
            policy,
            f"channel policy: rule ({policy.loader.error}; train a new model: "
            f"omni-journey train){exploring}",
            warning=True,
        )
    return PolicyChoice(
        policy, f"channel policy: rule (no trained model; run omni-journey train){exploring}"
    )


def _share(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def build_runner(
    engine: Engine,
    project: Project,
    settings: Settings,
    *,
    policy: ChannelPolicy | None = None,
    shard: Shard = ALL,
    **kwargs: Any,
) -> JourneyRunner:
    """The runner every pass uses. Without ``policy`` it decides with
    :func:`select_policy`'s, and logs which policy decides and why (a model that cannot
    be loaded is logged as an error by the policy itself, once). ``shard``
    (``Shard(2, 4)``: the second of four) runs its passes over that shard of the
    customers only, so one worker per shard shares the work (PostgreSQL; docs/scaling.md)."""
    if policy is None:
        choice = select_policy(engine, settings)
        log.info("%s", choice.note)
        policy = choice.policy
    return JourneyRunner(
        engine,
        project.journeys,
        project.segments,
        batch_size=settings.batch_size,
        global_cap=global_cap(settings),
        trigger_max_age=timedelta(hours=settings.trigger_max_age_hours),
        policy=policy,
        shard=shard,
        **kwargs,
    )


def project_renderer(settings: Settings) -> Renderer:
    """Render outbox rows from the project's templates (one template cache per call)."""
    from omni_journey.render import RenderContext, TemplateRenderer, customer_profile

    templates = TemplateRenderer.from_settings(settings.project_dir / "templates", settings)

    def render(message: OutboxRow, customer: CustomerView) -> Any:
        context = RenderContext(
            customer=customer_profile(
                customer.id, customer.attributes, locale=customer.locale, timezone=customer.timezone
            ),
            event=dict(message.render_context.get("event") or {}),
            journey={"key": message.journey_key, "step": message.step_id},
        )
        return templates.render(message.message_key, message.channel, context)

    return render


def dispatch_due(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime,
    limit: int | None = None,
    providers: dict[str, Any] | None = None,
    shard: Shard = ALL,
) -> DispatchReport:
    """Send every due outbox row once through the configured providers (only those to
    ``shard``'s customers, when given: one dispatcher per shard)."""
    from omni_journey.delivery import dispatch, load_providers

    return dispatch(
        engine,
        providers if providers is not None else load_providers(settings),
        project_renderer(settings),
        now=now,
        settings=settings,
        worker_id=worker_id(),
        limit=limit,
        shard=shard,
    )
