"""Email through Amazon SES v2 (``sesv2.send_email``), as Raw MIME.

Raw, because SES's Simple content drops custom headers: the MIME (from
:mod:`omni_journey.delivery.mime_bytes`) carries ``List-Unsubscribe`` and
``List-Unsubscribe-Post`` (RFC 8058 one-click). ``ConfigurationSetName`` turns on event
publishing (bounces, complaints, deliveries -> SNS -> :mod:`.feedback`) and the email
tag ``omni_message`` lets feedback find the outbox row even before the SES message id
is recorded.

"Daily message quota exceeded" pauses this provider for an hour (botocore retries it a
few times itself; the dispatcher then stops using SES instead of looping on it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import boto3
from botocore.config import Config

from omni_journey.delivery.aws_errors import (
    ADDRESS,
    PAUSE_1H,
    PERMANENT,
    TRANSIENT,
    ErrorRule,
    client_config_error,
    map_aws_error,
    no_retry_in_doubt,
)
from omni_journey.delivery.base import OutgoingMessage, SendResult, send_each_concurrently
from omni_journey.delivery.mime_bytes import email_bytes
from omni_journey.errors import ConfigError
from omni_journey.settings import Settings

__all__ = ["SES_ERRORS", "SesProvider", "create_ses_provider"]

# Every error SendEmail declares (tests check this against botocore's model).
SES_ERRORS: Mapping[str, ErrorRule] = {
    "TooManyRequestsException": TRANSIENT,
    "LimitExceededException": TRANSIENT,
    "AccountSuspendedException": PAUSE_1H,
    "SendingPausedException": PAUSE_1H,
    "MessageRejected": PERMANENT,
    "MailFromDomainNotVerifiedException": PAUSE_1H,
    "NotFoundException": PAUSE_1H,  # configuration set or identity missing: configuration
    "BadRequestException": PERMANENT,
}

DAILY_QUOTA_PAUSE = timedelta(hours=1)
_DAILY_QUOTA = re.compile(r"daily message quota exceeded", re.I)
_MAX_RATE = re.compile(r"maximum sending rate exceeded", re.I)
_BAD_ADDRESS = re.compile(
    r"illegal address|missing final '@domain'|local address contains|domain contains|"
    r"invalid (email )?address",
    re.I,
)


def _refine(code: str, message: str, _response: Mapping[str, Any]) -> ErrorRule | None:
    if _DAILY_QUOTA.search(message):
        return ErrorRule("pause", DAILY_QUOTA_PAUSE)
    if _MAX_RATE.search(message):
        return ErrorRule("transient", timedelta(seconds=1))
    if code in ("BadRequestException", "MessageRejected") and _BAD_ADDRESS.search(message):
        return ADDRESS
    return None


class SesProvider:
    name = "ses"
    max_batch = 20
    idempotent: ClassVar[bool] = False

    def __init__(
        self,
        client: Any,
        *,
        sender: str,
        configuration_set: str | None = None,
        concurrency: int = 8,
    ) -> None:
        self.client = client
        self.sender = sender
        self.configuration_set = configuration_set
        self.concurrency = concurrency

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        return send_each_concurrently(messages, self._send_one, self.concurrency)

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        raw = email_bytes(message, sender=self.sender)
        request: dict[str, Any] = {
            "FromEmailAddress": self.sender,
            "Destination": {"ToAddresses": [message.to]},
            "Content": {"Raw": {"Data": raw}},
            "EmailTags": [{"Name": "omni_message", "Value": str(message.id)}],
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            response = self.client.send_email(**request)
        except Exception as error:
            raise map_aws_error("ses", error, SES_ERRORS, _refine) from None
        return SendResult.sent(message, str(response["MessageId"]))


def create_ses_provider(settings: Settings) -> SesProvider:
    """Entry point ``ses``: credentials and region from boto3's chain."""
    if not settings.unsubscribe_url:
        raise ConfigError(
            "OMNI_UNSUBSCRIBE_URL",
            "the ses provider needs a one-click unsubscribe URL (RFC 8058)",
            "set it to the https URL of your unsubscribe endpoint",
        )
    config = Config(
        retries={"total_max_attempts": settings.aws_max_attempts, "mode": "standard"},
        connect_timeout=5,
        read_timeout=20,
        max_pool_connections=max(10, settings.send_concurrency),
    )
    try:
        client = no_retry_in_doubt(boto3.session.Session().client("sesv2", config=config))
    except Exception as error:
        raise client_config_error("sesv2", error) from None
    return SesProvider(
        client,
        sender=settings.email_from,
        configuration_set=settings.ses_configuration_set,
        concurrency=settings.send_concurrency,
    )
