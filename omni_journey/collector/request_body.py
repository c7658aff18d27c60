"""A request body read within the size limit, gzip decoded, parsed as a JSON object.

The limit holds before and after gzip decoding: a client (or an attacker) never makes
the collector hold more than ``settings.max_body_bytes``, however small the body it
sent compresses. A body over the limit is refused (413) as soon as it passes it, not
after it has all arrived.
"""

from __future__ import annotations

import zlib
from contextlib import aclosing
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from omni_journey.collector.refusals import RequestRefused
from omni_journey.ingest.limits import loads

__all__ = ["parse_object", "read_body"]


async def read_body(request: Request, limit: int) -> bytes:
    """The body, decoded, refused (413) as soon as it passes ``limit`` bytes, before
    or after gzip decoding."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestRefused(400, "invalid-content-length", "Content-Length is not a number")
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
        raise RequestRefused(400, "client-disconnected", "the body ended early") from None
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return _gunzip(bytes(body), limit)
    if encoding not in ("identity", ""):
        raise RequestRefused(415, "unsupported-encoding", "Content-Encoding must be gzip or none")
    return bytes(body)


def _gunzip(data: bytes, limit: int) -> bytes:
    decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = decoder.decompress(data, limit + 1)
    except zlib.error:
        raise RequestRefused(400, "invalid-gzip", "the body is not valid gzip") from None
    if len(out) > limit:
        raise _too_large(limit)
    if not decoder.eof or decoder.unused_data:
        raise RequestRefused(
            400, "invalid-gzip", "the gzip stream is truncated or has trailing data"
        )
    return out


def _too_large(limit: int) -> RequestRefused:
    return RequestRefused(413, "body-too-large", f"the body is over {limit} bytes (decoded)")


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 saying why not."""
    try:
        payload = loads(body)  # integers past 64 bits stay exact: numeric user ids
    except orjson.JSONDecodeError:
        raise RequestRefused(400, "invalid-json", "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise RequestRefused(400, "invalid-shape", "the body must be a JSON object")
    return payload
