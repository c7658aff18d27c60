"""The console as one ASGI app, mounted by the collector under ``/console``.

Every request passes :func:`~omni_journey.console.access.refusal` first (no token
configured: 404; wrong or no credentials: 401; not GET/HEAD: 405), and every answer,
refusals and unknown addresses included, carries the console's security headers. Pages
read the store in a worker thread, on one connection each, and write nothing.

Addresses (under ``/console``):

==========================================  ============================================
``/``  (``?q=KEY``)                         search; journeys with their entries
``/customers/<id>`` (``?offset=N``)         profile, identities, consent, timeline
``/customers/<id>/explain/<journey>``       that customer's decisions in the journey
``/journeys/<key>``                         the diagram with live counts
``/journeys/<key>/customers?step=&count=``  the customers behind one count
==========================================  ============================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omni_journey.console.access import SECURITY_HEADERS, redact_console_paths, refusal
from omni_journey.console.customer_pages import (
    customer_href,
    customer_page,
    explain_page,
    home_page,
)
from omni_journey.console.html import el, page
from omni_journey.console.journey_pages import journey_page, sample_page
from omni_journey.console.journeys import is_journey_key
from omni_journey.history import find_customer
from omni_journey.settings import Settings

__all__ = ["create_console"]

_EXPLAIN = "/explain/"


@dataclass(frozen=True)
class _ToCustomer:
    """Answer with a redirect to this customer's page (a search hit, an old id)."""

    customer_id: str


Answer = tuple[int, str] | _ToCustomer


def _not_found(what: str) -> tuple[int, str]:
    return 404, page(
        f"No {what}",
        el("h1", None, f"No {what} matches that address"),
        el("p", None, el("a", {"href": "/console/"}, "← search")),
    )


def _offset(request: Request) -> int:
    text = request.query_params.get("offset", "0")
    return int(text) if text.isdigit() and len(text) < 10 else 0


class _Guard:
    """Refuses what :func:`refusal` refuses, and adds the security headers to every
    answer the console gives."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower().encode("latin-1") for k in SECURITY_HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                headers += [
                    (k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in SECURITY_HEADERS.items()
                ]
                message = {**message, "headers": headers}
            await send(message)

        refused = refusal(Request(scope, receive), self.settings.console_token)
        if refused is not None:
            await refused(scope, receive, secured)
            return
        await self.app(scope, receive, secured)


def create_console(engine: Engine, settings: Settings) -> ASGIApp:
    """The console for one store, closed unless ``settings.console_token`` is set."""
    redact_console_paths()

    def reading(render: Callable[[Any, Request], Answer]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            def run() -> Answer:
                with engine.connect() as connection:
                    return render(connection, request)

            answer = await run_in_threadpool(run)
            if isinstance(answer, _ToCustomer):
                return RedirectResponse(customer_href(answer.customer_id), status_code=303)
            status, html = answer
            return HTMLResponse(html, status_code=status)

        return endpoint

    def home(connection: Any, request: Request) -> Answer:
        query = request.query_params.get("q", "").strip()[:512]
        if not query:
            return 200, home_page(connection, settings)
        found = find_customer(connection, query, settings.default_region)
        if found is None:
            return 200, home_page(connection, settings, query=query, missing=True)
        return _ToCustomer(str(found.id))

    def customer(connection: Any, request: Request) -> Answer:
        rest = str(request.path_params["rest"])
        key, sep, journey = rest.rpartition(_EXPLAIN)
        if not (sep and is_journey_key(journey)):
            key, journey = rest, ""
        found = find_customer(connection, key, settings.default_region) if key else None
        if found is None:
            return _not_found("customer")
        if str(found.id) != key and not journey:  # an old id, an email...: the survivor
            return _ToCustomer(str(found.id))
        if journey:
            html = explain_page(connection, settings, found, journey)
            return (200, html) if html is not None else _not_found("journey")
        return 200, customer_page(connection, settings, found, _offset(request))

    def journey(connection: Any, request: Request) -> Answer:
        html = journey_page(connection, settings, str(request.path_params["key"]))
        return (200, html) if html is not None else _not_found("journey")

    def sample(connection: Any, request: Request) -> Answer:
        step = request.query_params.get("step") or None
        code = request.query_params.get("count", "")
        return sample_page(connection, settings, str(request.path_params["key"]), step, code)

    app = Starlette(
        routes=[
            Route("/", reading(home), methods=["GET", "HEAD"]),
            Route("/customers/{rest:path}", reading(customer), methods=["GET", "HEAD"]),
            Route("/journeys/{key}", reading(journey), methods=["GET", "HEAD"]),
            Route("/journeys/{key}/customers", reading(sample), methods=["GET", "HEAD"]),
        ]
    )
    return _Guard(app, settings)
