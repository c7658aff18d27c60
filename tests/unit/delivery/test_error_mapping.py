"""Every vendor error is mapped at the boundary: transient, permanent, address, pause."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import botocore.exceptions
import botocore.session
import pytest
from firebase_admin import exceptions, messaging

from omni_journey.delivery import (
    AddressRejectedError,
    DeliveryInDoubtError,
    ProviderPausedError,
    RetryLaterError,
)
from omni_journey.delivery.aws_errors import map_aws_error, scrub
from omni_journey.delivery.fcm import FCM_ERRORS, map_fcm_error
from omni_journey.delivery.ses import SES_ERRORS, _refine
from omni_journey.delivery.sms import SMS_VOICE_V2_ERRORS, SNS_ERRORS, _refine_v2
from omni_journey.delivery.whatsapp import WHATSAPP_ERRORS
from omni_journey.errors import PermanentDeliveryError, TransientDeliveryError

OPERATIONS = [
    ("sesv2", "SendEmail", SES_ERRORS),
    ("sns", "Publish", SNS_ERRORS),
    ("pinpoint-sms-voice-v2", "SendTextMessage", SMS_VOICE_V2_ERRORS),
    ("socialmessaging", "SendWhatsAppMessage", WHATSAPP_ERRORS),
]


@pytest.mark.parametrize(("service", "operation", "table"), OPERATIONS)
def test_every_error_the_operation_declares_is_mapped(
    service: str, operation: str, table: Any
) -> None:
    model = botocore.session.get_session().get_service_model(service)
    declared = {
        shape.metadata.get("error", {}).get("code") or shape.name
        for shape in model.operation_model(operation).error_shapes
    }
    assert declared - set(table) == set()


def _client_error(code: str, message: str = "", status: int = 400, **extra: Any) -> Exception:
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **extra,
    }
    return botocore.exceptions.ClientError(response, "Op")  # type: ignore[arg-type]


@pytest.mark.parametrize(("service", "operation", "table"), OPERATIONS)
def test_each_mapped_code_becomes_the_right_error(service: str, operation: str, table: Any) -> None:
    for code, rule in table.items():
        error = map_aws_error(service, _client_error(code), table)
        expected = {
            "transient": TransientDeliveryError,
            "permanent": PermanentDeliveryError,
            "address": AddressRejectedError,
            "pause": ProviderPausedError,
        }[rule.kind]
        assert isinstance(error, expected), code
        assert error.code == code


def test_daily_quota_pauses_and_max_rate_retries_soon() -> None:
    quota = map_aws_error(
        "ses", _client_error("LimitExceededException", "Daily message quota exceeded."),
        SES_ERRORS, _refine,
    )  # fmt: skip
    assert isinstance(quota, ProviderPausedError) and quota.retry_after == timedelta(hours=1)
    rate = map_aws_error(
        "ses", _client_error("Throttling", "Maximum sending rate exceeded."), SES_ERRORS, _refine
    )
    assert isinstance(rate, RetryLaterError) and not isinstance(rate, ProviderPausedError)


def test_opted_out_destination_suppresses_the_number() -> None:
    error = map_aws_error(
        "sms-voice-v2", _client_error("ConflictException", "opted out",
                                      Reason="DESTINATION_PHONE_NUMBER_OPTED_OUT"),
        SMS_VOICE_V2_ERRORS, _refine_v2,
    )  # fmt: skip
    assert isinstance(error, AddressRejectedError)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (botocore.exceptions.ReadTimeoutError(endpoint_url="x"), DeliveryInDoubtError),
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="x"), TransientDeliveryError),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="x"), TransientDeliveryError),
        (botocore.exceptions.NoCredentialsError(), ProviderPausedError),
        (_client_error("SomethingNew", status=503), TransientDeliveryError),
        (_client_error("SomethingNew", status=400), PermanentDeliveryError),
        (_client_error("ExpiredToken", status=403), ProviderPausedError),
    ],
)
def test_client_side_and_unknown_aws_errors(error: Exception, expected: type) -> None:
    assert type(map_aws_error("ses", error, SES_ERRORS)) is expected


def test_vendor_messages_never_carry_addresses() -> None:
    text = "Email address is not verified: ana@example.com, +49 151 1234 5678"
    assert scrub(text) == "Email address is not verified: <address>, <number>"


def _firebase_errors() -> list[type[exceptions.FirebaseError]]:
    found: list[type[exceptions.FirebaseError]] = []
    pending = [exceptions.FirebaseError]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("firebase_admin") and sub not in found:
                found.append(sub)
                pending.append(sub)
    return found


def test_every_firebase_error_is_mapped() -> None:
    classes = _firebase_errors()
    assert messaging.UnregisteredError in classes and len(classes) > 15
    for cls in classes:
        try:
            error = cls("boom")  # type: ignore[call-arg]
        except TypeError:
            continue  # needs other arguments: covered through its code below
        assert map_fcm_error(error).code in FCM_ERRORS, cls
    canonical = {v for k, v in vars(exceptions).items() if k.isupper() and isinstance(v, str)}
    assert canonical - set(FCM_ERRORS) == set()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (messaging.UnregisteredError("gone"), AddressRejectedError),
        (messaging.SenderIdMismatchError("other sender"), AddressRejectedError),
        (
            exceptions.InvalidArgumentError("The registration token is not valid"),
            AddressRejectedError,
        ),
        (exceptions.InvalidArgumentError("Message payload too big"), PermanentDeliveryError),
        (messaging.QuotaExceededError("quota"), ProviderPausedError),
        (exceptions.UnavailableError("down"), TransientDeliveryError),
        (messaging.ThirdPartyAuthError("apns"), RetryLaterError),
        (ValueError("bad data"), PermanentDeliveryError),
    ],
)
def test_fcm_errors(error: Exception, expected: type) -> None:
    assert type(map_fcm_error(error)) is expected


def test_quota_exceeded_backs_off_at_least_a_minute() -> None:
    error = map_fcm_error(messaging.QuotaExceededError("quota"))
    assert isinstance(error, ProviderPausedError) and error.retry_after >= timedelta(minutes=1)
