"""The provider interface: what the dispatcher hands a provider, and what it gets back.

A provider sends a batch of :class:`OutgoingMessage` and answers one :class:`SendResult`
per message, in order. It never raises for one message's failure: a vendor error is
mapped at the boundary to

- :class:`TransientDeliveryError` (retry later: throttling, 5xx, timeouts), or its
  :class:`RetryLaterError` / :class:`ProviderPausedError` refinements that say how long
  to wait (and, for a pause, that every message of this provider must wait), or
  :class:`DeliveryInDoubtError` when the request went out and no answer came back (the
  provider may have delivered it);
- :class:`PermanentDeliveryError` (never retry), or :class:`AddressRejectedError` when
  the address itself is bad: the dispatcher suppresses it (or prunes the push token).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol, runtime_checkable

from omni_journey.errors import (
    DeliveryError,
    OmniJourneyError,
    PermanentDeliveryError,
    TransientDeliveryError,
)

__all__ = [
    "AddressRejectedError",
    "Content",
    "DeliveryInDoubtError",
    "FeedbackError",
    "OutgoingMessage",
    "Provider",
    "ProviderPausedError",
    "RetryLaterError",
    "SendResult",
    "send_each_concurrently",
]


class RetryLaterError(TransientDeliveryError):
    """Transient, and the vendor said how long to wait at least (``retry_after``)."""

    def __init__(self, provider: str, code: str, detail: str = "", *, retry_after: timedelta):
        super().__init__(provider, code, detail)
        self.retry_after = retry_after


class ProviderPausedError(RetryLaterError):
    """The provider refuses every message for a while (daily quota, project quota, account
    paused): the dispatcher stops using it for ``retry_after`` and does not count an
    attempt against the messages it puts back."""


class DeliveryInDoubtError(TransientDeliveryError):
    """The request went out and no answer came back (a read timeout, a connection closed
    mid-call): the provider may have delivered the message. An idempotent provider sends
    it again; for one that takes no idempotency key the dispatcher handles it as a
    message in doubt (``OMNI_DISPATCH_IN_DOUBT``: failed with ``in_doubt`` and listed, or
    sent again)."""


class AddressRejectedError(PermanentDeliveryError):
    """The address itself is bad or gone: suppress it (email, SMS) or prune the token."""


class FeedbackError(OmniJourneyError, ValueError):
    """A delivery-feedback notification was refused. ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


_ALIASES: dict[str, tuple[str, ...]] = {
    "template": ("template", "template_name"),
    "language": ("language", "template_language"),
    "params": ("params", "template_params"),
}


@dataclass(frozen=True)
class Content:
    """What a message says, for any channel (the renderer's output, flattened).

    email: ``subject``, ``html``, ``text``; SMS: ``text``; push: ``title``, ``body``,
    ``data``; WhatsApp: ``body`` (free text) and/or ``template`` + ``language`` +
    ``params`` (an approved template); webhook: ``payload`` and ``headers``. An email's
    ``unsubscribe_url``, when the renderer made one, is used for ``List-Unsubscribe``.
    """

    subject: str | None = None
    html: str | None = None
    text: str | None = None
    title: str | None = None
    body: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    template: str | None = None
    language: str | None = None
    params: Sequence[str] = ()
    payload: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    unsubscribe_url: str | None = None  # the renderer's signed link wins over ours

    @classmethod
    def of(cls, rendered: object) -> Content:
        """Read a RenderedMessage-like object (attributes) or a mapping into ``Content``."""
        if isinstance(rendered, Content):
            return rendered

        def get(name: str) -> Any:
            for alias in _ALIASES.get(name, (name,)):
                if isinstance(rendered, Mapping):
                    value = rendered.get(alias)
                else:
                    value = getattr(rendered, alias, None)
                if value is not None:
                    return value
            return None

        data = get("data") or {}
        return cls(
            subject=get("subject"),
            html=get("html"),
            text=get("text"),
            title=get("title"),
            body=get("body"),
            data={str(k): str(v) for k, v in dict(data).items()},
            template=get("template"),
            language=get("language"),
            params=tuple(str(p) for p in (get("params") or ())),
            payload=get("payload"),
            headers=dict(get("headers") or {}),
            unsubscribe_url=get("unsubscribe_url"),
        )


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one address, ready to send. ``to`` is an email address, an E.164
    number, a push token or a webhook URL; ``id`` is the outbox row id."""

    id: int
    idempotency_key: str
    channel: str
    customer_id: str
    to: str
    content: Content
    at: datetime
    message_key: str = ""
    journey_key: str | None = None
    step_id: str | None = None
    unsubscribe_url: str | None = None
    service_window_open: bool = False  # WhatsApp: the customer wrote within 24 hours

    def describe(self) -> str:
        """For logs: ids only, never the address."""
        return (
            f"message={self.id} journey={self.journey_key} step={self.step_id} "
            f"channel={self.channel}"
        )


@dataclass(frozen=True)
class SendResult:
    """The outcome for one message: sent with the provider's id, or an error."""

    message_id: int
    provider_message_id: str | None = None
    error: DeliveryError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def sent(cls, message: OutgoingMessage, provider_message_id: str) -> SendResult:
        return cls(message.id, provider_message_id=provider_message_id)

    @classmethod
    def failed(cls, message: OutgoingMessage, error: DeliveryError) -> SendResult:
        return cls(message.id, error=error)


@runtime_checkable
class Provider(Protocol):
    """Sends messages of one or more channels through one vendor.

    ``name`` is the entry-point name (``ses``, ``fcm``, ...) and keys rate limits;
    ``max_batch`` is the most messages one ``send_batch`` call takes (for an idempotent
    provider the dispatcher commits once per call; one that is not idempotent gets one
    message per call, each committed in flight on its own, so its ambiguous window is
    one message per concurrent call; ``max_batch`` then sizes the rate limit's steps);
    ``idempotent`` says a repeated send of the same idempotency key cannot reach the
    customer twice (the file outbox overwrites), so a message in doubt may be resent.

    ``send_batch`` is how a provider sends in batches: the dispatcher hands it up to
    ``max_batch`` messages, and marks them sent only after it returns. A result "sent"
    therefore means done: a provider may buffer or write the whole batch first and make
    it durable once (the file outbox fsyncs the batch together), but it must do so
    before returning, never after.
    """

    name: str
    max_batch: int
    idempotent: ClassVar[bool]

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]: ...


def send_each_concurrently(
    messages: Sequence[OutgoingMessage],
    send_one: Callable[[OutgoingMessage], SendResult],
    concurrency: int,
) -> list[SendResult]:
    """``send_one`` over ``messages`` with at most ``concurrency`` calls at once, in order.

    ``send_one`` maps its vendor's errors itself; anything it lets escape is a bug in
    the mapping and is reported as transient ``unexpected_error``, so the batch goes on.
    """

    def guarded(message: OutgoingMessage) -> SendResult:
        try:
            return send_one(message)
        except DeliveryError as error:
            return SendResult.failed(message, error)
        except Exception as error:
            return SendResult.failed(
                message,
                TransientDeliveryError("provider", "unexpected_error", type(error).__name__),
            )

    if concurrency <= 1 or len(messages) <= 1:
        return [guarded(m) for m in messages]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(messages))) as pool:
        return list(pool.map(guarded, messages))
