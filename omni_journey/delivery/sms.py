"""SMS through AWS: SNS (``sns.publish(PhoneNumber=...)``) or End User Messaging SMS
(``pinpoint-sms-voice-v2`` ``send_text_message``), chosen by ``OMNI_SMS_PROVIDER``.

Numbers must be E.164 (``+`` country code number, a possible length for that country);
anything else fails that message permanently and suppresses the number, never the run.
Inbound STOP keywords are handled in :mod:`omni_journey.delivery.optout`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import boto3
import phonenumbers
from botocore.config import Config

from omni_journey.delivery.aws_errors import (
    ADDRESS,
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
from omni_journey.errors import ConfigError
from omni_journey.settings import Settings

__all__ = [
    "SMS_VOICE_V2_ERRORS",
    "SNS_ERRORS",
    "SmsVoiceV2Provider",
    "SnsSmsProvider",
    "create_sms_voice_v2_provider",
    "create_sns_provider",
    "is_e164",
]

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def is_e164(number: str) -> bool:
    """``+`` and a country code and a number of a possible length for that country."""
    if not _E164.match(number):
        return False
    try:
        return bool(phonenumbers.is_possible_number(phonenumbers.parse(number, None)))
    except phonenumbers.NumberParseException:
        return False


def _text(message: OutgoingMessage) -> str:
    content = message.content
    return content.text if content.text is not None else (content.body or "")


# Every error Publish declares, by its wire code (tests check botocore's model).
SNS_ERRORS: Mapping[str, ErrorRule] = {
    "InvalidParameter": PERMANENT,
    "ParameterValueInvalid": PERMANENT,
    "InternalError": TRANSIENT,
    "NotFound": PERMANENT,
    "EndpointDisabled": ADDRESS,
    "PlatformApplicationDisabled": PAUSE_1H,
    "AuthorizationError": PAUSE_5M,
    "KMSDisabled": PAUSE_1H,
    "KMSInvalidState": PAUSE_1H,
    "KMSNotFound": PAUSE_1H,
    "KMSOptInRequired": PAUSE_1H,
    "KMSThrottling": TRANSIENT,
    "KMSAccessDenied": PAUSE_5M,
    "InvalidSecurity": PAUSE_5M,
    "ValidationException": PERMANENT,
}


def _refine_sns(code: str, message: str, _response: Mapping[str, Any]) -> ErrorRule | None:
    if code in ("InvalidParameter", "ParameterValueInvalid") and "phonenumber" in message.lower():
        return ADDRESS
    return None


# Every error SendTextMessage declares; the Reason field refines some of them.
SMS_VOICE_V2_ERRORS: Mapping[str, ErrorRule] = {
    "ServiceQuotaExceededException": PAUSE_1H,
    "ThrottlingException": TRANSIENT,
    "AccessDeniedException": PAUSE_1H,
    "ResourceNotFoundException": PAUSE_1H,  # origination identity or configuration set
    "ValidationException": PERMANENT,
    "ConflictException": PERMANENT,
    "InternalServerException": TRANSIENT,
}

_V2_REASONS: Mapping[str, ErrorRule] = {
    "DESTINATION_PHONE_NUMBER_OPTED_OUT": ADDRESS,
    "CANNOT_PARSE": ADDRESS,
    "COUNTRY_CODE_MISMATCH": ADDRESS,
    "DAILY_DESTINATION_CALL_LIMIT": ErrorRule("transient", timedelta(hours=1)),
    "PRICE_OVER_THRESHOLD": PERMANENT,
}


def _refine_v2(code: str, _message: str, response: Mapping[str, Any]) -> ErrorRule | None:
    reason = str(response.get("Reason") or "")
    if reason in _V2_REASONS:
        return _V2_REASONS[reason]
    fields = response.get("Fields") or []
    if code == "ValidationException" and any(
        isinstance(f, Mapping) and f.get("Name") == "DestinationPhoneNumber" for f in fields
    ):
        return ADDRESS
    return None


class SnsSmsProvider:
    name = "sns"
    max_batch = 20
    idempotent: ClassVar[bool] = False

    def __init__(
        self,
        client: Any,
        *,
        message_type: str = "PROMOTIONAL",
        origination: str | None = None,
        concurrency: int = 8,
    ) -> None:
        self.client = client
        self.attributes: dict[str, dict[str, str]] = {
            "AWS.SNS.SMS.SMSType": {
                "DataType": "String",
                "StringValue": message_type.capitalize(),
            }
        }
        if origination and origination.startswith("+"):
            self.attributes["AWS.MM.SMS.OriginationNumber"] = {
                "DataType": "String",
                "StringValue": origination,
            }
        elif origination:
            self.attributes["AWS.SNS.SMS.SenderID"] = {
                "DataType": "String",
                "StringValue": origination,
            }
        self.concurrency = concurrency

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        return send_each_concurrently(messages, self._send_one, self.concurrency)

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        if not is_e164(message.to):
            raise AddressRejectedError("sns", "invalid_phone_number", "not an E.164 number")
        try:
            response = self.client.publish(
                PhoneNumber=message.to, Message=_text(message), MessageAttributes=self.attributes
            )
        except Exception as error:
            raise map_aws_error("sns", error, SNS_ERRORS, _refine_sns) from None
        return SendResult.sent(message, str(response["MessageId"]))


class SmsVoiceV2Provider:
    name = "sms-voice-v2"
    max_batch = 20
    idempotent: ClassVar[bool] = False

    def __init__(
        self,
        client: Any,
        *,
        origination_identity: str,
        message_type: str = "PROMOTIONAL",
        configuration_set: str | None = None,
        concurrency: int = 8,
    ) -> None:
        self.client = client
        self.origination_identity = origination_identity
        self.message_type = message_type
        self.configuration_set = configuration_set
        self.concurrency = concurrency

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        return send_each_concurrently(messages, self._send_one, self.concurrency)

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        if not is_e164(message.to):
            raise AddressRejectedError(
                "sms-voice-v2", "invalid_phone_number", "not an E.164 number"
            )
        request: dict[str, Any] = {
            "DestinationPhoneNumber": message.to,
            "OriginationIdentity": self.origination_identity,
            "MessageBody": _text(message),
            "MessageType": self.message_type,
            "Context": {"omni_message": str(message.id)},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            response = self.client.send_text_message(**request)
        except Exception as error:
            raise map_aws_error("sms-voice-v2", error, SMS_VOICE_V2_ERRORS, _refine_v2) from None
        return SendResult.sent(message, str(response["MessageId"]))


def _client(service: str, settings: Settings) -> Any:
    config = Config(
        retries={"total_max_attempts": settings.aws_max_attempts, "mode": "standard"},
        connect_timeout=5,
        read_timeout=20,
        max_pool_connections=max(10, settings.send_concurrency),
    )
    try:
        return no_retry_in_doubt(boto3.session.Session().client(service, config=config))
    except Exception as error:
        raise client_config_error(service, error) from None


def create_sns_provider(settings: Settings) -> SnsSmsProvider:
    """Entry point ``sns``."""
    return SnsSmsProvider(
        _client("sns", settings),
        message_type=settings.sms_message_type,
        origination=settings.sms_origination_identity,
        concurrency=settings.send_concurrency,
    )


def create_sms_voice_v2_provider(settings: Settings) -> SmsVoiceV2Provider:
    """Entry point ``sms-voice-v2``."""
    if not settings.sms_origination_identity:
        raise ConfigError(
            "OMNI_SMS_ORIGINATION_IDENTITY",
            "sms-voice-v2 needs an origination identity",
            "set it to a phone number, pool, sender id or their ARN",
        )
    return SmsVoiceV2Provider(
        _client("pinpoint-sms-voice-v2", settings),
        origination_identity=settings.sms_origination_identity,
        message_type=settings.sms_message_type,
        configuration_set=settings.sms_configuration_set,
        concurrency=settings.send_concurrency,
    )
