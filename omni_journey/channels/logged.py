"""Logged decisions and their outcomes, read back from the store.

A decision is an outbox row (``messages``) the channel policy chose, with its decision
log. Its outcome:

* **converted**: an ``order.completed`` of the customer within the attribution window
  after the send, with no other send to the customer in between (last touch);
* **clicked**: a ``message.clicked`` event naming the row's ``message_id``.

Only rows that were sent, on a messaging channel, and whose window has closed by
``until`` count. Features are rebuilt as of the start of each decision's UTC day, so
nothing learned later leaks into a decision's context.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, func, select

from omni_journey.channels.features import CHANNELS, FloatArray, History, load_history
from omni_journey.channels.model import TrainingSet
from omni_journey.store.core import EVENTS, MESSAGES

__all__ = ["LoggedDecisions", "last_touch", "load_logged"]

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
_CHUNK = 1000


@dataclass
class LoggedDecisions:
    """Decisions (one per sent outbox row), aligned arrays; ``history`` row i is the
    context of decision i."""

    message_ids: IntArray
    customer_ids: tuple[str, ...]
    channel: IntArray
    messages: tuple[str, ...]
    created_at: tuple[datetime, ...]
    eligible: BoolArray  # (n, channels)
    probabilities: FloatArray  # (n, channels): the distribution the policy drew from
    propensity: FloatArray
    choice: tuple[str, ...]
    policy: tuple[str, ...]
    model_version: tuple[str | None, ...]
    explored: BoolArray
    converted: BoolArray
    clicked: BoolArray
    history: History

    def __len__(self) -> int:
        return len(self.message_ids)

    def training_set(self) -> TrainingSet:
        return TrainingSet(
            history=self.history,
            messages=self.messages,
            channel=self.channel,
            clicked=self.clicked,
            converted=self.converted,
            groups=self.customer_ids,
        )

    def subset(self, mask: BoolArray) -> LoggedDecisions:
        rows = np.flatnonzero(mask)
        pick = rows.tolist()
        return LoggedDecisions(
            message_ids=self.message_ids[rows],
            customer_ids=tuple(self.customer_ids[i] for i in pick),
            channel=self.channel[rows],
            messages=tuple(self.messages[i] for i in pick),
            created_at=tuple(self.created_at[i] for i in pick),
            eligible=self.eligible[rows],
            probabilities=self.probabilities[rows],
            propensity=self.propensity[rows],
            choice=tuple(self.choice[i] for i in pick),
            policy=tuple(self.policy[i] for i in pick),
            model_version=tuple(self.model_version[i] for i in pick),
            explored=self.explored[rows],
            converted=self.converted[rows],
            clicked=self.clicked[rows],
            history=self.history.take(rows),
        )


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def last_touch(
    touch_customer: IntArray,
    touch_time: FloatArray,
    order_customer: IntArray,
    order_time: FloatArray,
    window_seconds: float,
) -> IntArray:
    """For each order, the index of the last touch of the same customer at or before it
    and within the window; ``-1`` when none. Customers are integer codes, times seconds."""
    if len(touch_time) == 0 or len(order_time) == 0:
        return np.full(len(order_time), -1, dtype=np.int64)
    order = np.lexsort((touch_time, touch_customer))
    keys_customer, keys_time = touch_customer[order], touch_time[order]
    # position of the last touch <= (customer, time), by a lexicographic search
    hi = np.searchsorted(keys_customer, order_customer, side="right")
    lo = np.searchsorted(keys_customer, order_customer, side="left")
    found = np.full(len(order_time), -1, dtype=np.int64)
    for j in np.flatnonzero(hi > lo).tolist():
        span = keys_time[lo[j] : hi[j]]
        k = int(np.searchsorted(span, order_time[j], side="right")) - 1
        if k >= 0 and order_time[j] - span[k] <= window_seconds:
            found[j] = int(order[lo[j] + k])
    return found


def _decision_arrays(decision: Mapping[str, Any]) -> tuple[list[bool], list[float]]:
    eligible = set(decision.get("eligible") or ())
    probabilities = decision.get("probabilities") or {}
    return (
        [c in eligible for c in CHANNELS],
        [float(probabilities.get(c, 0.0) or 0.0) for c in CHANNELS],
    )


def _choice(decision: Mapping[str, Any]) -> str:
    choice = decision.get("choice")
    if isinstance(choice, str) and choice:
        return choice
    reason = str(decision.get("reason") or "")
    return "best" if reason.startswith("rule:") else "unknown"


def load_logged(
    connection: Connection,
    *,
    since: datetime,
    until: datetime,
    attribution_hours: float = 72.0,
) -> LoggedDecisions:
    """Every sent decision created in [since, until - window), with outcome and context."""
    window = timedelta(hours=attribution_hours)
    rows = connection.execute(
        select(
            MESSAGES.c.id,
            MESSAGES.c.customer_id,
            MESSAGES.c.channel,
            MESSAGES.c.message_key,
            MESSAGES.c.created_at,
            MESSAGES.c.decision,
        )
        .where(
            MESSAGES.c.status == "sent",
            MESSAGES.c.channel.in_(CHANNELS),
            MESSAGES.c.created_at >= since,
            MESSAGES.c.created_at < until - window,
        )
        .order_by(MESSAGES.c.created_at, MESSAGES.c.id)
    ).all()
    customers = sorted({r.customer_id for r in rows})
    code = {c: i for i, c in enumerate(customers)}
    touches: list[tuple[int, int, float]] = []
    orders: list[tuple[int, float]] = []
    clicked_ids: set[str] = set()
    for chunk in _chunks(customers):
        sent_at = func.coalesce(MESSAGES.c.sent_at, MESSAGES.c.created_at)
        touches += [
            (int(t.id), code[t.customer_id], t[2].timestamp())
            for t in connection.execute(
                select(MESSAGES.c.id, MESSAGES.c.customer_id, sent_at).where(
                    MESSAGES.c.customer_id.in_(chunk),
                    MESSAGES.c.status == "sent",
                    MESSAGES.c.channel.in_(CHANNELS),
                    MESSAGES.c.created_at >= since - window,
                    MESSAGES.c.created_at < until,
                )
            )
        ]
        orders += [
            (code[o.customer_id], o.at.timestamp())
            for o in connection.execute(
                select(EVENTS.c.customer_id, EVENTS.c.at).where(
                    EVENTS.c.customer_id.in_(chunk),
                    EVENTS.c.name == "order.completed",
                    EVENTS.c.at >= since,
                    EVENTS.c.at < until,
                )
            )
        ]
        message_of = EVENTS.c.properties["message_id"].as_string()
        clicked_ids.update(
            str(v)
            for v in connection.execute(
                select(message_of).where(
                    EVENTS.c.customer_id.in_(chunk),
                    EVENTS.c.name == "message.clicked",
                    EVENTS.c.at >= since,
                )
            ).scalars()
        )
    touch_ids = np.array([t[0] for t in touches], dtype=np.int64)
    hit = last_touch(
        np.array([t[1] for t in touches], dtype=np.int64),
        np.array([t[2] for t in touches]),
        np.array([o[0] for o in orders], dtype=np.int64),
        np.array([o[1] for o in orders]),
        window.total_seconds(),
    )
    converted_ids = set(touch_ids[hit[hit >= 0]].tolist())
    decisions = [dict(r.decision or {}) for r in rows]
    arrays = [_decision_arrays(d) for d in decisions]
    history = _histories(connection, rows, attribution_hours, until)
    return LoggedDecisions(
        message_ids=np.array([int(r.id) for r in rows], dtype=np.int64),
        customer_ids=tuple(r.customer_id for r in rows),
        channel=np.array([CHANNELS.index(r.channel) for r in rows], dtype=np.int64),
        messages=tuple(r.message_key for r in rows),
        created_at=tuple(r.created_at for r in rows),
        eligible=np.array([a[0] for a in arrays], dtype=bool).reshape(len(rows), len(CHANNELS)),
        probabilities=np.array([a[1] for a in arrays]).reshape(len(rows), len(CHANNELS)),
        propensity=np.array([float(d.get("propensity") or 1.0) for d in decisions]),
        choice=tuple(_choice(d) for d in decisions),
        policy=tuple(str(d.get("policy") or "unknown") for d in decisions),
        model_version=tuple(d.get("model_version") for d in decisions),
        explored=np.array([bool(d.get("explored")) for d in decisions], dtype=bool),
        converted=np.array([int(r.id) in converted_ids for r in rows], dtype=bool),
        clicked=np.array([str(r.id) in clicked_ids for r in rows], dtype=bool),
        history=history,
    )


def _histories(
    connection: Connection, rows: Sequence[Any], attribution_hours: float, until: datetime
) -> History:
    """Each decision's context: the history as of the start of its UTC day."""
    by_day: dict[datetime, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        at = row.created_at.astimezone(UTC)
        by_day[at.replace(hour=0, minute=0, second=0, microsecond=0)].append(i)
    parts: list[History] = []
    order: list[int] = []
    for day, members in sorted(by_day.items()):
        customers = sorted({rows[i].customer_id for i in members})
        history = load_history(connection, customers, day, attribution_hours=attribution_hours)
        where = {c: j for j, c in enumerate(customers)}
        parts.append(history.take(np.array([where[rows[i].customer_id] for i in members])))
        order += members
    if not parts:
        return load_history(connection, [], until)
    combined = History.concat(parts)
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[np.array(order)] = np.arange(len(order))
    return combined.take(inverse).at([row.created_at for row in rows])
