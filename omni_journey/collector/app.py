"""The HTTP collector: Segment Spec endpoints in front of ingestion, signed links and
SNS feedback, as one ASGI app.

``create_app(engine, settings, clock)`` builds a Starlette app; nothing happens at import.
Every ``POST /v1/<call>`` is authenticated by a write key (HTTP basic-auth user, or
``writeKey`` in the body), held to its key's rate limit (429 past it:
:mod:`~omni_journey.collector.rate_limits`), read within ``settings.max_body_bytes``
(also after gzip decoding), mapped by :mod:`omni_journey.collector.segment_protocol`,
and answered 200 only after :func:`ingest_events` / :func:`ingest_profiles` have stored
it durably. Storing runs in a worker thread so the event loop keeps serving. Logs carry
counts and reason codes only: never an id, address, token or write key.

Here the routes are put together; what answers them lives by concept:
:mod:`~omni_journey.collector.segment_calls` (the Segment calls, behind
:mod:`~omni_journey.collector.write_keys` and
:mod:`~omni_journey.collector.request_body`), :mod:`~omni_journey.collector.sns`, and
``/l/u/<token>`` and ``/l/c/<token>`` (unsubscribe, click) in
:mod:`omni_journey.collector.link_pages`. ``POST /feedback/ses`` and ``POST /inbound/sms`` are
Amazon SNS HTTP(S) subscriptions: the SNS signature is the authentication (no write
key), checked by :func:`omni_journey.delivery.feedback.handle_sns_notification`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from omni_journey.collector.link_pages import link_routes, redact_link_paths
from omni_journey.collector.rate_limits import RateLimiter
from omni_journey.collector.refusals import RequestRefused
from omni_journey.collector.segment_calls import handle_call
from omni_journey.collector.sns import SnsSource, confirm_sns_subscription, handle_sns
from omni_journey.console import create_console
from omni_journey.delivery.sns_signature import SnsSignatureVerifier
from omni_journey.ingest.announce import IngestedBuffer
from omni_journey.settings import Settings

__all__ = ["ROUTES", "Clock", "confirm_sns_subscription", "create_app"]

Clock = Callable[[], datetime]

# call -> paths. Segment's short forms and the legacy /v1/import answer too.
ROUTES: Mapping[str, tuple[str, ...]] = {
    "track": ("/v1/track", "/v1/t"),
    "identify": ("/v1/identify", "/v1/i"),
    "page": ("/v1/page", "/v1/p"),
    "screen": ("/v1/screen", "/v1/s"),
    "alias": ("/v1/alias", "/v1/a"),
    "batch": ("/v1/batch", "/v1/b", "/v1/import"),
}

_log = logging.getLogger(__name__)


def create_app(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    *,
    sns_verifier: SnsSignatureVerifier | None = None,
    confirm_subscription: Callable[[str], None] | None = None,
    announcer: IngestedBuffer | None = None,
) -> Starlette:
    """The collector for one store. ``clock`` returns the aware time a request arrives.

    ``sns_verifier`` checks SNS signatures (default: certificates fetched from AWS, cached);
    ``confirm_subscription(url)`` confirms an SNS subscription (default:
    :func:`confirm_sns_subscription`). Tests pass their own; production never needs to.
    """
    verifier = sns_verifier or SnsSignatureVerifier()
    confirm = confirm_subscription or confirm_sns_subscription
    redact_link_paths()
    # One Prefect event per event name every few seconds (a no-op without a Prefect
    # API): journeys triggered by these events start within seconds, bursts coalesce.
    # Inbound replies are announced too (``message.replied``), so a journey they enter
    # starts as quickly. ``announcer`` replaces the buffer (tests).
    announcer = announcer or IngestedBuffer(2.0, source="collector")
    # Requests per write key (collector.rate_limits): 429 with Retry-After past the limit.
    limiter = RateLimiter(settings.collector_rate_limit, settings.collector_rate_burst)

    def endpoint(call: str) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            try:
                return await handle_call(request, call, engine, settings, clock, announcer, limiter)
            except RequestRefused as refused:
                _log.info("refused %s: %s %s", call, refused.status, refused.reason)
                return refused.response()

        return handle

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def sns_endpoint(source: SnsSource) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            try:
                return await handle_sns(
                    request, source, engine, settings, clock, verifier, confirm, announcer
                )
            except RequestRefused as refused:
                _log.info("refused sns %s: %s %s", source, refused.status, refused.reason)
                return refused.response()

        return handle

    routes: list[BaseRoute] = [Route("/health", health, methods=["GET"])]
    for call, paths in ROUTES.items():
        routes += [Route(path, endpoint(call), methods=["POST"]) for path in paths]
    routes += link_routes(engine, settings, clock)
    routes += [
        Route("/feedback/ses", sns_endpoint("ses"), methods=["POST"]),
        Route("/inbound/sms", sns_endpoint("sms"), methods=["POST"]),
        Route("/inbound/whatsapp", sns_endpoint("whatsapp"), methods=["POST"]),
        Route("/inbound/email", sns_endpoint("email"), methods=["POST"]),
    ]
    routes.append(Mount("/console", app=create_console(engine, settings)))  # read-only console

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            announcer.close()

    return Starlette(routes=routes, lifespan=lifespan)
