"""Channel policies in the demo shop: the learned policy against an oracle and baselines.

    .venv/bin/python -m bench.channels                  # 5 seeds x 8,000 customers, 2 processes
    .venv/bin/python -m bench.channels --seeds 1 --customers 3000      # a quick look
    .venv/bin/python -m bench.channels --scoring-only   # only the cost of scoring

Per seed, on a fresh SQLite store: the shop's profiles and 180 days of history (organic
behaviour plus a legacy tool's weekly sends and their answers) go in through
``ingest_profiles`` / ``ingest_events``. Then weekly rounds: every customer with an
eligible channel gets the message their state calls for (cart, browse, win-back...).
The first ``--cold-rounds`` are decided by the learned policy without a model (the
rule, exploring ``OMNI_CHANNEL_COLD_EPSILON`` of the time); their outcomes come back
as events; ``train`` fits a model from the store; the next ``--live-rounds`` are
decided by the learned policy with that model. On those rounds every policy is scored
on the very same decisions (customer, message, eligible channels, history) by the
simulator's truth: incremental profit = value * (incremental conversion probability of
the chosen channel) - cost, per 1,000 decisions that had a choice (two or more eligible
channels). The oracle knows the hidden probabilities. Costs and value are the
settings' defaults.

The scoring part times the model and the policy on 100,000 customers (features in
memory) and the history query on the bench store.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from omni_journey.channels.baselines import distribution
from omni_journey.channels.features import CHANNELS, History, load_history
from omni_journey.channels.learned import LearnedPolicy, Request, parse_costs
from omni_journey.channels.logged import load_logged
from omni_journey.channels.model import ChannelModel
from omni_journey.channels.train import train_from_logged
from omni_journey.ingest.intake import ingest_events, ingest_profiles
from omni_journey.lab.shop import Shop, record_sends, sent_events
from omni_journey.settings import Settings
from omni_journey.store import open_store

POLICIES = (
    "oracle",
    "oracle-without-affinity",
    "learned",
    "learned-greedy",
    "most-engaged",
    "random",
    "email",
    "rule",
)


def _ingest(engine: Engine, events: list[dict[str, Any]], settings: Settings, now: Any) -> None:
    for start in range(0, len(events), 5000):
        result = ingest_events(engine, events[start : start + 5000], now=now, settings=settings)
        assert not result.rejected, result.rejected[:3]


def _requests(ids: list[str], messages: list[str], eligible: np.ndarray, tag: str) -> list[Request]:
    return [
        Request(cid, message, tuple(c for c, ok in zip(CHANNELS, row, strict=True) if ok), "best",
                f"{tag}:{cid}")
        for cid, message, row in zip(ids, messages, eligible.tolist(), strict=True)
    ]  # fmt: skip


def _scores(
    shop: Shop,
    history: History,
    ids: list[str],
    messages: list[str],
    eligible: np.ndarray,
    policy: LearnedPolicy,
    greedy: LearnedPolicy,
    model: ChannelModel,
    now: Any,
    cost: np.ndarray,
) -> dict[str, list[float]]:
    """Expected incremental profit of each decision with a choice, per policy."""
    truth = policy.value * shop.true_uplift(ids, messages, now) - cost
    truth = np.where(eligible, truth, 0.0)
    choice = eligible.sum(axis=1) >= 2
    requests = _requests(ids, messages, eligible, "score")
    dists = {
        name: distribution(name, history, eligible, messages)
        for name in ("most-engaged", "random", "email", "rule")
    }
    dists["learned"] = policy.score(history, requests, model).dist
    dists["learned-greedy"] = greedy.score(history, requests, model).dist
    best = np.argmax(np.where(eligible, truth, -np.inf), axis=1)
    dists["oracle"] = np.eye(len(CHANNELS))[best]
    blind = policy.value * shop.true_uplift(ids, messages, now, average_affinity=16) - cost
    best = np.argmax(np.where(eligible, blind, -np.inf), axis=1)
    dists["oracle-without-affinity"] = np.eye(len(CHANNELS))[best]
    return {name: (d * truth).sum(axis=1)[choice].tolist() for name, d in dists.items()}


def run_seed(seed: int, customers: int, cold_rounds: int, live_rounds: int) -> dict[str, Any]:
    started = time.perf_counter()
    settings = Settings()
    costs = parse_costs(settings.channel_costs)
    cost = np.array([costs[c] for c in CHANNELS])
    common = {
        "value": settings.channel_conversion_value,
        "costs": costs,
        "cold_epsilon": settings.channel_cold_epsilon,
        "attribution_hours": settings.channel_attribution_hours,
        "salt": f"bench-{seed}",
    }
    policy = LearnedPolicy(epsilon=settings.channel_epsilon, **common)
    greedy = LearnedPolicy(epsilon=0.0, **common)
    with tempfile.TemporaryDirectory() as folder:
        engine = open_store(f"sqlite:///{Path(folder) / 'bench.db'}")
        shop = Shop(seed, customers)
        profiles, events = shop.generate(180)
        ingest_profiles(engine, profiles, now=shop.start, settings=settings)
        _ingest(engine, events, settings, shop.start)
        now = shop.start + timedelta(hours=10)
        model: ChannelModel | None = None
        scores: dict[str, list[float]] = {name: [] for name in POLICIES}
        decisions = {"cold": 0, "live": 0}
        train_info: dict[str, Any] = {}
        for round_ in range(cold_rounds + live_rounds):
            _ingest(engine, shop.advance(now), settings, now)
            reachable = shop.eligible(shop.customer_ids).any(axis=1)
            ids = [c for c, ok in zip(shop.customer_ids, reachable.tolist(), strict=True) if ok]
            eligible = shop.eligible(ids)
            messages = shop.next_message(ids, now)
            history = None
            if model is not None:
                with engine.connect() as connection:
                    history = load_history(
                        connection, ids, now, attribution_hours=settings.channel_attribution_hours
                    )
                round_scores = _scores(
                    shop, history, ids, messages, eligible, policy, greedy, model, now, cost
                )
                for name, values in round_scores.items():
                    scores[name] += values
            made = policy.decide(
                history, _requests(ids, messages, eligible, f"r{round_}"), now, model=model
            )
            decisions["live" if model is not None else "cold"] += len(made)
            with engine.begin() as connection:
                sent = record_sends(
                    connection,
                    [(cid, d.channel, d.as_log()) for cid, d in zip(ids, made, strict=True)],
                    message_keys=messages,
                    now=now,
                    key_prefix=f"r{round_}",
                )
            _ingest(engine, sent_events(sent) + shop.respond(sent, now), settings, now)
            ingest_profiles(engine, shop.consent_updates(), now=now, settings=settings)
            now += timedelta(days=7)
            if round_ == cold_rounds - 1:
                t0 = time.perf_counter()
                with engine.connect() as connection:
                    logged = load_logged(
                        connection,
                        since=now - timedelta(days=settings.channel_training_days),
                        until=now,
                        attribution_hours=settings.channel_attribution_hours,
                    )
                result = train_from_logged(
                    logged,
                    version=f"bench-{seed}",
                    now=now,
                    min_conversions=settings.channel_min_conversions,
                )
                if result.model is None:
                    raise RuntimeError(result.reason)
                model = result.model
                metrics = model.card["metrics"]
                train_info = {
                    "decisions": result.decisions,
                    "conversions": result.conversions,
                    "clicks": int(logged.clicked.sum()),
                    "click_auc": metrics["click"]["auc"],
                    "click_ece": metrics["click"]["ece"],
                    "seconds": round(time.perf_counter() - t0, 1),
                }
        engine.dispose()
    means = {name: 1000.0 * statistics.fmean(values) for name, values in scores.items()}
    return {
        "seed": seed,
        "customers": customers,
        "decisions": decisions,
        "scored": len(scores["oracle"]),
        "per_1000": means,
        "train": train_info,
        "seconds": round(time.perf_counter() - started, 1),
    }


def scoring(customers: int = 100_000) -> dict[str, float]:
    """Time the model and the policy on ``customers`` customers with in-memory features."""
    shop_seed = 7
    shop = Shop(shop_seed, 2000)
    profiles, events = shop.generate(90)
    settings = Settings()
    with tempfile.TemporaryDirectory() as folder:
        engine = open_store(f"sqlite:///{Path(folder) / 'scoring.db'}")
        ingest_profiles(engine, profiles, now=shop.start, settings=settings)
        _ingest(engine, events, settings, shop.start)
        policy = LearnedPolicy(cold_epsilon=1.0, salt="scoring")
        now = shop.start + timedelta(hours=10)
        ids = list(shop.customer_ids)
        eligible = shop.eligible(ids)
        keep = eligible.any(axis=1)
        ids = [c for c, ok in zip(ids, keep.tolist(), strict=True) if ok]
        eligible, messages = eligible[keep], shop.next_message(ids, now)
        for round_ in range(3):
            made = policy.decide(None, _requests(ids, messages, eligible, f"s{round_}"), now,
                                 model=None)  # fmt: skip
            with engine.begin() as connection:
                sent = record_sends(
                    connection,
                    [(c, d.channel, d.as_log()) for c, d in zip(ids, made, strict=True)],
                    message_keys=messages,
                    now=now,
                    key_prefix=f"s{round_}",
                )
            _ingest(engine, sent_events(sent) + shop.respond(sent, now), settings, now)
            now += timedelta(days=7)
        with engine.connect() as connection:
            logged = load_logged(connection, since=now - timedelta(days=60), until=now)
            model = train_from_logged(logged, version="scoring", now=now, min_conversions=1).model
            assert model is not None
            started = time.perf_counter()
            small = load_history(connection, ids[:1000], now)
            load_seconds = time.perf_counter() - started
        engine.dispose()
    rows = np.resize(np.arange(len(small)), customers)
    big = small.take(rows)
    messages_big = [messages[i % len(messages)] for i in range(customers)]
    eligible_big = np.resize(eligible[:1000], (customers, len(CHANNELS)))
    requests = _requests([f"x{i}" for i in range(customers)], messages_big, eligible_big, "b")
    started = time.perf_counter()
    model.predict(big, messages_big)
    predict = time.perf_counter() - started
    started = time.perf_counter()
    policy.score(big, requests, model)
    score = time.perf_counter() - started
    started = time.perf_counter()
    policy.decide(big, requests, now, model=model)
    decide = time.perf_counter() - started
    return {
        "customers": customers,
        "model_predict_s": predict,
        "policy_score_s": score,
        "decisions_s": decide,
        "history_per_1000_customers_s": load_seconds,
    }


def _report(results: list[dict[str, Any]]) -> None:
    print("\n| policy | profit / 1,000 decisions (mean over seeds) | min | max | vs oracle "
          "| vs most-engaged |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for name in POLICIES:
        values = [r["per_1000"][name] for r in results]
        oracle = statistics.fmean(r["per_1000"]["oracle"] for r in results)
        engaged = statistics.fmean(r["per_1000"]["most-engaged"] for r in results)
        mean = statistics.fmean(values)
        print(
            f"| {name} | {mean:.1f} | {min(values):.1f} | {max(values):.1f} | "
            f"{mean / oracle:.1%} | {mean / engaged:.2f}x |"
        )
    print("\nper seed: learned / oracle, learned / most-engaged")
    for r in results:
        p = r["per_1000"]
        print(
            f"  seed {r['seed']}: {p['learned'] / p['oracle']:.1%}, "
            f"{p['learned'] / p['most-engaged']:.2f}x  ({r['scored']:,} scored decisions, "
            f"trained on {r['train']['decisions']:,} sends / {r['train']['clicks']:,} clicks / "
            f"{r['train']['conversions']:,} conversions, click AUC "
            f"{r['train']['click_auc']:.3f}; {r['seconds']} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--customers", type=int, default=8000)
    parser.add_argument("--cold-rounds", type=int, default=5)
    parser.add_argument("--live-rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--scoring-only", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    if not args.scoring_only:
        seeds = list(range(1, args.seeds + 1))
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [
                pool.submit(run_seed, s, args.customers, args.cold_rounds, args.live_rounds)
                for s in seeds
            ]
            results = [f.result() for f in futures]
        _report(results)
        print(f"\n{len(seeds)} seeds in {time.perf_counter() - started:.0f} s")
    timing = scoring()
    print(
        f"\nscoring {timing['customers']:,} customers (features in memory): model "
        f"{timing['model_predict_s'] * 1000:.0f} ms, policy scores "
        f"{timing['policy_score_s'] * 1000:.0f} ms, with Decision objects "
        f"{timing['decisions_s'] * 1000:.0f} ms; history query "
        f"{timing['history_per_1000_customers_s'] * 1000:.0f} ms per 1,000 customers (SQLite)"
    )
    if args.json:
        args.json.write_text(json.dumps({"seeds": results, "scoring": timing}, indent=2))


if __name__ == "__main__":
    main()
