"""Write keys: who may send to the Segment Spec endpoints.

A key comes as the HTTP basic-auth user (what Segment's libraries send) or as
``writeKey`` in the body. Keys are compared in constant time against every accepted
key, so the time an answer takes tells nothing about how much of a key was right; a
refusal never echoes the key.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from omni_journey.collector.refusals import RequestRefused

__all__ = ["basic_auth_user", "check_body_key", "check_keys_configured", "is_accepted"]


def check_keys_configured(keys: frozenset[str]) -> None:
    if not keys:
        raise RequestRefused(
            401, "no-write-keys", "the collector accepts no write key yet: set OMNI_WRITE_KEYS"
        )


def basic_auth_user(request: Request) -> str | None:
    """The basic-auth user (the write key), ``None`` without an Authorization header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise RequestRefused(
            401, "invalid-authorization", "use HTTP basic auth with the write key as the user"
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise RequestRefused(
            401, "invalid-authorization", "the basic-auth value is not base64"
        ) from None
    return decoded.partition(":")[0]


def check_body_key(payload: Mapping[str, Any], keys: frozenset[str]) -> None:
    """The ``writeKey`` in the body, when no header named one: present and accepted."""
    body_key = payload.get("writeKey")
    if not isinstance(body_key, str) or not body_key:
        raise RequestRefused(
            401,
            "missing-write-key",
            "send the write key as the HTTP basic-auth user (or as 'writeKey' in the body)",
        )
    if not is_accepted(body_key, keys):
        raise RequestRefused(401, "invalid-write-key", "the write key is not accepted")


def is_accepted(key: str, keys: frozenset[str]) -> bool:
    given = key.encode()
    # Compare with every key, in constant time, so timing reveals nothing.
    return any([hmac.compare_digest(given, k.encode()) for k in keys])
