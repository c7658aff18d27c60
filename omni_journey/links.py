"""Signed links: one-click unsubscribe and tracked clicks, made and checked in one place.

A link is ``<OMNI_LINK_BASE_URL>/u/<token>`` (unsubscribe) or ``<OMNI_LINK_BASE_URL>/c/<token>``
(click), where ``token = <payload>.<signature>``: the payload is the base64url JSON of
``[version, customer id, channel, message, url]`` and the signature the first 16 bytes
of HMAC-SHA256 over the kind and the payload, keyed with ``OMNI_SECRET_KEY``. Links
carry a customer id, never an address; they do not expire (unsubscribe links must keep
working). Keys rotate: the current key signs, and the keys in
``OMNI_PREVIOUS_SECRET_KEYS`` still verify what they signed.

The secret fails closed (:func:`signing_keys`): never a value from the source. Unset,
a SQLite store gets a random key made once under ``OMNI_HOME``; a database server
(PostgreSQL) needs ``OMNI_SECRET_KEY``, so that every process signs alike.

Rendering signs the links templates show (``links.unsubscribe``, ``links.click(url)``),
the dispatcher signs a ``List-Unsubscribe`` link when a renderer gave none, and the
collector verifies both kinds: all through :class:`LinkSigner`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from omni_journey.errors import ConfigError, OmniJourneyError
from omni_journey.settings import Settings

__all__ = [
    "InvalidLinkError",
    "LinkClaims",
    "LinkKind",
    "LinkSigner",
    "is_web_url",
    "signing_keys",
]

LinkKind = Literal["unsubscribe", "click"]
_PATHS: Final[dict[LinkKind, str]] = {"unsubscribe": "u", "click": "c"}
_KINDS: Final[dict[str, LinkKind]] = {path: kind for kind, path in _PATHS.items()}
_VERSION: Final = 1
_SIGNATURE_BYTES: Final = 16
# base64url payload, a dot, base64url signature; bounded so nobody makes us hash megabytes
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{1,8192}\.[A-Za-z0-9_-]{1,64}")
# control characters and backslashes: browsers read them in ways that differ from ours
_UNSAFE_URL: Final = re.compile(r"[\x00-\x1f\x7f\\]")
MIN_SECRET_CHARS: Final = 16
KEY_FILE: Final = "secret.key"
# the development default of earlier versions: it is public, so it never signs
_PUBLIC_SECRETS: Final = frozenset({"dev-insecure-secret"})
_KEY_HINT: Final = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


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


def signing_keys(settings: Settings) -> tuple[str, ...]:
    """The keys in force, the signing key first, then the keys that only verify.

    ``OMNI_SECRET_KEY`` if set (at least 16 characters, never a published value).
    Unset with a SQLite store: a random key made once in ``<OMNI_HOME>/secret.key``
    (mode 0600; a file others can read is refused). Unset with a database server
    (``OMNI_DATABASE_URL`` PostgreSQL): :class:`ConfigError`, since processes on several
    machines share the store and must share the key, and a guessable key would let
    anyone unsubscribe anyone.
    """
    if settings.secret_key is not None:
        current = _checked("OMNI_SECRET_KEY", settings.secret_key.get_secret_value())
    elif not settings.resolved_database_url.startswith("sqlite"):
        raise ConfigError(
            "OMNI_SECRET_KEY",
            "is not set; with a database server (OMNI_DATABASE_URL) every process must sign "
            "links and webhooks with the same secret",
            f"set it to a long random value, for example from {_KEY_HINT}",
        )
    else:
        current = _home_key(settings.home / KEY_FILE)
    previous = settings.previous_secret_keys.get_secret_value().split(",")
    older = [_checked("OMNI_PREVIOUS_SECRET_KEYS", key.strip()) for key in previous if key.strip()]
    return (current, *(key for key in older if key != current))


def _checked(variable: str, key: str) -> str:
    if key in _PUBLIC_SECRETS:
        raise ConfigError(variable, "is a published example value", f"use {_KEY_HINT}")
    if len(key) < MIN_SECRET_CHARS:
        raise ConfigError(
            variable, f"is shorter than {MIN_SECRET_CHARS} characters", f"use {_KEY_HINT}"
        )
    return key


def _home_key(path: Path) -> str:
    """The key kept in ``path``, made (atomically, mode 0600) by the first process."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first:
                os.link(draft, path)  # link never replaces it
        finally:
            draft.unlink(missing_ok=True)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ConfigError(
            "OMNI_SECRET_KEY",
            f"the key file {path} can be read by other users",
            f"chmod 600 {path}, or set OMNI_SECRET_KEY",
        )
    return _checked("OMNI_SECRET_KEY", path.read_text(encoding="ascii").strip())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Builds and verifies signed links under one secret and one base URL."""

    def __init__(self, secret: SecretStr | str | Sequence[str], base_url: str) -> None:
        """``secret``: one key, or the signing key followed by keys that only verify."""
        if isinstance(secret, SecretStr):
            keys: Sequence[str] = (secret.get_secret_value(),)
        elif isinstance(secret, str):
            keys = (secret,)
        else:
            keys = secret
        if not keys or not all(keys):
            raise ValueError("the link secret is empty (set OMNI_SECRET_KEY)")
        self._keys = tuple(key.encode("utf-8") for key in keys)
        self.base_url = base_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> LinkSigner:
        """Signing with :func:`signing_keys`, links under ``OMNI_LINK_BASE_URL``."""
        return cls(signing_keys(settings), settings.link_base_url)

    def _signature(self, kind: LinkKind, payload: str, key: bytes | None = None) -> str:
        message = f"omni-journey link v{_VERSION}\n{kind}\n{payload}".encode("ascii")
        digest = hmac.new(key or self._keys[0], message, hashlib.sha256).digest()
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
        if not any(
            hmac.compare_digest(self._signature(kind, payload, key), signature)
            for key in self._keys
        ):
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
