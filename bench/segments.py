"""Segment evaluation at scale: compiled SQL against hand-written SQL of the same condition.

    .venv/bin/python -m bench.segments                      # SQLite file, 100k / 1M
    .venv/bin/python -m bench.segments --postgres           # a throwaway PostgreSQL 15
    .venv/bin/python -m bench.segments --url postgresql+psycopg://...
    .venv/bin/python -m bench.segments --customers 10000 --events 100000   # quick

Loads customers, consents, push tokens, suppressions and events with executemany,
then for each segment runs the compiled query and a hand-written raw query (best of
``--repeat``), checks both return the same ids, and prints seconds and the ratio. It
ends with ``evaluate_segments`` over all of them (first run: baseline; second: delta).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text

from omni_journey.segments.compile import compile_segment
from omni_journey.segments.evaluate import evaluate_segments
from omni_journey.spec.models import SegmentSpec
from omni_journey.store import open_store

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CATEGORIES = ["skincare", "haircare", "bath", "coffee", "tea", "pet_food", "vitamins", "toys"]
NAMES = [
    ("product.viewed", 0.50),
    ("page.viewed", 0.20),
    ("product.added", 0.12),
    ("order.completed", 0.12),
    ("checkout.started", 0.06),
]
CHUNK = 20_000


# --- data --------------------------------------------------------------------------


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _customers(n: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {
            "id": f"c-{i:07d}",
            "email": f"c{i}@example.com" if rng.random() < 0.8 else None,
            "phone": f"+49151{i:08d}" if rng.random() < 0.5 else None,
            "attributes": {
                "tier": rng.choice(["gold", "silver", "bronze", "bronze"]),
                "age": rng.randint(18, 80),
                "vip": rng.random() < 0.05,
            },
            "merged_into": None,
            "created_at": NOW,
            "updated_at": NOW,
        }


def _properties(name: str, rng: random.Random) -> dict[str, Any]:
    sku = rng.randrange(500)
    category = CATEGORIES[sku % len(CATEGORIES)]
    if name == "order.completed":
        products = [
            {
                "sku": f"SKU-{s}",
                "category": CATEGORIES[s % len(CATEGORIES)],
                "price": 12.5,
                "quantity": 1,
            }
            for s in rng.sample(range(500), rng.randint(1, 3))
        ]
        return {
            "order_id": f"o-{rng.random()}",
            "total": 12.5 * len(products),
            "products": products,
        }
    if name == "page.viewed":
        return {"url": f"/p/{sku}"}
    return {"sku": f"SKU-{sku}", "category": category, "price": float(5 + sku % 60)}


def _events(n: int, customers: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    names = [name for name, _ in NAMES]
    weights = [w for _, w in NAMES]
    for i in range(n):
        name = rng.choices(names, weights)[0]
        at = NOW - timedelta(seconds=rng.randrange(365 * 86400))
        yield {
            "event_id": f"e-{i:08d}",
            "name": name,
            "customer_id": f"c-{rng.randrange(customers):07d}",
            "at": at,
            "received_at": at,
            "properties": _properties(name, rng),
        }


def _cell(value: Any, dialect: str) -> Any:
    """A value as the column stores it, so rows skip SQLAlchemy's per-row processing."""
    if isinstance(value, datetime):
        utc = value.astimezone(UTC)
        if dialect == "sqlite":  # what UTCDateTime writes: naive UTC text
            return utc.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return utc.isoformat()
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    if isinstance(value, bool) and dialect == "postgresql":
        return "t" if value else "f"
    return value


def _bulk(connection: Connection, table: str, rows: Iterator[dict[str, Any]]) -> None:
    """executemany on SQLite, COPY on PostgreSQL, in chunks."""
    dialect = connection.dialect.name
    for batch in _chunks(rows):
        columns = list(batch[0])
        values = [tuple(_cell(row[c], dialect) for c in columns) for row in batch]
        if dialect == "postgresql":
            raw = connection.connection.driver_connection
            assert raw is not None
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for value in values:
                    copy.write_row(value)
        else:
            marks = ", ".join("?" for _ in columns)
            connection.exec_driver_sql(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values
            )


