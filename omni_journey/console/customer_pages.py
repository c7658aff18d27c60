"""The console's customer pages: the search, one customer's history, and one customer's
decisions in one journey (what ``customers show`` and ``explain`` print).

Each function reads on the connection it is given and returns a page (HTML text);
the values come from :mod:`omni_journey.history`, and every one of them goes through
the escaping builder (:mod:`omni_journey.console.html`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup
from sqlalchemy import Connection, func, select

from omni_journey.console.html import el, join, page
from omni_journey.console.journeys import journey_keys, load_console_journey
from omni_journey.history import (
    CustomerHistory,
    TimelineItem,
    journey_decisions,
    load_history,
    why_not_entered,
)
from omni_journey.settings import Settings
from omni_journey.store.core import ENROLLMENTS, JOURNEY_LOG

__all__ = [
    "PAGE_SIZE",
    "customer_href",
    "customer_page",
    "explain_href",
    "explain_page",
    "home_page",
    "journey_href",
    "table",
    "when",
]

PAGE_SIZE = 50


def customer_href(customer_id: str, offset: int = 0) -> str:
    tail = f"?{urlencode({'offset': offset})}" if offset else ""
    return f"/console/customers/{quote(customer_id, safe='')}{tail}"


def explain_href(customer_id: str, journey: str) -> str:
    return f"/console/customers/{quote(customer_id, safe='')}/explain/{quote(journey, safe='')}"


def journey_href(journey: str) -> str:
    return f"/console/journeys/{quote(journey, safe='')}"


def when(at: datetime | str | None) -> str:
    """A time as the console shows every time: UTC, to the second."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if at is None:
        return ""
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S")


