"""Delivery: providers (file, webhook, ses, sns / sms-voice-v2, fcm, socialmessaging), the
outbox dispatcher and delivery feedback.

Importing this package imports no vendor SDK: provider modules load through
:func:`load_providers` (entry points) only when settings choose them. The names below
load with their module on first use, so a command that only queues messages (a journey
pass imports :mod:`omni_journey.delivery.outbox`) does not load the dispatcher, the
renderer's glue or the provider registry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULES = {
    "AddressRejectedError": "base",
    "Content": "base",
    "DeliveryInDoubtError": "base",
    "FeedbackError": "base",
    "OutgoingMessage": "base",
    "Provider": "base",
    "ProviderPausedError": "base",
    "RetryLaterError": "base",
    "SendResult": "base",
    "DispatchReport": "dispatch_report",
    "dispatch": "dispatcher",
    "OutboxRow": "outbox",
    "CustomerView": "recipients",
    "available_providers": "registry",
    "load_providers": "registry",
    "Renderer": "rendering",
}

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


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULES))
