"""Signed links: one-click unsubscribe and tracked clicks.

A link is ``<base>/u/<token>`` (unsubscribe) or ``<base>/c/<token>`` (click), where
``token = <payload>.<signature>``: the payload is the base64url JSON of
``[version, customer id, channel, message, url]`` and the signature the first 16 bytes
of HMAC-SHA256 over the kind and the payload, keyed with ``OMNI_SECRET_KEY``. Links
carry a customer id, never an address; they do not expire (unsubscribe links must keep
working), and changing the secret invalidates every link sent before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from omni_journey.errors import OmniJourneyError

__all__ = ["InvalidLinkError", "LinkClaims", "LinkSigner", "MessageLinks"]

LinkKind = Literal["unsubscribe", "click"]
_PATHS: dict[LinkKind, str] = {"unsubscribe": "u", "click": "c"}
_KINDS: dict[str, LinkKind] = {path: kind for kind, path in _PATHS.items()}
_VERSION = 1
_SIGNATURE_BYTES = 16


class InvalidLinkError(OmniJourneyError, ValueError):
    """A link that is malformed or whose signature does not match (tampered, or signed
    with another secret). ``reason`` is a stable code: malformed, bad-signature."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid link: {reason}")


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a verified link says: who, on which channel, for which message."""

    kind: LinkKind
    customer_id: str
    channel: str
    message: str
    url: str | None = None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Builds and verifies signed links under one secret and one base URL."""

    def __init__(self, secret: SecretStr | str, base_url: str) -> None:
        raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if not raw:
            raise ValueError("the link secret is empty (set OMNI_SECRET_KEY)")
        self._key = raw.encode("utf-8")
        self.base_url = base_url.rstrip("/")

    def _signature(self, kind: LinkKind, payload: str) -> str:
        message = f"omni-journey link v{_VERSION}\n{kind}\n{payload}".encode("ascii")
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return _b64encode(digest[:_SIGNATURE_BYTES])

    def _link(self, claims: LinkClaims) -> str:
        fields = [_VERSION, claims.customer_id, claims.channel, claims.message, claims.url]
        compact = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        payload = _b64encode(compact.encode("utf-8"))
        signature = self._signature(claims.kind, payload)
        return f"{self.base_url}/{_PATHS[claims.kind]}/{payload}.{signature}"

    def unsubscribe(self, customer_id: str, channel: str, message: str) -> str:
        """The one-click unsubscribe URL (also the ``List-Unsubscribe`` target)."""
        return self._link(LinkClaims("unsubscribe", customer_id, channel, message))

    def click(self, url: str, customer_id: str, channel: str, message: str) -> str:
        """A tracked URL that records the click and redirects to ``url``."""
        return self._link(LinkClaims("click", customer_id, channel, message, url))

    def verify(self, link: str) -> LinkClaims:
        """The claims of a link this signer (same secret) made; any base URL is accepted.

        Raises :class:`InvalidLinkError` if it is malformed or its signature is wrong.
        """
        parts = urlsplit(link).path.rstrip("/").split("/")
        if len(parts) < 2 or parts[-2] not in _KINDS:
            raise InvalidLinkError("malformed")
        kind = _KINDS[parts[-2]]
        payload, dot, signature = parts[-1].partition(".")
        if not dot or not payload or not signature:
            raise InvalidLinkError("malformed")
        if not hmac.compare_digest(self._signature(kind, payload), signature):
            raise InvalidLinkError("bad-signature")
        try:
            fields = json.loads(_b64decode(payload))
        except (binascii.Error, ValueError) as error:
            raise InvalidLinkError("malformed") from error
        if not isinstance(fields, list) or len(fields) != 5 or fields[0] != _VERSION:
            raise InvalidLinkError("malformed")
        _, customer_id, channel, message, url = fields
        return LinkClaims(kind, str(customer_id), str(channel), str(message), url)


class MessageLinks:
    """The ``links`` object templates see, bound to one customer, channel and message.

    ``{{ links.unsubscribe }}`` and ``{{ links.click("https://shop.example.com/p/1") }}``.
    """

    def __init__(self, signer: LinkSigner, customer_id: str, channel: str, message: str) -> None:
        self._signer = signer
        self._customer_id = customer_id
        self._channel = channel
        self._message = message

    @property
    def unsubscribe(self) -> str:
        return self._signer.unsubscribe(self._customer_id, self._channel, self._message)

    def click(self, url: object) -> str:
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ValueError("links.click() takes an http(s) URL")
        return self._signer.click(url, self._customer_id, self._channel, self._message)