def load(engine: Engine, customers: int, events: int, seed: int) -> float:
    rng = random.Random(seed)
    started = time.perf_counter()
    with engine.begin() as connection:
        _bulk(connection, "customers", _customers(customers, rng))
        consents = (
            {
                "customer_id": f"c-{i:07d}",
                "channel": ch,
                "granted": rng.random() < 0.7,
                "updated_at": NOW,
            }
            for i in range(customers)
            for ch in ("email", "sms", "push")
        )
        _bulk(connection, "consents", consents)
        tokens = (
            {
                "kind": "push_token",
                "value": f"tok-{i}",
                "customer_id": f"c-{i:07d}",
                "created_at": NOW,
            }
            for i in range(customers)
            if i % 3 == 0
        )
        _bulk(connection, "identities", tokens)
        suppressed = (
            {
                "channel": "email",
                "address": f"c{i}@example.com",
                "reason": "bounce",
                "created_at": NOW,
            }
            for i in range(0, customers, 50)
        )
        _bulk(connection, "suppressions", suppressed)
        _bulk(connection, "events", _events(events, customers, rng))
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    return time.perf_counter() - started


# --- segments and their hand-written equivalents -------------------------------------


def _ts(engine: Engine, value: datetime) -> Any:
    """A timestamp bound the way the column stores it."""
    if engine.dialect.name == "sqlite":
        return (
            value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        )
    return value


def _cases(engine: Engine) -> list[tuple[SegmentSpec, str, dict[str, Any]]]:
    pg = engine.dialect.name == "postgresql"

    def attr(key: str) -> str:
        return f"c.attributes->>'{key}'" if pg else f"json_extract(c.attributes, '$.{key}')"

    def prop(key: str) -> str:
        return f"e.properties->>'{key}'" if pg else f"json_extract(e.properties, '$.{key}')"

    live = "SELECT c.id FROM customers c WHERE c.merged_into IS NULL"
    d7, d3, d90, d365 = (_ts(engine, NOW - timedelta(days=d)) for d in (7, 3, 90, 365))
    now = _ts(engine, NOW)
    fan_out = (
        "EXISTS (SELECT 1 FROM jsonb_array_elements(e.properties->'products') p "
        "WHERE p->>'category' = 'coffee')"
        if pg
        else "EXISTS (SELECT 1 FROM json_each(e.properties, '$.products') p "
        "WHERE json_extract(p.value, '$.category') = 'coffee')"
    )
    total = "(e.properties->>'total')::float" if pg else "json_extract(e.properties, '$.total')"
    specs: list[tuple[dict[str, Any], str]] = [
        (
            {"key": "gold", "match": {"attribute": "tier", "equals": "gold"}},
            f"{live} AND {attr('tier')} = 'gold'",
        ),
        (
            {
                "key": "adults_vip",
                "match": {
                    "all": [{"attribute": "age", "gte": 30}, {"attribute": "vip", "equals": True}]
                },
            },
            f"{live} AND ({attr('age')})::int >= 30 AND ({attr('vip')})::boolean"
            if pg
            else f"{live} AND {attr('age')} >= 30 AND json_type(c.attributes, '$.vip') = 'true'",
        ),
        (
            {
                "key": "skincare_lookers",
                "match": {
                    "event": "product.viewed",
                    "where": {"category": "skincare"},
                    "within": "7d",
                    "at_least": 2,
                },
            },
            f"{live} AND c.id IN (SELECT e.customer_id FROM events e"
            " WHERE e.name = 'product.viewed' AND e.at >= :d7 AND e.at <= :now"
            f" AND {prop('category')} = 'skincare'"
            " GROUP BY e.customer_id HAVING count(*) >= 2)",
        ),
        (
            {
                "key": "cart_abandoners",
                "match": {
                    "all": [
                        {"event": "product.added", "within": "3d"},
                        {"not": {"event": "order.completed", "within": "3d"}},
                    ]
                },
            },
            f"{live} AND c.id IN (SELECT customer_id FROM events WHERE name = 'product.added'"
            " AND at >= :d3 AND at <= :now) AND c.id NOT IN (SELECT customer_id FROM events"
            " WHERE name = 'order.completed' AND at >= :d3 AND at <= :now)",
        ),
        (
            {"key": "emailable", "match": {"reachable": "email"}},
            f"{live} AND c.email IS NOT NULL AND c.email <> '' AND c.id IN (SELECT customer_id"
            " FROM consents WHERE channel = 'email' AND granted) AND NOT EXISTS (SELECT 1 FROM"
            " suppressions s WHERE s.channel = 'email' AND s.address = c.email)",
        ),
        (
            {
                "key": "coffee_buyers",
                "match": {
                    "event": "order.completed",
                    "where": {"products.category": "coffee"},
                    "within": "90d",
                },
            },
            f"{live} AND c.id IN (SELECT e.customer_id FROM events e WHERE e.name ="
            f" 'order.completed' AND e.at >= :d90 AND e.at <= :now AND {fan_out})",
        ),
        (
            {
                "key": "big_spenders",
                "match": {
                    "purchases": {"within": "365d", "count": {"gte": 3}, "total": {"gte": 100}}
                },
            },
            f"{live} AND c.id IN (SELECT e.customer_id FROM events e WHERE e.name ="
            " 'order.completed' AND e.at <= :now AND e.at >= :d365 GROUP BY e.customer_id"
            f" HAVING count(*) >= 3 AND sum({total}) >= 100)",
        ),
        (
            {"key": "lapsed", "match": {"purchases": {"count": {"gte": 2}, "none_within": "90d"}}},
            f"{live} AND c.id IN (SELECT customer_id FROM events WHERE name = 'order.completed'"
            " AND at <= :now GROUP BY customer_id HAVING count(*) >= 2 AND max(at) < :d90)",
        ),
    ]
    if not pg:
        specs[1] = (specs[1][0], specs[1][1].replace("::int", ""))
    params = {"d7": d7, "d3": d3, "d90": d90, "d365": d365, "now": now}
    return [(SegmentSpec.model_validate(spec), sql, params) for spec, sql in specs]


