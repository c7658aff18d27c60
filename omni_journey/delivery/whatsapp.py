"""WhatsApp through AWS End User Messaging Social (``socialmessaging.send_whatsapp_message``).

Meta's 24-hour customer-service window: within 24 hours of the customer's last message
to us (their last ``whatsapp.received`` event, which the dispatcher looks up) free text
may be sent; outside it only an approved template. So: inside the window a rendered
``body`` goes as text (a template if there is no body); outside, the rendered
``template`` + ``params`` go, and a message with no template fails permanently
(``outside_service_window``) without suppressing the number.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import boto3
from botocore.config import Config

from omni_journey.delivery.aws_errors import (
    PAUSE_1H,
    PAUSE_5M,
    PERMANENT,
    TRANSIENT,
    ErrorRule,
    client_config_error,
    map_aws_error,
    no_retry_in_doubt,
)
from omni_journey.delivery.base import (
    AddressRejectedError,
    OutgoingMessage,
    SendResult,
    send_each_concurrently,
)
from omni_journey.delivery.sms import is_e164
from omni_journey.errors import ConfigError, PermanentDeliveryError
from omni_journey.settings import Settings

__all__ = ["WHATSAPP_ERRORS", "WhatsAppProvider", "create_whatsapp_provider", "whatsapp_payload"]

# Every error SendWhatsAppMessage declares (tests check botocore's model).
WHATSAPP_ERRORS: Mapping[str, ErrorRule] = {
    "ValidationException": PERMANENT,
    "AccessDeniedException": PAUSE_5M,
    "InvalidParametersException": PERMANENT,
    "ResourceNotFoundException": PAUSE_1H,  # the origination phone number id is wrong
    "ThrottledRequestException": TRANSIENT,
    "InternalServiceException": TRANSIENT,
    "DependencyException": TRANSIENT,  # Meta's side failed
}


def whatsapp_payload(message: OutgoingMessage) -> dict[str, Any]:
    """The WhatsApp Cloud API message object for ``message``, honouring the window."""
    content = message.content
    base: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to,
    }
    if message.service_window_open and content.body:
        return {**base, "type": "text", "text": {"preview_url": False, "body": content.body}}
    if not content.template:
        raise PermanentDeliveryError(
            "socialmessaging",
            "outside_service_window",
            "no approved template rendered and the customer has not written within 24h",
        )
    template: dict[str, Any] = {
        "name": content.template,
        "language": {"code": content.language or "en"},
    }
    if content.params:
        template["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in content.params]}
        ]
    return {**base, "type": "template", "template": template}


class WhatsAppProvider:
    name = "socialmessaging"
    max_batch = 20
    idempotent: ClassVar[bool] = False

    def __init__(
        self,
        client: Any,
        *,
        phone_number_id: str,
        meta_api_version: str = "v20.0",
        concurrency: int = 8,
    ) -> None:
        self.client = client
        self.phone_number_id = phone_number_id
        self.meta_api_version = meta_api_version
        self.concurrency = concurrency

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        return send_each_concurrently(messages, self._send_one, self.concurrency)

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        if not is_e164(message.to):
            raise AddressRejectedError(
                "socialmessaging", "invalid_phone_number", "not an E.164 number"
            )
        payload = whatsapp_payload(message)
        try:
            response = self.client.send_whatsapp_message(
                originationPhoneNumberId=self.phone_number_id,
                message=json.dumps(payload).encode(),
                metaApiVersion=self.meta_api_version,
            )
        except Exception as error:
            raise map_aws_error("socialmessaging", error, WHATSAPP_ERRORS) from None
        return SendResult.sent(message, str(response["messageId"]))


def create_whatsapp_provider(settings: Settings) -> WhatsAppProvider:
    """Entry point ``socialmessaging``."""
    if not settings.whatsapp_phone_number_id:
        raise ConfigError(
            "OMNI_WHATSAPP_PHONE_NUMBER_ID",
            "the socialmessaging provider needs the origination phone number id",
            "find it with `aws socialmessaging list-linked-whatsapp-business-accounts`",
        )
    config = Config(
        retries={"total_max_attempts": settings.aws_max_attempts, "mode": "standard"},
        connect_timeout=5,
        read_timeout=20,
        max_pool_connections=max(10, settings.send_concurrency),
    )
    try:
        client = no_retry_in_doubt(boto3.session.Session().client("socialmessaging", config=config))
    except Exception as error:
        raise client_config_error("socialmessaging", error) from None
    return WhatsAppProvider(
        client,
        phone_number_id=settings.whatsapp_phone_number_id,
        meta_api_version=settings.whatsapp_meta_api_version,
        concurrency=settings.send_concurrency,
    )
