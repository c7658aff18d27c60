"""The production pipeline, wired once: project -> runner -> outbox -> providers.

``omni-journey run``, ``dispatch``, ``simulate``, the demo and the Prefect flows all
go through these functions, so every entry point runs the same code.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from omni_journey.delivery import (
    CustomerView,
    DispatchReport,
    OutboxRow,
    Renderer,
    dispatch,
    load_providers,
)
from omni_journey.render import RenderContext, TemplateRenderer, customer_profile
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

__all__ = [
    "build_runner",
    "dispatch_due",
    "global_cap",
    "load_valid_project",
    "project_renderer",
    "worker_id",
]


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


def build_runner(
    engine: Engine, project: Project, settings: Settings, **kwargs: Any
) -> JourneyRunner:
    return JourneyRunner(
        engine,
        project.journeys,
        project.segments,
        batch_size=settings.batch_size,
        global_cap=global_cap(settings),
        trigger_max_age=timedelta(hours=settings.trigger_max_age_hours),
        **kwargs,
    )


def project_renderer(settings: Settings) -> Renderer:
    """Render outbox rows from the project's templates (one template cache per call)."""
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
) -> DispatchReport:
    """Send every due outbox row once through the configured providers."""
    return dispatch(
        engine,
        providers if providers is not None else load_providers(settings),
        project_renderer(settings),
        now=now,
        settings=settings,
        worker_id=worker_id(),
        limit=limit,
    )