def _best(repeat: int, run: Callable[[], set[str]]) -> tuple[float, set[str]]:
    best, result = float("inf"), set[str]()
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def bench(engine: Engine, repeat: int) -> list[dict[str, Any]]:
    rows = []
    cases = _cases(engine)
    segments = {spec.key: spec for spec, _, _ in cases}
    with engine.connect() as connection:
        for spec, sql, params in cases:
            query = compile_segment(spec, segments, now=NOW, dialect=engine.dialect.name)

            def compiled(c: Connection = connection, q: Any = query) -> set[str]:
                return {str(r[0]) for r in c.execute(q)}

            def raw(
                c: Connection = connection, s: str = sql, p: dict[str, Any] = params
            ) -> set[str]:
                return {str(r[0]) for r in c.execute(text(s), p)}

            seconds, ours = _best(repeat, compiled)
            raw_seconds, theirs = _best(repeat, raw)
            if ours != theirs:
                raise SystemExit(f"{spec.key}: compiled {len(ours)} ids, raw {len(theirs)} ids")
            rows.append(
                {
                    "segment": spec.key,
                    "members": len(ours),
                    "seconds": seconds,
                    "raw_seconds": raw_seconds,
                    "ratio": seconds / raw_seconds,
                }
            )
    started = time.perf_counter()
    evaluate_segments(engine, segments, now=NOW)
    first = time.perf_counter() - started
    started = time.perf_counter()
    evaluate_segments(engine, segments, now=NOW + timedelta(hours=1))
    second = time.perf_counter() - started
    rows.append({"segment": "evaluate_segments (all 8)", "first": first, "second": second})
    return rows


@contextlib.contextmanager
def _database(args: argparse.Namespace) -> Iterator[str]:
    if args.url:
        yield args.url
    elif args.postgres:
        from tests.support.postgres import postgres_server  # the test suite's throwaway server

        with postgres_server() as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", help="SQLAlchemy URL of an empty database to fill")
    parser.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL")
    args = parser.parse_args()
    with _database(args) as url:
        engine = open_store(url)
        loaded = load(engine, args.customers, args.events, args.seed)
        print(
            f"{engine.dialect.name}: loaded {args.customers:,} customers and "
            f"{args.events:,} events in {loaded:.1f} s"
        )
        print("| segment | members | compiled s | raw SQL s | ratio |")
        print("|---|---:|---:|---:|---:|")
        for row in bench(engine, args.repeat):
            if "ratio" in row:
                print(
                    f"| {row['segment']} | {row['members']:,} | {row['seconds']:.3f} | "
                    f"{row['raw_seconds']:.3f} | {row['ratio']:.2f} |"
                )
            else:
                print(
                    f"| {row['segment']} | first {row['first']:.2f} s, "
                    f"next {row['second']:.2f} s | | | |"
                )
        engine.dispose()


if __name__ == "__main__":
    main()
