"""Back-test purchase-cycle reminders on an order history, against two baselines.

The history is split in time: category priors are fitted on the orders before
``split_at``; then at every purchase on or after it, each method predicts the next
purchase from everything the customer had bought so far, and is scored on what came:

* ``hit``: the next purchase falls inside the reminder window, from the moment the
  reminder is due to the window's end;
* ``late``: the next purchase came before the reminder was due (it would be cancelled;
  a reminder that arrives after the purchase is wasted);
* ``error``: days between the predicted time and the next purchase.

A reminder with no next purchase counts as a miss once its window has closed before
the history ends (otherwise it is censored and left out). Methods:

* ``cycles``: this package's method; it stays silent where buying is not regular.
* ``fixed_interval``: every customer, the category's median gap.
* ``after_n_days``: every customer, ``remind_after_days`` after every purchase.

All three use the same window shape (log-normal quantiles with the category's
within-customer spread), so hit rates compare timing and selection, not window width;
mean window lengths are reported too.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from omni_journey.cycles.model import (
    DAY_SECONDS,
    CategoryPrior,
    CycleSettings,
    fit_priors,
    log_intervals,
    occasions,
    predict_next,
    window_at,
)
from omni_journey.errors import OmniJourneyError
from omni_journey.lab.synthetic_orders import Order

__all__ = [
    "METHODS",
    "BacktestReport",
    "MethodScore",
    "OrderFileError",
    "backtest_purchase_cycles",
    "load_orders",
]

METHODS = ("cycles", "fixed_interval", "after_n_days")


class OrderFileError(OmniJourneyError, ValueError):
    """A line of an order history file cannot be read; says which and why."""

    def __init__(self, path: str, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        super().__init__(f"{path}:{line}: {problem}")


@dataclass
class MethodScore:
    method: str
    reminders: int = 0
    hits: int = 0
    late: int = 0
    next_purchases: int = 0
    customers_reminded: int = 0
    _errors_days: float = 0.0
    _errored: int = 0
    _window_days: float = 0.0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.reminders if self.reminders else 0.0

    @property
    def late_share(self) -> float:
        return self.late / self.reminders if self.reminders else 0.0

    @property
    def mae_days(self) -> float:
        return self._errors_days / self._errored if self._errored else 0.0

    @property
    def coverage(self) -> float:
        """Share of next purchases that a timely reminder (a hit) preceded."""
        return self.hits / self.next_purchases if self.next_purchases else 0.0

    @property
    def window_days(self) -> float:
        return self._window_days / self.reminders if self.reminders else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "reminders": self.reminders,
            "hit_rate": round(self.hit_rate, 4),
            "late_share": round(self.late_share, 4),
            "mae_days": round(self.mae_days, 2),
            "coverage": round(self.coverage, 4),
            "window_days": round(self.window_days, 2),
            "customers_reminded": self.customers_reminded,
        }


@dataclass
class BacktestReport:
    orders: int
    customers: int
    series: int
    start: datetime
    split_at: datetime
    end: datetime
    settings: CycleSettings
    remind_after_days: float
    scores: dict[str, MethodScore]
    by_truth: dict[str, dict[str, MethodScore]] = field(default_factory=dict)
    priors: dict[str, CategoryPrior] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "customers": self.customers,
            "series": self.series,
            "start": self.start.isoformat(),
            "split_at": self.split_at.isoformat(),
            "end": self.end.isoformat(),
            "settings": {**asdict(self.settings), "remind_after_days": self.remind_after_days},
            "methods": {name: score.as_dict() for name, score in self.scores.items()},
            "by_truth": {
                truth: {name: score.as_dict() for name, score in scores.items()}
                for truth, scores in self.by_truth.items()
            },
            "categories": {
                key: {
                    "median_days": round(p.median_days, 2),
                    "typical_days": round(p.typical_days, 2),
                    "within_sd": round(math.sqrt(p.within_var), 3),
                    "regular_customers": p.regular_customers,
                }
                for key, p in sorted(self.priors.items())
            },
        }


def backtest_purchase_cycles(
    orders: Iterable[Order],
    *,
    settings: CycleSettings | None = None,
    split: float = 0.5,
    remind_after_days: float = 30.0,
    cyclic: frozenset[tuple[str, str]] | None = None,
) -> BacktestReport:
    """Replay ``orders``; ``cyclic`` (the generator's truth) adds per-truth scores."""
    settings = settings or CycleSettings()
    by_series: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    count = 0
    for order in orders:
        by_series[(order.customer_id, order.category)].append(order.at)
        count += 1
    if not by_series:
        raise ValueError("no orders to back-test")
    series = {key: occasions(times, settings.merge_within_days) for key, times in by_series.items()}
    start = min(times[0] for times in series.values())
    end = max(times[-1] for times in series.values())
    split_at = start + (end - start) * split
    training: dict[str, list[Any]] = defaultdict(list)
    for (_, category), times in series.items():
        before = [t for t in times if t < split_at]
        training[category].append(log_intervals(before, settings.max_intervals))
    priors = fit_priors(training, settings)

    scores = {name: MethodScore(name) for name in METHODS}
    by_truth: dict[str, dict[str, MethodScore]] = {}
    if cyclic is not None:
        by_truth = {t: {name: MethodScore(name) for name in METHODS} for t in ("cyclic", "random")}
    reminded: dict[str, set[str]] = defaultdict(set)
    truth_reminded: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (customer_id, category), times in series.items():
        prior = priors.get(category)
        if prior is None:
            continue
        truth = (
            None
            if cyclic is None
            else ("cyclic" if (customer_id, category) in cyclic else "random")
        )
        for i, last in enumerate(times):
            if last < split_at:
                continue
            following = times[i + 1] if i + 1 < len(times) else None
            for name, window in _reminders(times[: i + 1], prior, settings, remind_after_days):
                targets = [scores[name]] + ([by_truth[truth][name]] if truth else [])
                scored = _score(targets, window, following, end)
                if scored:
                    reminded[name].add(customer_id)
                    if truth:
                        truth_reminded[(truth, name)].add(customer_id)
            if following is not None:
                for name in METHODS:
                    scores[name].next_purchases += 1
                    if truth:
                        by_truth[truth][name].next_purchases += 1
    for name in METHODS:
        scores[name].customers_reminded = len(reminded[name])
        for truth in by_truth:
            by_truth[truth][name].customers_reminded = len(truth_reminded[(truth, name)])
    return BacktestReport(
        orders=count,
        customers=len({customer for customer, _ in series}),
        series=len(series),
        start=start,
        split_at=split_at,
        end=end,
        settings=settings,
        remind_after_days=remind_after_days,
        scores=scores,
        by_truth=by_truth,
        priors=priors,
    )


Window = tuple[datetime, datetime, datetime, datetime]  # start, due, end, predicted


def _reminders(
    history: Sequence[datetime],
    prior: CategoryPrior,
    settings: CycleSettings,
    remind_after_days: float,
) -> list[tuple[str, Window]]:
    last = history[-1]
    spread = math.sqrt(prior.within_var)
    result: list[tuple[str, Window]] = []
    prediction = predict_next(history, prior, settings)
    if prediction is not None and prediction.regular:
        result.append(
            (
                "cycles",
                (
                    prediction.window_start,
                    prediction.due_at,
                    prediction.window_end,
                    prediction.predicted_at,
                ),
            )
        )
    for name, center in (
        ("fixed_interval", prior.median_days),
        ("after_n_days", remind_after_days),
    ):
        start, due, end = window_at(last, center, spread, settings)
        result.append((name, (start, due, end, last + timedelta(days=center))))
    return result


def _score(
    targets: list[MethodScore], window: Window, following: datetime | None, end: datetime
) -> bool:
    _, due, window_end, predicted = window
    if following is None and window_end > end:
        return False  # censored: the history ends before the window closes
    for score in targets:
        score.reminders += 1
        score._window_days += (window_end - due).total_seconds() / DAY_SECONDS
        if following is None:
            continue
        if following < due:
            score.late += 1
        elif following <= window_end:
            score.hits += 1
        score._errors_days += abs((following - predicted).total_seconds()) / DAY_SECONDS
        score._errored += 1
    return True


# --- order history files ----------------------------------------------------------


def load_orders(path: str | Path) -> list[Order]:
    """Orders from JSON Lines or CSV (``.csv``): customer_id, at (ISO 8601 with a zone),
    category, amount. Every problem names the file and line."""
    file = Path(path)
    orders: list[Order] = []
    with file.open(newline="", encoding="utf-8") as handle:
        if file.suffix.lower() == ".csv":
            rows: Iterable[tuple[int, dict[str, Any]]] = (
                (n + 2, dict(row)) for n, row in enumerate(csv.DictReader(handle))
            )
        else:
            rows = _json_lines(str(file), handle)
        for line, row in rows:
            orders.append(_order(str(file), line, row))
    return orders


def _json_lines(name: str, handle: Iterable[str]) -> Iterable[tuple[int, dict[str, Any]]]:
    for n, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise OrderFileError(name, n, f"not JSON ({error.msg})") from None
        if not isinstance(value, dict):
            raise OrderFileError(name, n, "expected a JSON object per line")
        yield n, value


def _order(name: str, line: int, row: dict[str, Any]) -> Order:
    missing = [key for key in ("customer_id", "at", "category") if not row.get(key)]
    if missing:
        raise OrderFileError(name, line, f"missing {', '.join(missing)}")
    try:
        at = datetime.fromisoformat(str(row["at"]))
    except ValueError:
        raise OrderFileError(name, line, f"'at' is not ISO 8601: {row['at']!r}") from None
    if at.tzinfo is None:
        raise OrderFileError(name, line, "'at' has no time zone (add Z or +00:00)")
    try:
        amount = float(row.get("amount") or 0)
    except (TypeError, ValueError):
        raise OrderFileError(name, line, f"'amount' is not a number: {row['amount']!r}") from None
    return Order(
        at=at.astimezone(UTC),
        customer_id=str(row["customer_id"]),
        category=str(row["category"]),
        amount=amount,
    )
