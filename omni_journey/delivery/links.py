"""Signed unsubscribe links: ``<OMNI_UNSUBSCRIBE_URL>?token=<customer+channel>.<hmac>``.

The token names the customer and channel (no address), signed with HMAC-SHA256 under
``OMNI_SECRET_KEY``; the endpoint that receives the one-click POST verifies it with
:func:`read_unsubscribe_token`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

__all__ = ["read_unsubscribe_token", "unsubscribe_link", "unsubscribe_token"]

_SEP = "\x1f"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), b"unsubscribe" + payload.encode(), hashlib.sha256)
    return _b64(digest.digest()[:20])


def unsubscribe_token(secret: str, customer_id: str, channel: str) -> str:
    payload = _b64(f"{customer_id}{_SEP}{channel}".encode())
    return f"{payload}.{_mac(secret, payload)}"


def read_unsubscribe_token(secret: str, token: str) -> tuple[str, str] | None:
    """(customer id, channel) from a valid token; ``None`` for a forged or broken one."""
    payload, _, mac = token.partition(".")
    if not payload or not hmac.compare_digest(mac, _mac(secret, payload)):
        return None
    try:
        customer_id, channel = _unb64(payload).decode().split(_SEP, 1)
    except (ValueError, UnicodeDecodeError):
        return None
    return customer_id, channel


def unsubscribe_link(base_url: str, secret: str, customer_id: str, channel: str) -> str:
    joiner = "&" if "?" in base_url else "?"
    token = unsubscribe_token(secret, customer_id, channel)
    return f"{base_url}{joiner}token={quote(token)}"
