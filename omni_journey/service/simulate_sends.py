"""``simulate``'s sends rendered as dispatch would render them, for the simulated
customer and event: a message that fails to render is reported as a skip with the
render error's code (what production fails the message with), never as sent.

Rendering needs the project's templates and no provider: the context is built as
:func:`omni_journey.service.pipeline.project_renderer` builds it (the profile from the
store, the trigger event the outbox row carries).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from omni_journey.render import RenderContext, RenderError, TemplateRenderer, customer_profile
from omni_journey.settings import Settings
from omni_journey.store.core import CUSTOMERS

__all__ = ["render_sends"]


def render_sends(
    connection: Connection, rows: Iterable[Any], templates_dir: Path, settings: Settings
) -> dict[int, dict[str, str]]:
    """outbox row id -> ``{"reason": code, "detail": where and why}`` for each row of
    ``rows`` (outbox rows of the simulated store) that does not render."""
    rows = list(rows)
    renderer = TemplateRenderer.from_settings(templates_dir, settings, None, "templates")
    customers = _customers(connection, {row.customer_id for row in rows})
    failed: dict[int, dict[str, str]] = {}
    for row in rows:
        customer = customers.get(row.customer_id)
        if customer is None:  # merged away or erased meanwhile: dispatch skips it too
            continue
        context = RenderContext(
            customer=customer_profile(
                row.customer_id,
                customer.attributes,
                locale=customer.locale,
                timezone=customer.timezone,
            ),
            event=dict((row.render_context or {}).get("event") or {}),
            journey={"key": row.journey_key, "step": row.step_id},
        )
        try:
            renderer.render(row.message_key, row.channel, context)
        except RenderError as error:
            d = error.diagnostic
            failed[row.id] = {
                "reason": error.code,
                "detail": f"{d.path}:{d.line}:{d.col}: {d.message}",
            }
    return failed


def _customers(connection: Connection, ids: set[str]) -> Mapping[str, Any]:
    found: dict[str, Any] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = select(
            CUSTOMERS.c.id, CUSTOMERS.c.attributes, CUSTOMERS.c.locale, CUSTOMERS.c.timezone
        ).where(CUSTOMERS.c.id.in_(chunk))
        found.update({row.id: row for row in connection.execute(query)})
    return found
