"""One Segment Spec call (``track``, ``identify``, ``batch``, …): authenticated, mapped,
stored durably, answered.

The answer is 200 only after :func:`ingest_events` / :func:`ingest_profiles` have
committed, so a client that got 200 may forget the message; one that got 503 sends it
again, which is safe (events are idempotent on their id, a repeated profile changes
nothing). Storing runs in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from omni_journey.collector.rate_limits import RateLimiter
from omni_journey.collector.refusals import RequestRefused
from omni_journey.collector.request_body import parse_object, read_body
from omni_journey.collector.segment_protocol import MappedRecord, map_batch, map_message
from omni_journey.collector.write_keys import (
    basic_auth_user,
    check_body_key,
    check_keys_configured,
    is_accepted,
)
from omni_journey.errors import IngestError, StoreError
from omni_journey.ingest.announce import IngestedBuffer
from omni_journey.ingest.intake import BatchResult, Reject, ingest_events, ingest_profiles
from omni_journey.settings import Settings

__all__ = ["handle_call"]

_log = logging.getLogger("omni_journey.collector.app")


async def handle_call(
    request: Request,
    call: str,
    engine: Engine,
    settings: Settings,
    clock: Callable[[], datetime],
    announcer: IngestedBuffer,
    limiter: RateLimiter | None = None,
) -> Response:
    """Answer one ``POST /v1/<call>``; raises :class:`RequestRefused` before storing.

    ``limiter`` counts the request against its write key (a refused key: against the
    client's address) and refuses it with 429 past the limit."""
    keys = settings.accepted_write_keys
    check_keys_configured(keys)
    header_key = basic_auth_user(request)
    if header_key is not None:
        accepted = is_accepted(header_key, keys)
        _count(limiter, request, header_key if accepted else None)
        if not accepted:
            raise RequestRefused(401, "invalid-write-key", "the write key is not accepted")
    payload = parse_object(await read_body(request, settings.max_body_bytes))
    if header_key is None:
        try:
            check_body_key(payload, keys)
        except RequestRefused:
            _count(limiter, request, None)
            raise
        _count(limiter, request, str(payload["writeKey"]))

    now = clock()
    try:
        if call == "batch":
            mapped = map_batch(payload, received_at=now)
        else:
            mapped = [map_message(payload, received_at=now, call=call)]
    except IngestError as error:
        raise RequestRefused(400, error.reason, error.detail) from None

    try:
        stored = await run_in_threadpool(_store, engine, settings, mapped, now)
    except (SQLAlchemyError, StoreError) as error:
        _log.error("store unavailable for %s: %s", call, type(error).__name__)
        raise RequestRefused(
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
            raise RequestRefused(400, reject.reason, reject.detail)
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


def _count(limiter: RateLimiter | None, request: Request, write_key: str | None) -> None:
    if limiter is not None:
        client = request.client.host if request.client else "unknown"
        limiter.check(f"key:{write_key}" if write_key is not None else f"ip:{client}")


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
