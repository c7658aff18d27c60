"""Verifying Amazon SNS message signatures (SignatureVersion 1: SHA1, 2: SHA256).

The signing certificate must come over https from an ``sns.<region>.amazonaws.com``
host (anything else is refused before it is fetched); certificates are cached by URL.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from omni_journey.delivery.base import FeedbackError

__all__ = ["SnsSignatureVerifier", "canonical_string"]

_CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip


def canonical_string(envelope: Mapping[str, Any]) -> bytes:
    """The bytes SNS signed: ``Key\\nValue\\n`` for each present field, in SNS's order."""
    kind = str(envelope.get("Type", ""))
    if kind not in _FIELDS:
        raise FeedbackError("unknown_sns_type", kind[:40])
    parts = []
    for key in _FIELDS[kind]:
        if key in envelope and envelope[key] is not None:
            parts.append(f"{key}\n{envelope[key]}\n")
    return "".join(parts).encode()


def _fetch(url: str) -> bytes:
    response = httpx.get(url, timeout=5.0, follow_redirects=False)
    response.raise_for_status()
    return response.content


class SnsSignatureVerifier:
    """``verify(envelope)`` raises :class:`FeedbackError` unless SNS signed it.

    ``fetch_certificate(url) -> PEM bytes`` is injectable (tests serve their own).
    """

    def __init__(self, fetch_certificate: Callable[[str], bytes] | None = None) -> None:
        self._fetch = fetch_certificate or _fetch
        self._cache: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def _key(self, url: str) -> rsa.RSAPublicKey:
        parsed = urlparse(url)
        if parsed.scheme != "https" or not _CERT_HOST.match(parsed.hostname or ""):
            raise FeedbackError("untrusted_certificate_url", "not an https sns.*.amazonaws.com URL")
        with self._lock:
            if url in self._cache:
                return self._cache[url]
        try:
            certificate = x509.load_pem_x509_certificate(self._fetch(url))
        except (httpx.HTTPError, ValueError) as error:
            raise FeedbackError("certificate_unavailable", type(error).__name__) from None
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise FeedbackError("certificate_unavailable", "not an RSA key")
        with self._lock:
            self._cache[url] = key
        return key

    def verify(self, envelope: Mapping[str, Any]) -> None:
        version = str(envelope.get("SignatureVersion", ""))
        algorithm: hashes.HashAlgorithm
        if version == "1":
            algorithm = hashes.SHA1()  # noqa: S303 - SNS SignatureVersion 1 is SHA1 by definition
        elif version == "2":
            algorithm = hashes.SHA256()
        else:
            raise FeedbackError("bad_signature", f"unsupported SignatureVersion {version[:8]!r}")
        try:
            signature = base64.b64decode(str(envelope.get("Signature", "")), validate=True)
        except (binascii.Error, ValueError):
            raise FeedbackError("bad_signature", "Signature is not base64") from None
        key = self._key(str(envelope.get("SigningCertURL") or envelope.get("SigningCertUrl") or ""))
        try:
            key.verify(signature, canonical_string(envelope), padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            raise FeedbackError("bad_signature", "signature does not match") from None
