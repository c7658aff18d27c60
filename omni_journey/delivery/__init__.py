"""Delivery: providers (file, webhook, ses, sns / sms-voice-v2, fcm, socialmessaging), the
outbox dispatcher and delivery feedback.

Importing this package imports no vendor SDK: provider modules load through
:func:`load_providers` (entry points) only when settings choose them.
"""

from omni_journey.delivery.base import (
    AddressRejectedError,
    Content,
    DeliveryInDoubtError,
    FeedbackError,
    OutgoingMessage,
    Provider,
    ProviderPausedError,
    RetryLaterError,
    SendResult,
)
from omni_journey.delivery.dispatch_report import DispatchReport
from omni_journey.delivery.dispatcher import dispatch
from omni_journey.delivery.outbox import OutboxRow
from omni_journey.delivery.recipients import CustomerView
from omni_journey.delivery.registry import available_providers, load_providers
from omni_journey.delivery.rendering import Renderer

__all__ = [
    "AddressRejectedError",
    "Content",
    "CustomerView",
    "DeliveryInDoubtError",
    "DispatchReport",
    "FeedbackError",
    "OutboxRow",
    "OutgoingMessage",
    "Provider",
    "ProviderPausedError",
    "Renderer",
    "RetryLaterError",
    "SendResult",
    "available_providers",
    "dispatch",
    "load_providers",
]
