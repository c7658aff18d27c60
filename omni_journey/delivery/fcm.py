"""Push through Firebase Cloud Messaging (firebase-admin ``messaging.send_each``).

At most 500 messages a call (FCM's limit, and this provider's ``max_batch``). A token
FCM calls ``UNREGISTERED`` (or ``INVALID_ARGUMENT`` about the token, or
``SENDER_ID_MISMATCH``) is pruned by the dispatcher (identity deleted, token
suppressed); ``QUOTA_EXCEEDED`` pauses push for at least a minute. A send that timed out
waiting for its answer is in doubt (FCM may have delivered it): firebase-admin's own
retry of such a request is turned off, and the dispatcher never resends it unless
``OMNI_DISPATCH_IN_DOUBT=resend``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import firebase_admin
from firebase_admin import credentials, exceptions, messaging

from omni_journey.delivery.aws_errors import scrub
from omni_journey.delivery.base import (
    AddressRejectedError,
    DeliveryInDoubtError,
    OutgoingMessage,
    ProviderPausedError,
    RetryLaterError,
    SendResult,
)
from omni_journey.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from omni_journey.settings import Settings

__all__ = ["FCM_ERRORS", "FcmProvider", "create_fcm_provider", "map_fcm_error"]

QUOTA_PAUSE = timedelta(minutes=1)
MAX_BATCH = 500

# FCM-specific codes first (they subclass the canonical ones), then every canonical
# Google API code firebase-admin raises. Values: "address" (prune the token),
# "permanent", "transient", "pause" (all push waits), "later" (retry in an hour).
FCM_ERRORS: Mapping[str, str] = {
    "UNREGISTERED": "address",
    "SENDER_ID_MISMATCH": "address",
    "QUOTA_EXCEEDED": "pause",
    "THIRD_PARTY_AUTH_ERROR": "later",  # APNs / web push credentials: fix and it resumes
    "APNS_AUTH_ERROR": "later",
    exceptions.INVALID_ARGUMENT: "permanent",  # refined to "address" when about the token
    exceptions.FAILED_PRECONDITION: "permanent",
    exceptions.OUT_OF_RANGE: "permanent",
    exceptions.UNAUTHENTICATED: "pause",
    exceptions.PERMISSION_DENIED: "pause",
    exceptions.NOT_FOUND: "pause",  # project or API not found: configuration
    exceptions.CONFLICT: "permanent",
    exceptions.ABORTED: "transient",
    exceptions.ALREADY_EXISTS: "permanent",
    exceptions.RESOURCE_EXHAUSTED: "pause",
    exceptions.CANCELLED: "transient",
    exceptions.DATA_LOSS: "transient",
    exceptions.UNKNOWN: "transient",
    exceptions.INTERNAL: "transient",
    exceptions.UNAVAILABLE: "transient",
    exceptions.DEADLINE_EXCEEDED: "transient",
}

_FCM_CLASSES: tuple[tuple[type[exceptions.FirebaseError], str], ...] = (
    (messaging.UnregisteredError, "UNREGISTERED"),
    (messaging.SenderIdMismatchError, "SENDER_ID_MISMATCH"),
    (messaging.QuotaExceededError, "QUOTA_EXCEEDED"),
    (messaging.ThirdPartyAuthError, "THIRD_PARTY_AUTH_ERROR"),
)
_ABOUT_TOKEN = re.compile(r"registration token|\btoken\b|\bfid\b", re.I)


def map_fcm_error(error: BaseException) -> DeliveryError:
    """Our error for one message's firebase-admin exception."""
    if not isinstance(error, exceptions.FirebaseError):
        if isinstance(error, ValueError):  # the SDK's own validation of the message
            return PermanentDeliveryError("fcm", "invalid_message", scrub(str(error)))
        return TransientDeliveryError("fcm", "unexpected_error", type(error).__name__)
    if type(error.cause).__name__ == "RefreshError":  # no access token: credentials
        return ProviderPausedError(
            "fcm", "credentials", scrub(str(error.cause)), retry_after=timedelta(minutes=5)
        )
    code = next((c for cls, c in _FCM_CLASSES if isinstance(error, cls)), str(error.code))
    detail = scrub(str(error))
    if code == exceptions.DEADLINE_EXCEEDED and type(error.cause).__name__ != "ConnectTimeout":
        return DeliveryInDoubtError("fcm", code, detail)  # sent, no answer: maybe delivered
    kind = FCM_ERRORS.get(code, "transient")
    if code == exceptions.INVALID_ARGUMENT and _ABOUT_TOKEN.search(str(error)):
        kind = "address"
    if kind == "address":
        return AddressRejectedError("fcm", code, detail)
    if kind == "pause":
        pause = (
            QUOTA_PAUSE
            if code in ("QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED")
            else timedelta(minutes=5)
        )
        return ProviderPausedError("fcm", code, detail, retry_after=pause)
    if kind == "later":
        return RetryLaterError("fcm", code, detail, retry_after=timedelta(hours=1))
    if kind == "permanent":
        return PermanentDeliveryError("fcm", code, detail)
    return TransientDeliveryError("fcm", code, detail)


