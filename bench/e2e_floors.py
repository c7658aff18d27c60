"""The end-to-end benchmark's floors, each run as its own interpreter by ``bench.e2e``.

    python -m bench.e2e_floors FLOOR CONFIG_JSON    # prints {"items": N}

Python's standard library and Jinja2 only (psycopg for PostgreSQL), nothing of
omni_journey, so each floor measures the least work its stage could cost:

* ``ingest``: the profiles and the event chunk files read with ``json`` and inserted
  with ``executemany`` into a minimal schema (customers, consents, events with a
  unique event id), one transaction per file;
* ``enroll``: one set-based ``INSERT .. SELECT`` of an enrollment per (customer,
  journey) for the events that trigger the repository's journeys;
* ``render``: plain ``jinja2.Environment`` renders of each channel variant of the
  messages sent (email.html with its layout, sms.txt, the push / whatsapp YAML text
  as one template), as many per (message, channel) as the product sent;
* ``files``: the same number of files of the same sizes written, one ``sync`` at the end.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from bench.e2e_data import TRIGGERS

SCHEMA = (
    "CREATE TABLE customers (id TEXT PRIMARY KEY, email TEXT, phone TEXT, timezone TEXT, "
    "locale TEXT, attributes TEXT)",
    "CREATE TABLE consents (customer_id TEXT, channel TEXT, granted BOOLEAN, "
    "PRIMARY KEY (customer_id, channel))",
    "CREATE TABLE events (seq {seq}, event_id TEXT UNIQUE, name TEXT, customer_id TEXT, "
    "at TEXT, properties {json})",
    "CREATE INDEX ix_events_customer ON events (customer_id)",
    "CREATE TABLE triggers (journey TEXT, event TEXT, category TEXT)",
    "CREATE TABLE enrollments (id {seq}, customer_id TEXT, journey TEXT, entered_at TEXT)",
)
ENROLL = (
    "INSERT INTO enrollments (customer_id, journey, entered_at) "
    "SELECT e.customer_id, t.journey, min(e.at) FROM events e JOIN triggers t ON e.name = t.event "
    "WHERE t.category IS NULL OR {category} = t.category GROUP BY e.customer_id, t.journey"
)


class _Database:
    """sqlite3 or psycopg behind the few calls the floors make."""

    def __init__(self, url: str) -> None:
        self.postgres = url.startswith("postgresql")
        if self.postgres:
            import psycopg  # only for PostgreSQL

            self.connection: Any = psycopg.connect(url.replace("+psycopg", ""), autocommit=True)
            self.connection.execute("CREATE SCHEMA IF NOT EXISTS e2e_floor")
            self.connection.execute("SET search_path TO e2e_floor")
        else:
            self.connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.postgres else text

    def many(self, text: str, rows: list[tuple[Any, ...]]) -> None:
        cursor = self.connection.cursor()
        cursor.executemany(self.sql(text), rows)

    def transaction(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        self.connection.execute("BEGIN")
        for text, rows in statements:
            self.many(text, rows)
        self.connection.execute("COMMIT")


def create(url: str) -> None:
    db = _Database(url)
    seq = "BIGSERIAL PRIMARY KEY" if db.postgres else "INTEGER PRIMARY KEY"
    for statement in SCHEMA:
        db.connection.execute(statement.format(seq=seq, json="JSONB" if db.postgres else "TEXT"))


def ingest(url: str, customers: str, chunks: list[str]) -> int:
    db = _Database(url)
    people, consents = [], []
    with Path(customers).open() as lines:
        for line in lines:
            p = json.loads(line)
            contact = (p["customer_id"], p["email"], p.get("phone"), p["timezone"], p["locale"])
            people.append((*contact, json.dumps(p["attributes"])))
            consents += [(p["customer_id"], c, g) for c, g in p["consent"].items()]
    db.transaction(
        [
            ("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", people),
            ("INSERT INTO consents VALUES (?, ?, ?)", consents),
        ]
    )
    count = len(people)
    sql = "INSERT INTO events (event_id, name, customer_id, at, properties) VALUES (?, ?, ?, ?, ?)"
    for chunk in chunks:
        with Path(chunk).open() as lines:
            rows = []
            for line in lines:
                e = json.loads(line)
                props = json.dumps(e["properties"])
                rows.append((e["id"], e["name"], e["customer_id"], e["at"], props))
        db.transaction([(sql, rows)])
        count += len(rows)
    return count


def enroll(url: str) -> int:
    db = _Database(url)
    db.transaction([("INSERT INTO triggers VALUES (?, ?, ?)", list(TRIGGERS))])
    category = "e.properties->>'$.category'"
    if db.postgres:
        category = "e.properties->>'category'"
    db.connection.execute("BEGIN")
    cursor = db.connection.execute(ENROLL.format(category=category))
    db.connection.execute("COMMIT")
    return int(cursor.rowcount)


class _Links:
    unsubscribe = "https://links.example.com/u/x"

    def click(self, url: object) -> str:
        return "https://links.example.com/c/x"


def _paragraphs(text: object) -> Markup:
    return Markup("\n").join(Markup("<p>{}</p>").format(escape(b)) for b in str(text).split("\n\n"))


def render(templates: str, counts: list[tuple[str, str, int]]) -> int:
    root = Path(templates)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        autoescape=jinja2.select_autoescape(("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["paragraphs"] = _paragraphs
    message = {
        "subject": "Ana, you left something in your cart",
        "headline": "Your cart is waiting",
        "body": "Hi Ana,\n\nWe saved the items in your cart. They are not reserved for long.",
        "cta": {"text": "Back to my cart", "url": "https://shop.example.com/cart"},
        "preheader": "We saved the items in your cart for you.",
    }
    item = {"sku": "SKU-00001", "product_name": "Skincare item 1", "price": 24.5, "quantity": 2}
    done = 0
    for key, channel, count in counts:
        if channel == "email":
            name = f"{key}/email.html"
            template = env.get_template(name if (root / name).exists() else "_partials/base.html")
        else:
            suffix = "txt" if channel == "sms" else "yaml"
            template = env.from_string((root / key / f"{channel}.{suffix}").read_text())
        for i in range(count):
            event = {**item, "order_id": f"o-{i:08d}", "total": 49.0, "products": [item]}
            customer = {"id": f"c-{i:07d}", "first_name": "Ana", "locale": "en-GB"}
            variables = {"customer": customer, "event": event, "links": _Links()}
            template.render(variables, message=message, journey={"key": key, "step": "s"})
            done += 1
    return done


def files(folder: str, sizes: list[int]) -> int:
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    for i, size in enumerate(sizes):
        (root / f"m-{i:08d}.out").write_bytes(b"x" * size)
    os.sync()
    return len(sizes)


def main() -> None:
    floor, config = sys.argv[1], json.loads(sys.argv[2])
    items = 0
    if floor == "create":
        create(config["url"])
    elif floor == "ingest":
        items = ingest(config["url"], config["customers"], config["chunks"])
    elif floor == "enroll":
        items = enroll(config["url"])
    elif floor == "render":
        items = render(config["templates"], [tuple(c) for c in config["counts"]])
    elif floor == "files":
        items = files(config["folder"], json.loads(Path(config["sizes"]).read_text()))
    print(json.dumps({"items": items}))


if __name__ == "__main__":
    main()