def data(value: Any, limit: int = 600) -> Markup:
    """A value as compact JSON, escaped, in a ``<pre>``."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return el("pre", None, text if len(text) <= limit else text[: limit - 1] + "…")


def table(headings: Sequence[str], rows: Iterable[Sequence[object]], **attrs: object) -> Markup:
    """A table in a horizontally scrolling box (narrow screens scroll, never squash).
    The last column is the wide one (details, data)."""
    head = el("thead", None, el("tr", None, *(el("th", None, h) for h in headings)))
    last = len(headings) - 1
    body = el(
        "tbody",
        None,
        *(
            el(
                "tr",
                None,
                *(
                    el("td", {"class": "data" if i == last and last > 1 else None}, c)
                    for i, c in enumerate(row)
                ),
            )
            for row in rows
        ),
    )
    return el("div", {"class": "scroll"}, el("table", attrs, head, body))


# --- the search ------------------------------------------------------------------------


def home_page(
    connection: Connection, settings: Settings, *, query: str = "", missing: bool = False
) -> str:
    """The search box, and every journey with how many entered and how many are in it now."""
    entered: dict[str, int] = {
        str(key): int(n)
        for key, n in connection.execute(
            select(JOURNEY_LOG.c.journey_key, func.count())
            .where(JOURNEY_LOG.c.kind == "entered")
            .group_by(JOURNEY_LOG.c.journey_key)
        )
    }
    active: dict[str, int] = {
        str(key): int(n)
        for key, n in connection.execute(
            select(ENROLLMENTS.c.journey_key, func.count())
            .where(ENROLLMENTS.c.state == "active")
            .group_by(ENROLLMENTS.c.journey_key)
        )
    }
    rows = [
        (el("a", {"href": journey_href(key)}, key), entered.get(key, 0), active.get(key, 0))
        for key in journey_keys(connection, settings)
    ]
    search = el(
        "form",
        {"class": "card", "method": "get", "action": "/console/", "role": "search"},
        el("label", {"for": "q"}, el("strong", None, "Find a customer")),
        el(
            "p",
            {"class": "mute"},
            "By customer id (an old, merged id finds the survivor), email, "
            "phone number, push token, external or anonymous id.",
        ),
        el(
            "div",
            {"class": "pager"},
            el(
                "input",
                {"type": "search", "id": "q", "name": "q", "value": query, "autofocus": True},
            ),
            el("button", {"type": "submit"}, "Find"),
        ),
    )
    notice = (
        el("p", {"class": "card withdrawn"}, "No customer matches that key.") if missing else ""
    )
    return page(
        "Customers and journeys",
        el("h1", None, "Customers and journeys"),
        notice,
        search,
        el("h2", None, "Journeys"),
        table(["journey", "entered", "in it now"], rows, id="journeys"),
        query=query,
    )


# --- one customer ----------------------------------------------------------------------


def _summary(item: TimelineItem) -> object:
    detail = item.detail
    if item.kind == "message":
        parts = [str(detail.get("status"))]
        if detail.get("provider_message_id"):
            parts.append(f"{detail.get('provider')} {detail['provider_message_id']}")
        if detail.get("error"):
            parts.append(str(detail["error"]))
        return " · ".join(parts)
    if item.kind == "journey":
        return join(
            str(detail.get("reason") or ""),
            data(detail.get("inputs")) if detail.get("inputs") else "",
        )
    if item.kind == "event":
        return data(detail.get("properties") or {})
    return data(dict(detail))


def _journeys_of(connection: Connection, ids: Sequence[str]) -> list[str]:
    rows = connection.execute(
        select(JOURNEY_LOG.c.journey_key).where(JOURNEY_LOG.c.customer_id.in_(list(ids))).distinct()
    ).scalars()
    return sorted(rows)


def _profile(history: CustomerHistory) -> Markup:
    profile = history.customer
    facts = [
        (name, profile.get(name))
        for name in ("email", "phone", "timezone", "locale", "created_at", "updated_at")
    ]
    if history.merged_ids:
        facts.append(("merged into this customer", ", ".join(history.merged_ids)))
    shown = [(k, when(v) if k.endswith("_at") else str(v)) for k, v in facts if v]
    items = [
        join(el("dt", None, k.replace("_at", "").replace("_", " ")), el("dd", None, v))
        for k, v in shown
    ]
    attributes = [
        (name, value if isinstance(value, str) else data(value))
        for name, value in sorted(dict(profile.get("attributes") or {}).items())
    ]
    return join(
        el("div", {"class": "card"}, el("dl", {"id": "profile"}, *items)),
        el("h2", None, "Attributes"),
        table(["attribute", "value"], attributes, id="attributes"),
    )


def customer_page(connection: Connection, settings: Settings, customer: Any, offset: int) -> str:
    """One customer's profile, identities, consent, suppressions, journeys and a page of
    their timeline, newest first."""
    history = load_history(connection, customer, limit=PAGE_SIZE, offset=offset)
    customer_id = str(history.customer["customer_id"])
    ids = [customer_id, *history.merged_ids]
    consent_rows = [
        (
            channel,
            el(
                "span",
                {"class": "granted" if state["granted"] else "withdrawn"},
                {True: "granted", False: "withdrawn"}.get(state["granted"], "none in force"),
            ),
            state.get("source") or "",
            when(state.get("since")),
        )
        for channel, state in history.consent.items()
    ]
    mine = _journeys_of(connection, ids)
    others = [k for k in journey_keys(connection, settings) if k not in mine]
    journeys = [
        (
            el("a", {"href": journey_href(k)}, k),
            el("a", {"href": explain_href(customer_id, k)}, "explain" if k in mine else "why not?"),
        )
        for k in [*mine, *others]
    ]
    timeline = [
        (
            when(item.at),
            el("span", {"class": f"tag {item.kind}"}, item.kind),
            item.name,
            item.channel or "",
            join(
                el("a", {"href": journey_href(item.journey)}, item.journey) if item.journey else "",
                f" / {item.step}" if item.step else "",
            ),
            _summary(item),
        )
        for item in history.timeline
    ]
    pager = []
    if offset > 0:
        pager.append(
            el("a", {"href": customer_href(customer_id, max(0, offset - PAGE_SIZE))}, "← newer")
        )
    if history.more:
        pager.append(el("a", {"href": customer_href(customer_id, offset + PAGE_SIZE)}, "older →"))
    return page(
        f"Customer {customer_id}",
        el("h1", None, customer_id),
        _profile(history),
        el("h2", None, "Identities"),
        table(
            ["identity", "value", "since"],
            [(i["kind"], i["value"], when(i["since"])) for i in history.identities],
            id="identities",
        ),
        el("h2", None, "Consent"),
        table(["channel", "consent", "how", "since"], consent_rows, id="consent"),
        el("h2", None, "Suppressions") if history.suppressions else "",
        table(
            ["channel", "address", "reason", "since"],
            [
                (s["channel"], s["address"], s["reason"], when(s["since"]))
                for s in history.suppressions
            ],
            id="suppressions",
        )
        if history.suppressions
        else "",
        el("h2", None, "Journeys"),
        table(["journey", "decisions"], journeys, id="customer-journeys"),
        el(
            "h2",
            None,
            f"Timeline, newest first (items {offset + 1}–{offset + len(history.timeline)})",
        ),
        table(
            ["at (UTC)", "kind", "name", "channel", "journey / step", "detail"],
            timeline,
            id="timeline",
        ),
        el("nav", {"class": "pager"}, *pager),
    )


# --- explain ---------------------------------------------------------------------------


def explain_page(
    connection: Connection, settings: Settings, customer: Any, journey: str
) -> str | None:
    """Every decision of this customer in ``journey``, oldest first, with the guard and
    data behind it; for a customer who never entered, the rule that keeps them out.
    None when the journey is unknown and holds no decision for them."""
    history = load_history(connection, customer, limit=1)
    customer_id = str(history.customer["customer_id"])
    ids = [customer_id, *history.merged_ids]
    source = load_console_journey(connection, settings, journey)
    spec = source.spec if source is not None else None
    decisions = journey_decisions(connection, ids, journey, spec)
    if spec is None and not decisions:
        return None
    body: list[object] = [
        el("h1", None, customer_id, el("span", {"class": "mute"}, " in "), journey),
        el(
            "p",
            None,
            el("a", {"href": customer_href(customer_id)}, "← timeline"),
            " · ",
            el("a", {"href": journey_href(journey)}, "journey diagram"),
        ),
    ]
    if not decisions and spec is not None:
        reason, inputs = why_not_entered(connection, ids, spec)
        body += [
            el(
                "div",
                {"class": "card", "id": "not-entered"},
                el("strong", None, "Never entered: "),
                el("code", None, reason),
                data(inputs),
            ),
        ]
    else:
        rows = [
            (
                when(d.at),
                d.step or "",
                d.outcome + (" (holdout)" if d.holdout else ""),
                d.reason or "",
                d.event_id or "",
                data(dict(d.inputs)) if d.inputs else "",
            )
            for d in decisions
        ]
        body += [
            el("h2", None, "Decisions, oldest first"),
            table(["at (UTC)", "step", "outcome", "reason", "event", "data"], rows, id="decisions"),
        ]
    return page(f"{customer_id} in {journey}", *body)
