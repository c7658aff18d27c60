"""Rendering messages per channel: ``TemplateRenderer.render`` against raw Jinja; and,
with ``--dispatch N``, a dispatch pass of N emails through the file outbox.

    .venv/bin/python -m bench.render --messages 5000
    .venv/bin/python -m bench.render --messages 0 --dispatch 5000
    .venv/bin/python -m bench.render --unbudgeted ...   (the same, without the budget)

For each channel (email, sms, push, whatsapp), renders ``cart_reminder`` N times, each
for a different customer, through ``TemplateRenderer.from_settings(Path("templates"),
Settings()).render`` (timed, one renderer, warm caches), then renders the same variant
template text (``email.html`` with its layout and macros, ``sms.txt``, every string of
``push.yaml`` / ``whatsapp.yaml``) with a plain ``jinja2.Environment`` and the same
customer and event: no sandbox, no StrictUndefined, no shared content rendered per
message (``message`` is rendered once up front), links not signed (fixed URLs), no CSS
inlining, no text part, no checks. That is the floor: Jinja's own cost for the
same output.

``--dispatch N`` seeds a fresh SQLite store (in a temporary folder) with N customers
and one due ``cart_reminder`` email each, then times one ``dispatch`` pass: claim,
recipients, render, MIME, the file outbox (its batch flush included), marking the rows
sent. It prints wall time and the process's CPU time (``time.process_time``).

``--unbudgeted`` renders in Jinja's plain immutable sandbox instead of the budgeted one
(no loop, call, operator or output accounting, no URL attribute check): run both to see
what the render budget costs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import yaml

from omni_journey.delivery import CustomerView, OutboxRow, dispatch
from omni_journey.delivery.file import FileProvider
from omni_journey.render import CHANNELS, RenderContext, TemplateRenderer, customer_profile
from omni_journey.render.environment import paragraphs
from omni_journey.settings import Settings
from omni_journey.store import open_store
from omni_journey.store.tables import Consent, Customer, Message

TEMPLATES = Path("templates")
MESSAGE = "cart_reminder"
NAMES = ("Ana", "Ben", "Chloé", "Dawit", "Emma", "Farid", "Grace", "Hugo")


def _contexts(count: int) -> list[RenderContext]:
    return [
        RenderContext(
            customer=customer_profile(
                f"c-{i:07d}",
                {"first_name": NAMES[i % len(NAMES)], "tier": "gold"},
                timezone="Europe/Berlin",
            ),
            event={
                "sku": f"SKU-{i % 500:05d}",
                "product_name": f"Hydrating Serum {i % 50} ml",
                "price": 10 + i % 40,
                "currency": "EUR",
                "image_url": f"https://shop.example.com/img/{i % 500}.jpg",
            },
            journey={"key": "cart_abandonment", "step": "remind"},
        )
        for i in range(count)
    ]


class _Links:
    """``links`` for the floor: fixed URLs, nothing signed."""

    unsubscribe = "https://links.example.com/u/x"

    def click(self, url: object) -> str:
        return "https://links.example.com/c/x"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _floor(
    channel: str, contexts: list[RenderContext], message: dict[str, Any]
) -> Callable[[], None]:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["paragraphs"] = paragraphs
    folder = TEMPLATES / MESSAGE
    if channel in ("email", "sms"):
        name = "email.html" if channel == "email" else "sms.txt"
        templates = [environment.get_template(f"{MESSAGE}/{name}")]
    else:
        spec = yaml.safe_load((folder / f"{channel}.yaml").read_text())
        templates = [environment.from_string(s) for s in _strings(spec)]
    links = _Links()
    variables = [{**c.variables(), "links": links, "message": message} for c in contexts]

    def run() -> None:
        for v in variables:
            for template in templates:
                template.render(v)

    return run


def _timed(run: Callable[[], object]) -> float:
    wall = time.perf_counter()
    run()
    return time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--dispatch", type=int, default=0, help="emails to dispatch (0: none)")
    parser.add_argument(
        "--unbudgeted", action="store_true", help="Jinja's plain sandbox, without the budget"
    )
    args = parser.parse_args()
    if args.unbudgeted:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        import omni_journey.render.environment as environment

        # what build_environment instantiates, for this process only
        vars(environment)["BudgetedSandbox"] = ImmutableSandboxedEnvironment
        print("without the render budget (Jinja's plain immutable sandbox)")
    if args.dispatch:
        _dispatch(args.dispatch)
    count = args.messages
    if not count:
        return
    contexts = _contexts(count)
    renderer = TemplateRenderer.from_settings(TEMPLATES, Settings())
    # the shared content, rendered once, for the floor's ``message``
    content = yaml.safe_load((TEMPLATES / MESSAGE / "message.yaml").read_text())
    plain = jinja2.Environment(autoescape=jinja2.select_autoescape(default_for_string=False))
    variables = {**contexts[0].variables(), "links": _Links()}
    message = {
        k: (plain.from_string(v).render(variables) if isinstance(v, str) else v)
        for k, v in content.items()
    }
    message["cta"] = {k: plain.from_string(v).render(variables) for k, v in content["cta"].items()}

    print(f"{count:,} renders of {MESSAGE} per channel, Jinja {jinja2.__version__}")
    print(f"{'channel':<10} {'render/s':>10} {'raw jinja/s':>12} {'ours / raw':>11}")
    for channel in CHANNELS:
        for context in contexts[:20]:  # warm the caches (compiled templates, files)
            renderer.render(MESSAGE, channel, context)
        floor = _floor(channel, contexts, message)
        floor()  # warm-up

        def ours(channel: str = channel) -> None:
            for context in contexts:
                renderer.render(MESSAGE, channel, context)

        ours_s, raw_s = _timed(ours), _timed(floor)
        print(
            f"{channel:<10} {count / ours_s:>10,.0f} {count / raw_s:>12,.0f}",
            f"{raw_s / ours_s:>10.1%}",
        )


def _dispatch(count: int) -> None:
    """One dispatch pass of ``count`` emails to the file outbox on a fresh SQLite store."""
    at = datetime(2026, 5, 1, 10, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as folder:
        home = Path(folder)
        settings = Settings(home=home, rate_limits="", unsubscribe_url="https://x.example/u")
        engine = open_store(f"sqlite:///{home / 'omni.db'}")
        people = [c.customer for c in _contexts(count)]
        with engine.begin() as connection:
            connection.execute(
                Customer.__table__.insert(),  # type: ignore[attr-defined]
                [{"id": p["id"], "email": f"{p['id']}@example.com", "timezone": "Europe/Berlin",
                  "attributes": {"first_name": p["first_name"]}, "created_at": at,
                  "updated_at": at} for p in people],
            )  # fmt: skip
            connection.execute(
                Consent.__table__.insert(),  # type: ignore[attr-defined]
                [{"customer_id": p["id"], "channel": "email", "granted": True, "updated_at": at}
                 for p in people],
            )  # fmt: skip
            connection.execute(
                Message.__table__.insert(),  # type: ignore[attr-defined]
                [{"idempotency_key": f"k-{p['id']}", "customer_id": p["id"], "channel": "email",
                  "message_key": MESSAGE, "status": "pending", "send_after": at,
                  "created_at": at, "attempts": 0, "decision": {},
                  "render_context": {"event": c.event}}
                 for p, c in zip(people, _contexts(count), strict=True)],
            )  # fmt: skip
        templates = TemplateRenderer.from_settings(TEMPLATES, settings)

        def render(message: OutboxRow, customer: CustomerView) -> object:
            profile = customer_profile(customer.id, customer.attributes, timezone=customer.timezone)
            event = dict(message.render_context.get("event") or {})
            return templates.render(message.message_key, "email", RenderContext(profile, event))

        provider = FileProvider(settings.outbox_dir, sender=settings.email_from)
        cpu, wall = time.process_time(), time.perf_counter()
        report = dispatch(engine, {"email": provider}, render, now=at, settings=settings,
                          worker_id="bench")  # fmt: skip
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        engine.dispose()
    print(f"dispatch of {count:,} emails to the file outbox: {report.summary()}")
    print(f"  wall {wall:.2f} s ({count / wall:,.0f} emails/s), CPU {cpu:.2f} s "
          f"({cpu / count * 1000:.2f} ms an email)")  # fmt: skip


if __name__ == "__main__":
    main()
