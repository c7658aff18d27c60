"""Signed links: one-click unsubscribe and tracked clicks, made and checked in one place.

A link is ``<OMNI_LINK_BASE_URL>/u/<token>`` (unsubscribe) or ``<OMNI_LINK_BASE_URL>/c/<token>``
(click), where ``token = <payload>.<signature>``: the payload is the base64url JSON of
``[version, customer id, channel, message, url]`` and the signature the first 16 bytes
of HMAC-SHA256 over the kind and the payload, keyed with ``OMNI_SECRET_KEY``. Links
carry a customer id, never an address; they do not expire (unsubscribe links must keep
working), and changing the secret invalidates every link sent before.

Rendering signs the links templates show (``links.unsubscribe``, ``links.click(url)``),
the dispatcher signs a ``List-Unsubscribe`` link when a renderer gave none, and the
collector verifies both kinds: all through :class:`LinkSigner`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from omni_journey.errors import OmniJourneyError
from omni_journey.settings import Settings

__all__ = ["InvalidLinkError", "LinkClaims", "LinkKind", "LinkSigner", "is_web_url"]

LinkKind = Literal["unsubscribe", "click"]
_PATHS: Final[dict[LinkKind, str]] = {"unsubscribe": "u", "click": "c"}
_KINDS: Final[dict[str, LinkKind]] = {path: kind for kind, path in _PATHS.items()}
_VERSION: Final = 1
_SIGNATURE_BYTES: Final = 16
# base64url payload, a dot, base64url signature; bounded so nobody makes us hash megabytes
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{1,8192}\.[A-Za-z0-9_-]{1,64}")
# control characters and backslashes: browsers read them in ways that differ from ours
_UNSAFE_URL: Final = re.compile(r"[\x00-\x1f\x7f\\]")


class InvalidLinkError(OmniJourneyError, ValueError):
    """A link that is malformed or whose signature does not match (tampered, or signed
    with another secret). ``reason`` is a stable code: malformed, bad-signature."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid link: {reason}")


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a verified link says: who, on which channel, for which message (and, for a
    click, where to)."""

    kind: LinkKind
    customer_id: str
    channel: str
    message: str
    url: str | None = None


def is_web_url(url: object) -> bool:
    """An absolute http(s) URL with a host: the only targets a click link may have."""
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.hostname) and not _UNSAFE_URL.search(url)


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

    @classmethod
    def from_settings(cls, settings: Settings) -> LinkSigner:
        """Signing with ``OMNI_SECRET_KEY``, links under ``OMNI_LINK_BASE_URL``."""
        return cls(settings.secret_key, settings.link_base_url)

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
        """A tracked URL that records the click and redirects to ``url`` (http or https)."""
        if not is_web_url(url):
            raise ValueError("a click link takes an absolute http(s) URL")
        return self._link(LinkClaims("click", customer_id, channel, message, url))

    def verify(self, link: str) -> LinkClaims:
        """The claims of a link this signer (same secret) made; any base URL is accepted.

        Raises :class:`InvalidLinkError` if it is malformed or its signature is wrong.
        """
        parts = urlsplit(link).path.rstrip("/").split("/")
        if len(parts) < 2 or parts[-2] not in _KINDS:
            raise InvalidLinkError("malformed")
        return self.verify_token(_KINDS[parts[-2]], parts[-1])

    def verify_token(self, kind: LinkKind, token: str) -> LinkClaims:
        """The claims of the ``<payload>.<signature>`` part of a ``kind`` link.

        A token signed for the other kind fails (``bad-signature``), so an unsubscribe
        token never works as a click token or the other way round. A click's URL is
        checked again (http or https, with a host): never an open redirect.
        """
        if not _TOKEN.fullmatch(token):
            raise InvalidLinkError("malformed")
        payload, _, signature = token.partition(".")
        if not hmac.compare_digest(self._signature(kind, payload), signature):
            raise InvalidLinkError("bad-signature")
        try:
            fields = json.loads(_b64decode(payload))
        except (binascii.Error, ValueError) as error:
            raise InvalidLinkError("malformed") from error
        if not isinstance(fields, list) or len(fields) != 5 or fields[0] != _VERSION:
            raise InvalidLinkError("malformed")
        _, customer_id, channel, message, url = fields
        if not all(isinstance(f, str) and f for f in (customer_id, channel)):
            raise InvalidLinkError("malformed")
        if not isinstance(message, str) or (url is not None and not isinstance(url, str)):
            raise InvalidLinkError("malformed")
        if (kind == "click") != (url is not None) or (url is not None and not is_web_url(url)):
            raise InvalidLinkError("malformed")
        return LinkClaims(kind, customer_id, channel, message, url)
