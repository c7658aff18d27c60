"""The HTTP collector: Segment Spec endpoints in front of ingestion, signed links and
SNS feedback, as one ASGI app.

``create_app(engine, settings, clock)`` builds a Starlette app; nothing happens at import.
Every ``POST /v1/<call>`` is authenticated by a write key (HTTP basic-auth user, or
``writeKey`` in the body), read within ``settings.max_body_bytes`` (also after gzip
decoding), mapped by :mod:`omni_journey.service.segment_spec`, and answered 200 only
after :func:`ingest_events` / :func:`ingest_profiles` have stored it durably. Storing
runs in a worker thread so the event loop keeps serving. Logs carry counts and reason
codes only: never an id, address, token or write key.

``/l/u/<token>`` and ``/l/c/<token>`` (unsubscribe, click) are in
:mod:`omni_journey.service.links`. ``POST /feedback/ses`` and ``POST /inbound/sms`` are
Amazon SNS HTTP(S) subscriptions: the SNS signature is the authentication (no write
key), checked by :func:`omni_journey.delivery.feedback.handle_sns_notification`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import itertools
import logging
import re
import zlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from omni_journey.delivery import FeedbackError
from omni_journey.delivery.feedback import FeedbackResult, handle_sns_notification
from omni_journey.delivery.sns_signature import SnsSignatureVerifier
from omni_journey.errors import IngestError, StoreError
from omni_journey.service.ingest import BatchResult, Reject, ingest_events, ingest_profiles
from omni_journey.service.links import link_routes, redact_link_paths
from omni_journey.service.prefect_events import IngestedBuffer
from omni_journey.service.segment_spec import MappedRecord, map_batch, map_message
from omni_journey.settings import Settings

__all__ = ["ROUTES", "Clock", "confirm_sns_subscription", "create_app"]

Clock = Callable[[], datetime]
SnsSource = Literal["ses", "sms"]

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


class _RequestError(Exception):
    """A request refused before anything was stored; becomes a JSON error response."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    def response(self) -> JSONResponse:
        # ``code`` and ``message`` are what Segment's client libraries read and log.
        body = {
            "success": False,
            "reason": self.reason,
            "code": self.reason,
            "message": self.message,
        }
        headers = {"WWW-Authenticate": 'Basic realm="omni-journey"'} if self.status == 401 else None
        return JSONResponse(body, status_code=self.status, headers=headers)