def _fcm_message(message: OutgoingMessage) -> messaging.Message:
    content = message.content
    data = {**content.data, "omni_message": str(message.id)}
    notification = None
    if content.title or content.body:
        notification = messaging.Notification(title=content.title, body=content.body)
    built = messaging.Message(data=data, notification=notification)
    # A registration token, set after construction: ``Message(token=...)`` warns
    # (deprecated in favour of ``fid``, which is a different identifier).
    built.token = message.to
    return built


class FcmProvider:
    name = "fcm"
    max_batch = MAX_BATCH
    idempotent: ClassVar[bool] = False

    def __init__(self, app: firebase_admin.App) -> None:
        self.app = app

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        for start in range(0, len(messages), MAX_BATCH):
            results.extend(self._send_chunk(messages[start : start + MAX_BATCH]))
        return results

    def _send_chunk(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        sendable: list[OutgoingMessage] = []
        results: dict[int, SendResult] = {}
        for message in messages:
            if not message.to:
                results[message.id] = SendResult.failed(
                    message, AddressRejectedError("fcm", "invalid_token", "empty token")
                )
            else:
                sendable.append(message)
        if sendable:
            try:
                batch = messaging.send_each([_fcm_message(m) for m in sendable], app=self.app)
                responses: list[Any] = list(batch.responses)
            except ValueError:
                # One message failed the SDK's validation: send them one by one to find it.
                responses = list(itertools.chain.from_iterable(self._one(m) for m in sendable))
            except Exception as error:
                mapped = map_fcm_error(error)
                responses = [mapped] * len(sendable)
            for message, response in zip(sendable, responses, strict=True):
                results[message.id] = self._result(message, response)
        return [results[m.id] for m in messages]

    def _one(self, message: OutgoingMessage) -> list[Any]:
        try:
            return list(messaging.send_each([_fcm_message(message)], app=self.app).responses)
        except Exception as error:
            return [map_fcm_error(error)]

    @staticmethod
    def _result(message: OutgoingMessage, response: Any) -> SendResult:
        if isinstance(response, DeliveryError):
            return SendResult.failed(message, response)
        if response.success:
            return SendResult.sent(message, str(response.message_id))
        return SendResult.failed(message, map_fcm_error(response.exception))


_app_names = itertools.count()


def _no_read_retries(app: firebase_admin.App) -> None:
    """firebase-admin retries a request once after a read error (it went out, no answer
    came back): for a send, that may deliver it twice. Its retries of 500 and 503, and
    of connections that never opened, stay."""
    service = messaging._get_messaging_service(app)
    for adapter in service._client.session.adapters.values():
        retries = getattr(adapter, "max_retries", None)
        if retries is not None and hasattr(retries, "new"):
            adapter.max_retries = retries.new(read=False)  # False: raise the timeout itself


def create_fcm_provider(settings: Settings) -> FcmProvider:
    """Entry point ``fcm``: one firebase-admin app from the service-account JSON."""
    path = settings.fcm_credentials_path
    if path is None or not Path(path).is_file():
        raise ConfigError(
            "OMNI_FCM_CREDENTIALS_PATH",
            "the fcm provider needs a Firebase service-account JSON file"
            + ("" if path is None else " (the path does not name a file)"),
            "download one from the Firebase console, Project settings > Service accounts",
        )
    app = firebase_admin.initialize_app(
        credentials.Certificate(str(path)),
        options={"httpTimeout": 30},
        name=f"omni-journey-{next(_app_names)}",
    )
    _no_read_retries(app)
    return FcmProvider(app)
