"""Mapping AWS (botocore) errors to ours, shared by the ses, sms and whatsapp providers.

Works on the exception's shape (``error.response["Error"]`` for service errors, the
class names for connection errors), so this module imports neither boto3 nor botocore.
Each provider lists the error codes of its operation (a test checks the list against
botocore's own service model); :data:`COMMON_AWS_ERRORS` covers the codes every AWS
service may answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from omni_journey.delivery.base import (
    AddressRejectedError,
    DeliveryInDoubtError,
    ProviderPausedError,
    RetryLaterError,
)
from omni_journey.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)

__all__ = [
    "COMMON_AWS_ERRORS",
    "ErrorRule",
    "client_config_error",
    "map_aws_error",
    "no_retry_in_doubt",
    "scrub",
]

Kind = Literal["transient", "permanent", "address", "pause", "doubt"]


@dataclass(frozen=True)
class ErrorRule:
    """What an error code means: retry the message (``transient``, at least
    ``retry_after`` later), fail it (``permanent``), fail it and suppress the address
    (``address``), or stop the provider for ``retry_after`` (``pause``); ``doubt``: the
    request went out and no answer came (the message may have been delivered)."""

    kind: Kind
    retry_after: timedelta | None = None


TRANSIENT = ErrorRule("transient")
PERMANENT = ErrorRule("permanent")
ADDRESS = ErrorRule("address")
DOUBT = ErrorRule("doubt")
PAUSE_5M = ErrorRule("pause", timedelta(minutes=5))
PAUSE_1H = ErrorRule("pause", timedelta(hours=1))

COMMON_AWS_ERRORS: Mapping[str, ErrorRule] = {
    # throttling and server side: retry
    "Throttling": TRANSIENT,
    "ThrottlingException": TRANSIENT,
    "ThrottledException": TRANSIENT,
    "TooManyRequestsException": TRANSIENT,
    "RequestLimitExceeded": TRANSIENT,
    "RequestThrottled": TRANSIENT,
    "SlowDown": TRANSIENT,
    "InternalFailure": TRANSIENT,
    "InternalError": TRANSIENT,
    "InternalServerError": TRANSIENT,
    "ServiceUnavailable": TRANSIENT,
    "ServiceUnavailableException": TRANSIENT,
    "RequestTimeout": TRANSIENT,
    "RequestTimeoutException": TRANSIENT,
    "RequestExpired": TRANSIENT,  # clock skew: botocore corrects it on the next call
    # credentials and permissions: every message would fail the same way, pause
    "AccessDenied": PAUSE_5M,
    "AccessDeniedException": PAUSE_5M,
    "UnrecognizedClientException": PAUSE_5M,
    "InvalidClientTokenId": PAUSE_5M,
    "ExpiredToken": PAUSE_5M,
    "ExpiredTokenException": PAUSE_5M,
    "SignatureDoesNotMatch": PAUSE_5M,
    "IncompleteSignature": PAUSE_5M,
    "MissingAuthenticationToken": PAUSE_5M,
    "OptInRequired": PAUSE_1H,
    # a malformed request is our bug for this message only
    "ValidationError": PERMANENT,
    "InvalidParameterCombination": PERMANENT,
    "MalformedQueryString": PERMANENT,
}

# botocore's own exceptions, by class name (no botocore import here).
_CLIENT_SIDE: Mapping[str, ErrorRule] = {
    "ConnectTimeoutError": TRANSIENT,
    "ReadTimeoutError": DOUBT,  # sent, no answer: it may have been delivered
    "EndpointConnectionError": TRANSIENT,
    "ConnectionClosedError": DOUBT,
    "ProxyConnectionError": TRANSIENT,
    "HTTPClientError": TRANSIENT,
    "NoCredentialsError": PAUSE_5M,
    "PartialCredentialsError": PAUSE_5M,
    "CredentialRetrievalError": PAUSE_5M,
    "NoRegionError": PAUSE_5M,
    "ParamValidationError": PERMANENT,
}

_EMAIL = re.compile(r"[^\s<>\"':;,]+@[^\s<>\"':;,]+")
_PHONE = re.compile(r"\+?\d[\d ()-]{6,}\d")


def scrub(text: str, limit: int = 300) -> str:
    """A vendor message without addresses or numbers in it (they end up in logs)."""
    return _PHONE.sub("<number>", _EMAIL.sub("<address>", text))[:limit]


Refine = Callable[[str, str, Mapping[str, Any]], ErrorRule | None]


def _build(provider: str, code: str, detail: str, rule: ErrorRule) -> DeliveryError:
    if rule.kind == "pause":
        return ProviderPausedError(
            provider, code, detail, retry_after=rule.retry_after or timedelta(minutes=5)
        )
    if rule.kind == "doubt":
        return DeliveryInDoubtError(provider, code, detail)
    if rule.kind == "transient":
        if rule.retry_after:
            return RetryLaterError(provider, code, detail, retry_after=rule.retry_after)
        return TransientDeliveryError(provider, code, detail)
    if rule.kind == "address":
        return AddressRejectedError(provider, code, detail)
    return PermanentDeliveryError(provider, code, detail)


def map_aws_error(
    provider: str,
    error: BaseException,
    rules: Mapping[str, ErrorRule],
    refine: Refine | None = None,
) -> DeliveryError:
    """Our error for a boto3 call's exception.

    ``rules`` holds the operation's own codes; ``refine(code, message, response)`` may
    look closer (a message text, a ``Reason`` field) and return a rule, or ``None``.
    Unknown codes: 5xx and 429 are transient, anything else permanent.
    """
    response = getattr(error, "response", None)
    if isinstance(response, Mapping) and isinstance(response.get("Error"), Mapping):
        code = str(response["Error"].get("Code") or "Unknown")
        message = str(response["Error"].get("Message") or "")
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        rule = refine(code, message, response) if refine else None
        rule = rule or rules.get(code) or COMMON_AWS_ERRORS.get(code)
        if rule is None:
            rule = TRANSIENT if status >= 500 or status == 429 else PERMANENT
        return _build(provider, code, scrub(message), rule)
    for cls in type(error).__mro__:
        if cls.__name__ in _CLIENT_SIDE:
            return _build(provider, cls.__name__, scrub(str(error)), _CLIENT_SIDE[cls.__name__])
    return TransientDeliveryError(provider, "unexpected_error", type(error).__name__)


_IN_DOUBT = frozenset(("ReadTimeoutError", "ConnectionClosedError"))


def _stop_in_doubt(caught_exception: BaseException | None = None, **_: Any) -> bool | None:
    if caught_exception is not None and type(caught_exception).__name__ in _IN_DOUBT:
        return False  # botocore: "no retry"; None lets its own retry rules decide
    return None


def no_retry_in_doubt(client: Any) -> Any:
    """``client`` with botocore's retries kept for throttling, 5xx and connections that
    never opened, but not for a request that went out and got no answer (a read timeout,
    a connection closed mid-call): resending that may deliver the message twice. The
    error reaches the provider, which reports the message in doubt."""
    event = f"needs-retry.{client.meta.service_model.service_id.hyphenize()}"
    client.meta.events.register_first(event, _stop_in_doubt, unique_id="omni-no-retry-in-doubt")
    return client


def client_config_error(service: str, error: BaseException) -> ConfigError:
    """A ConfigError for a boto3 client that could not be created (no region, ...)."""
    if type(error).__name__ == "NoRegionError":
        return ConfigError(
            "AWS_REGION",
            f"no AWS region for {service}",
            "set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)",
        )
    return ConfigError("AWS_*", f"cannot create the {service} client: {type(error).__name__}")