def create_app(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    *,
    sns_verifier: SnsSignatureVerifier | None = None,
    confirm_subscription: Callable[[str], None] | None = None,
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
    announcer = IngestedBuffer(2.0, source="collector")

    def endpoint(call: str) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            try:
                return await _handle(request, call, engine, settings, clock, announcer)
            except _RequestError as refused:
                _log.info("refused %s: %s %s", call, refused.status, refused.reason)
                return refused.response()

        return handle

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def sns_endpoint(source: SnsSource) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            try:
                return await _handle_sns(
                    request, source, engine, settings, clock, verifier, confirm
                )
            except _RequestError as refused:
                _log.info("refused sns %s: %s %s", source, refused.status, refused.reason)
                return refused.response()

        return handle

    routes = [Route("/health", health, methods=["GET"])]
    for call, paths in ROUTES.items():
        routes += [Route(path, endpoint(call), methods=["POST"]) for path in paths]
    routes += link_routes(engine, settings, clock)
    routes += [
        Route("/feedback/ses", sns_endpoint("ses"), methods=["POST"]),
        Route("/inbound/sms", sns_endpoint("sms"), methods=["POST"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            announcer.close()

    return Starlette(routes=routes, lifespan=lifespan)


# --- SNS: SES event publishing and two-way SMS -----------------------------------------

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
# FeedbackError reasons -> status: a forgery or a foreign topic is 403; a certificate
# we could not fetch is our problem (503: SNS retries); anything else is a bad body.
_FEEDBACK_STATUS: Mapping[str, int] = {
    "bad_signature": 403,
    "untrusted_certificate_url": 403,
    "topic_not_accepted": 403,
    "certificate_unavailable": 503,
}


def confirm_sns_subscription(url: str) -> None:
    """GET an SNS ``SubscribeURL`` (already checked to be https on an SNS host)."""
    response = httpx.get(url, timeout=10.0, follow_redirects=False)
    response.raise_for_status()


def _is_sns_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(_SNS_HOST.match(parts.hostname or ""))


def _inbound_sms_shape(envelope: Mapping[str, Any]) -> bool:
    """Whether a Notification carries an inbound SMS (checked before anything is stored,
    so /inbound/sms never applies SES events; the signature is checked afterwards)."""
    if envelope.get("Type") != "Notification":
        return True  # subscription (un)confirmations are handled the same on both paths
    try:
        message = orjson.loads(str(envelope.get("Message", "")))
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(message, dict)
        and isinstance(message.get("originationNumber"), str)
        and isinstance(message.get("messageBody"), str)
    )


async def _handle_sns(
    request: Request,
    source: SnsSource,
    engine: Engine,
    settings: Settings,
    clock: Clock,
    verifier: SnsSignatureVerifier,
    confirm: Callable[[str], None],
) -> Response:
    envelope = _parse(await _read_body(request, settings.max_body_bytes))
    if source == "sms" and not _inbound_sms_shape(envelope):
        raise _RequestError(
            400, "not-inbound-sms", "expected an SNS notification of an inbound SMS"
        )
    try:
        result: FeedbackResult = await run_in_threadpool(
            handle_sns_notification,
            engine,
            envelope,
            now=clock(),
            verifier=verifier,
            accepted_topics=settings.accepted_feedback_topics,
        )
    except FeedbackError as error:
        status = _FEEDBACK_STATUS.get(error.reason, 400)
        reason = error.reason.replace("_", "-")
        raise _RequestError(status, reason, "the SNS message was refused") from None
    except (SQLAlchemyError, StoreError) as error:
        _log.error("store unavailable for sns %s: %s", source, type(error).__name__)
        raise _RequestError(
            503, "store-unavailable", "the store failed; retry (replays are safe)"
        ) from None
    if result.kind == "subscription":
        if not _is_sns_url(result.subscribe_url):
            raise _RequestError(400, "untrusted-subscribe-url", "SubscribeURL is not on SNS")
        try:
            await run_in_threadpool(confirm, str(result.subscribe_url))
        except httpx.HTTPError as error:
            _log.error("sns subscription not confirmed: %s", type(error).__name__)
            raise _RequestError(
                503, "subscription-not-confirmed", "confirming the subscription failed; retry"
            ) from None
    _log.info(
        "sns %s: kind=%s events=%d suppressed=%d resubscribed=%d unmatched=%d",
        source,
        result.kind,
        result.events,
        result.suppressed,
        result.resubscribed,
        result.unmatched,
    )
    return JSONResponse(
        {
            "success": True,
            "kind": result.kind,
            "events": result.events,
            "suppressed": result.suppressed,
            "resubscribed": result.resubscribed,
        }
    )


async def _handle(
    request: Request,
    call: str,
    engine: Engine,
    settings: Settings,
    clock: Clock,
    announcer: IngestedBuffer,
) -> Response:
    keys = settings.accepted_write_keys
    if not keys:
        raise _RequestError(
            401, "no-write-keys", "the collector accepts no write key yet: set OMNI_WRITE_KEYS"
        )
    header_key = _basic_auth_user(request)
    if header_key is not None and not _is_accepted(header_key, keys):
        raise _RequestError(401, "invalid-write-key", "the write key is not accepted")
    payload = _parse(await _read_body(request, settings.max_body_bytes))
    if header_key is None:
        body_key = payload.get("writeKey")
        if not isinstance(body_key, str) or not body_key:
            raise _RequestError(
                401,
                "missing-write-key",
                "send the write key as the HTTP basic-auth user (or as 'writeKey' in the body)",
            )
        if not _is_accepted(body_key, keys):
            raise _RequestError(401, "invalid-write-key", "the write key is not accepted")

    now = clock()
    try:
        if call == "batch":
            mapped = map_batch(payload, received_at=now)
        else:
            mapped = [map_message(payload, received_at=now, call=call)]
    except IngestError as error:
        raise _RequestError(400, error.reason, error.detail) from None

    try:
        stored = await run_in_threadpool(_store, engine, settings, mapped, now)
    except (SQLAlchemyError, StoreError) as error:
        _log.error("store unavailable for %s: %s", call, type(error).__name__)
        raise _RequestError(
            503, "store-unavailable", "the store failed; retry (replays are safe)"
        ) from None
    refused = {reject.index for reject in stored.rejected}
    announcer.add(
        str(item.record.get("name"))
        for index, item in enumerate(mapped)
        if isinstance(item, MappedRecord) and item.kind == "event" and index not in refused
    )
    _log.info(
        "stored %s: accepted=%d duplicates=%d rejected=%d",
        call,
        stored.accepted,
        stored.duplicates,
        len(stored.rejected),
    )
    if call != "batch":
        if stored.rejected:
            reject = stored.rejected[0]
            raise _RequestError(400, reject.reason, reject.detail)
        return JSONResponse({"success": True})
    return JSONResponse(
        {
            "success": True,
            "accepted": stored.accepted,
            "duplicates": stored.duplicates,
            "rejected": [
                {"index": r.index, "reason": r.reason, "detail": r.detail} for r in stored.rejected
            ],
        }
    )


def _store(
    engine: Engine, settings: Settings, mapped: Sequence[MappedRecord | IngestError], now: datetime
) -> BatchResult:
    """Store mapped records in their order: each run of events or profiles is one
    ingest call, so an identify between two tracks lands between them."""
    rejected = [
        Reject(index, item.reason, item.detail)
        for index, item in enumerate(mapped)
        if isinstance(item, IngestError)
    ]
    records = [(i, m) for i, m in enumerate(mapped) if isinstance(m, MappedRecord)]
    accepted = duplicates = conflicts = 0
    for kind, group in itertools.groupby(records, key=lambda pair: pair[1].kind):
        run = list(group)
        ingest = ingest_events if kind == "event" else ingest_profiles
        result = ingest(engine, [m.record for _, m in run], now=now, settings=settings)
        accepted += result.accepted
        duplicates += result.duplicates
        conflicts += result.identity_conflicts
        rejected += [Reject(run[r.index][0], r.reason, r.detail) for r in result.rejected]
    return BatchResult(accepted, duplicates, sorted(rejected, key=lambda r: r.index), conflicts)


def _basic_auth_user(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise _RequestError(
            401, "invalid-authorization", "use HTTP basic auth with the write key as the user"
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _RequestError(
            401, "invalid-authorization", "the basic-auth value is not base64"
        ) from None
    return decoded.partition(":")[0]


def _is_accepted(key: str, keys: frozenset[str]) -> bool:
    given = key.encode()
    # Compare with every key, in constant time, so timing reveals nothing.
    return any([hmac.compare_digest(given, k.encode()) for k in keys])


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, decoded, refused (413) as soon as it passes ``limit`` bytes, before
    or after gzip decoding."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise _RequestError(400, "invalid-content-length", "Content-Length is not a number")
        if int(declared) > limit:
            raise _too_large(limit)
    body = bytearray()
    try:
        async with aclosing(request.stream()) as chunks:
            async for chunk in chunks:
                body += chunk
                if len(body) > limit:
                    raise _too_large(limit)
    except ClientDisconnect:
        raise _RequestError(400, "client-disconnected", "the body ended early") from None
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return _gunzip(bytes(body), limit)
    if encoding not in ("identity", ""):
        raise _RequestError(415, "unsupported-encoding", "Content-Encoding must be gzip or none")
    return bytes(body)


def _gunzip(data: bytes, limit: int) -> bytes:
    decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = decoder.decompress(data, limit + 1)
    except zlib.error:
        raise _RequestError(400, "invalid-gzip", "the body is not valid gzip") from None
    if len(out) > limit:
        raise _too_large(limit)
    if not decoder.eof or decoder.unused_data:
        raise _RequestError(
            400, "invalid-gzip", "the gzip stream is truncated or has trailing data"
        )
    return out


def _too_large(limit: int) -> _RequestError:
    return _RequestError(413, "body-too-large", f"the body is over {limit} bytes (decoded)")


def _parse(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _RequestError(400, "invalid-json", "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise _RequestError(400, "invalid-shape", "the body must be a JSON object")
    return payload
