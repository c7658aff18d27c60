"""The outbox dispatcher: claim due messages, re-check consent, render, send, record.

One pass (:func:`dispatch`) loops: claim a batch (``OMNI_DISPATCH_BATCH_SIZE``) ->
read recipients (consent, suppressions, tokens, WhatsApp window) -> decide per row
(suppressed / failed / render) -> per provider, in chunks of its ``max_batch``: wait
for the rate limit, commit "in flight", call the provider, commit the results (status,
provider message id, attempts, error, ``message.sent`` / ``message.failed`` events,
suppressions, pruned tokens). The dispatcher decides nothing about journeys; it sends
what the outbox says, exactly once where the provider allows it (docs/operations.md,
"Providers and delivery", explains the one ambiguous window).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine

from omni_journey.delivery.base import (
    AddressRejectedError,
    Content,
    OutgoingMessage,
    Provider,
    ProviderPausedError,
    RetryLaterError,
    SendResult,
)
from omni_journey.delivery.outbox import (
    Finish,
    OutboxRow,
    claim,
    finish,
    mark_in_flight,
    release,
)
from omni_journey.delivery.ratelimit import TokenBucket
from omni_journey.delivery.recipients import (
    WHATSAPP_WINDOW,
    CustomerView,
    Recipients,
    load_recipients,
)
from omni_journey.errors import (
    DeliveryError,
    OmniJourneyError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from omni_journey.links import LinkSigner
from omni_journey.settings import Settings

__all__ = ["DispatchReport", "Renderer", "dispatch", "render_failure"]

log = logging.getLogger("omni_journey.delivery")


class Renderer(Protocol):
    """Renders one outbox row for one customer: returns a RenderedMessage-like object
    (attributes or keys as :class:`~omni_journey.delivery.base.Content` reads them).

    Raising never stops the run. An error that says it is permanent (a ``permanent``
    attribute, or an omni-journey ``ValueError`` with a ``code``, as
    ``omni_journey.render.RenderError`` is) fails that message with its code; anything
    else fails it for this pass only (retried with backoff)."""

    def __call__(self, message: OutboxRow, customer: CustomerView) -> object: ...


@dataclass
class DispatchReport:
    """What one pass did. ``by_provider`` counts outcomes per provider; ``errors`` counts
    ``provider:code`` of every failure and retry."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    retried: int = 0
    deferred: int = 0
    in_doubt: int = 0
    claims_lost: int = 0
    by_provider: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter[str] = field(default_factory=Counter)
    paused: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "sent": self.sent,
            "failed": self.failed,
            "suppressed": self.suppressed,
            "retried": self.retried,
            "deferred": self.deferred,
            "in_doubt": self.in_doubt,
            "claims_lost": self.claims_lost,
            "by_provider": {name: dict(c) for name, c in sorted(self.by_provider.items())},
            "errors": dict(sorted(self.errors.items())),
            "paused": dict(self.paused),
        }

    def summary(self) -> str:
        text = (
            f"claimed {self.claimed}: sent {self.sent}, failed {self.failed}, "
            f"suppressed {self.suppressed}, retry later {self.retried}, deferred {self.deferred}"
        )
        if self.in_doubt:
            text += f", in doubt {self.in_doubt}"
        if self.paused:
            text += "; paused " + ", ".join(f"{p} ({c})" for p, c in sorted(self.paused.items()))
        return text


def dispatch(
    engine: Engine,
    providers: Mapping[str, Provider],
    renderer: Renderer,
    *,
    now: datetime,
    settings: Settings,
    worker_id: str,
    limit: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rate_limiters: Mapping[str, TokenBucket] | None = None,
) -> DispatchReport:
    """Send every due outbox message once (at most ``limit`` claimed), and report.

    ``providers`` maps a channel (email, sms, push, whatsapp, webhook) to its provider;
    ``now`` is the pass's start, ``clock`` measures time since (rate limits, claim
    expiry) and ``sleep`` waits for the rate limit: tests pass fakes for both.
    """
    return _Pass(
        engine, providers, renderer, now, settings, worker_id, clock, sleep, rate_limiters
    ).run(limit)


def render_failure(error: BaseException) -> DeliveryError:
    """What a renderer's exception means for the message.

    Delivery does not import ``omni_journey.render``: a render error is recognised by
    what it says about itself. ``permanent = True``, or an omni-journey ``ValueError``
    with a string ``code`` (``RenderError``: the template cannot render for this
    customer, and trying again renders the same) -> permanent, with that code. A
    :class:`DeliveryError` keeps its own kind. Anything else (a bug, a database hiccup
    while loading data) -> transient ``render_error``.
    """
    if isinstance(error, DeliveryError):
        return error
    code = getattr(error, "code", None)
    permanent = getattr(error, "permanent", None)
    if permanent is None:
        permanent = isinstance(error, OmniJourneyError) and isinstance(error, ValueError)
        permanent = permanent and isinstance(code, str) and bool(code)
    if permanent is True:
        code = code if isinstance(code, str) and code else "render_error"
        return PermanentDeliveryError("render", code, str(error)[:500])
    return TransientDeliveryError("render", "render_error", type(error).__name__)


class _Pass:
    def __init__(
        self,
        engine: Engine,
        providers: Mapping[str, Provider],
        renderer: Renderer,
        now: datetime,
        settings: Settings,
        worker_id: str,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        rate_limiters: Mapping[str, TokenBucket] | None,
    ) -> None:
        self.engine = engine
        self.providers = providers
        self.renderer = renderer
        self.settings = settings
        self.worker_id = worker_id
        self.clock = clock
        self.now = now
        self.started = clock()
        self.ttl = timedelta(seconds=settings.dispatch_claim_seconds)
        rates = settings.provider_rate_limits
        self.buckets: dict[str, TokenBucket] = dict(rate_limiters or {})
        for provider in providers.values():
            if provider.name not in self.buckets:
                self.buckets[provider.name] = TokenBucket(
                    rates.get(provider.name), clock=clock, sleep=sleep
                )
        self.paused_until: dict[str, datetime] = {}
        self.report = DispatchReport()
        self.links = LinkSigner.from_settings(settings)

    def wall(self) -> datetime:
        return self.now + timedelta(seconds=max(0.0, self.clock() - self.started))

    def run(self, limit: int | None) -> DispatchReport:
        remaining = limit
        while remaining is None or remaining > 0:
            size = self.settings.dispatch_batch_size
            if remaining is not None:
                size = min(size, remaining)
            at = self.wall()
            rows = claim(
                self.engine, worker_id=self.worker_id, now=at, until=at + self.ttl, limit=size
            )
            if not rows:
                break
            self.report.claimed += len(rows)
            if remaining is not None:
                remaining -= len(rows)
            self._process(rows, claimed_until=at + self.ttl)
        log.info("dispatch pass (worker %s): %s", self.worker_id, self.report.summary())
        return self.report

    # --- one claimed batch -------------------------------------------------------------

    def _process(self, rows: Sequence[OutboxRow], claimed_until: datetime) -> None:
        with self.engine.connect() as connection:
            recipients = load_recipients(
                connection,
                [r.customer_id for r in rows if r.channel != "webhook"],
                now=self.wall(),
            )
        finished: list[Finish] = []
        outgoing: dict[str, list[tuple[OutboxRow, OutgoingMessage]]] = defaultdict(list)
        for row in rows:
            try:
                prepared = self._prepare(row, recipients)
            except Exception as error:  # a bug in one row never stops the run
                log.exception("could not prepare %s", row.describe())
                prepared = self._retry(
                    row,
                    TransientDeliveryError("dispatch", "prepare_error", type(error).__name__),
                    counted=True,
                    customer_id=row.customer_id,
                )
            if isinstance(prepared, Finish):
                finished.append(prepared)
            else:
                outgoing[self.providers[row.channel].name].append((row, prepared))
        self._finish(finished)
        for items in outgoing.values():
            self._send(self.providers[items[0][0].channel], items, claimed_until)

    def _prepare(self, row: OutboxRow, recipients: Recipients) -> Finish | OutgoingMessage:
        at = self.wall()
        provider = self.providers.get(row.channel)
        if provider is None:
            return self._fail(
                row,
                PermanentDeliveryError("dispatch", "no_provider", row.channel),
                customer_id=row.customer_id,
            )
        if row.in_doubt:
            self.report.in_doubt += 1
            if not provider.idempotent and self.settings.dispatch_in_doubt == "fail":
                log.error("in doubt, not resent (OMNI_DISPATCH_IN_DOUBT=fail): %s", row.describe())
                return self._fail(
                    row,
                    PermanentDeliveryError(
                        provider.name, "in_doubt", "a sender crashed during the provider call"
                    ),
                    customer_id=row.customer_id,
                )
        if row.channel == "webhook":
            url = row.decision.get("url")
            if not isinstance(url, str) or not url:
                return self._fail(
                    row,
                    PermanentDeliveryError("webhook", "invalid_webhook"),
                    customer_id=row.customer_id,
                )
            content = Content(
                payload=dict(row.decision.get("body") or {}),
                headers={str(k): str(v) for k, v in (row.decision.get("headers") or {}).items()},
            )
            return self._outgoing(row, row.customer_id, url, content, at)
        customer = recipients.customers.get(row.customer_id)
        if customer is None:
            return self._fail(
                row,
                PermanentDeliveryError("dispatch", "unknown_customer"),
                customer_id=row.customer_id,
            )
        if not customer.consent.get(row.channel):
            return self._suppressed(row, "no_consent", customer.id)
        address = recipients.address(customer, row.channel)
        if not address:
            return self._fail(
                row,
                PermanentDeliveryError("dispatch", "unreachable", row.channel),
                customer_id=customer.id,
            )
        if recipients.is_suppressed(row.channel, address):
            return self._suppressed(row, "suppressed", customer.id)
        try:
            content = Content.of(self.renderer(row, customer))
        except Exception as error:
            failure = render_failure(error)
            log.warning("render failed for %s: %s", row.describe(), failure.code)
            if failure.transient:
                return self._retry(row, failure, counted=True, customer_id=customer.id)
            return self._fail(row, failure, customer_id=customer.id, attempts_delta=1)
        window = customer.last_whatsapp_inbound is not None and (
            at - customer.last_whatsapp_inbound < WHATSAPP_WINDOW
        )
        unsubscribe = None
        if row.channel == "email":  # RFC 8058: every email carries one-click unsubscribe
            unsubscribe = content.unsubscribe_url or self.links.unsubscribe(
                customer.id, row.channel, row.message_key
            )
        return self._outgoing(row, customer.id, address, content, at, unsubscribe, window)

    @staticmethod
    def _outgoing(
        row: OutboxRow,
        customer_id: str,
        to: str,
        content: Content,
        at: datetime,
        unsubscribe: str | None = None,
        window: bool = False,
    ) -> OutgoingMessage:
        return OutgoingMessage(
            id=row.id,
            idempotency_key=row.idempotency_key,
            channel=row.channel,
            customer_id=customer_id,
            to=to,
            content=content,
            at=at,
            message_key=row.message_key,
            journey_key=row.journey_key,
            step_id=row.step_id,
            unsubscribe_url=unsubscribe,
            service_window_open=window,
        )

    # --- sending -----------------------------------------------------------------------

    def _chunk_size(self, provider: Provider) -> int:
        size = max(1, provider.max_batch)
        rate = self.buckets[provider.name].rate
        if rate:  # a chunk's wait for the rate limit stays well inside the claim
            size = min(size, max(1, int(rate * self.ttl.total_seconds() / 4)))
        return size

    def _send(
        self,
        provider: Provider,
        items: Sequence[tuple[OutboxRow, OutgoingMessage]],
        claimed_until: datetime,
    ) -> None:
        size = self._chunk_size(provider)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        for index, chunk in enumerate(chunks):
            ids = [row.id for row, _ in chunk]
            paused = self.paused_until.get(provider.name)
            if paused is not None:
                release(self.engine, ids, worker_id=self.worker_id, send_after=paused)
                self.report.deferred += len(ids)
                self.report.by_provider[provider.name]["deferred"] += len(ids)
                continue
            self.buckets[provider.name].acquire(len(chunk))
            if self.wall() >= claimed_until - self.ttl / 2:
                rest = [row.id for c in chunks[index:] for row, _ in c]
                log.warning(
                    "claim on %d %s messages half expired before sending: put back",
                    len(rest),
                    provider.name,
                )
                release(self.engine, rest, worker_id=self.worker_id)
                self.report.deferred += len(rest)
                return
            held = mark_in_flight(self.engine, ids, worker_id=self.worker_id, at=self.wall())
            sendable = [(row, m) for row, m in chunk if row.id in held]
            self.report.claims_lost += len(chunk) - len(sendable)
            if not sendable:
                continue
            results = self._call(provider, [m for _, m in sendable])
            finishes = [self._after_send(provider, row, m, results[row.id]) for row, m in sendable]
            self._finish(finishes)

    def _call(
        self, provider: Provider, messages: Sequence[OutgoingMessage]
    ) -> dict[int, SendResult]:
        try:
            results = {r.message_id: r for r in provider.send_batch(messages)}
        except Exception as error:  # a provider bug: nothing known about this batch
            log.exception("provider %s raised instead of answering", provider.name)
            results = {}
            failure = TransientDeliveryError(
                provider.name, "provider_crashed", type(error).__name__
            )
            for message in messages:
                results[message.id] = SendResult.failed(message, failure)
        for message in messages:
            if message.id not in results:
                results[message.id] = SendResult.failed(
                    message, TransientDeliveryError(provider.name, "no_result")
                )
        return results

    def _after_send(
        self, provider: Provider, row: OutboxRow, message: OutgoingMessage, result: SendResult
    ) -> Finish:
        at = self.wall()
        attempts = row.attempts + 1
        stats = self.report.by_provider[provider.name]
        error = result.error
        if error is None:
            self.report.sent += 1
            stats["sent"] += 1
            log.info("sent %s provider_message_id=%s", row.describe(), result.provider_message_id)
            return Finish(
                row,
                "sent",
                at,
                message.customer_id,
                provider=provider.name,
                provider_message_id=result.provider_message_id,
                event="message.sent",
                extra={"attempts": attempts},
            )
        if isinstance(error, ProviderPausedError):
            until = at + error.retry_after
            self.paused_until[provider.name] = max(
                until, self.paused_until.get(provider.name, until)
            )
            self.report.paused[provider.name] = error.code
            self.report.deferred += 1
            stats["deferred"] += 1
            self.report.errors[f"{error.provider}:{error.code}"] += 1
            log.error("provider %s paused until %s: %s", provider.name, until.isoformat(), error)
            return Finish(
                row,
                "pending",
                at,
                message.customer_id,
                error=str(error),
                error_code=error.code,
                send_after=until,
                attempts_delta=-1,
                provider=provider.name,
            )
        if isinstance(error, TransientDeliveryError):
            return self._retry(
                row, error, counted=False, customer_id=message.customer_id, provider=provider.name
            )
        finish_ = self._fail(row, error, customer_id=message.customer_id, provider=provider.name)
        if isinstance(error, AddressRejectedError):
            finish_.suppress = (row.channel, message.to, error.code)
            if row.channel == "push":
                finish_.prune_push_token = message.to
        return finish_

    # --- outcomes ----------------------------------------------------------------------

    def _backoff(self, attempts: int) -> timedelta:
        base = self.settings.dispatch_backoff_seconds
        return timedelta(seconds=base * 2 ** min(max(attempts - 1, 0), 6))

    def _retry(
        self,
        row: OutboxRow,
        error: DeliveryError,
        *,
        counted: bool,
        customer_id: str,
        provider: str | None = None,
    ) -> Finish:
        """Transient: back to pending later, or failed after the last attempt.

        ``counted``: no provider call happened (render error), so count the attempt here.
        """
        attempts = row.attempts + 1
        if attempts >= self.settings.dispatch_max_attempts:
            return self._fail(
                row,
                error,
                customer_id=customer_id,
                provider=provider,
                attempts_delta=1 if counted else 0,
                exhausted=True,
            )
        at = self.wall()
        delay = self._backoff(attempts)
        if isinstance(error, RetryLaterError):
            delay = max(delay, error.retry_after)
        self.report.retried += 1
        self.report.errors[f"{error.provider}:{error.code}"] += 1
        self.report.by_provider[provider or error.provider]["retried"] += 1
        log.warning("retry %s in %ss after %s", row.describe(), int(delay.total_seconds()), error)
        return Finish(
            row,
            "pending",
            at,
            customer_id,
            error=str(error),
            error_code=error.code,
            send_after=at + delay,
            attempts_delta=1 if counted else 0,
            provider=provider,
        )

    def _fail(
        self,
        row: OutboxRow,
        error: DeliveryError,
        *,
        customer_id: str,
        provider: str | None = None,
        attempts_delta: int = 0,
        exhausted: bool = False,
    ) -> Finish:
        self.report.failed += 1
        self.report.errors[f"{error.provider}:{error.code}"] += 1
        self.report.by_provider[provider or error.provider]["failed"] += 1
        log.warning("failed %s: %s", row.describe(), error)
        attempts = row.attempts + attempts_delta + (1 if provider else 0)
        return Finish(
            row,
            "failed",
            self.wall(),
            customer_id,
            error=str(error),
            error_code=error.code,
            attempts_delta=attempts_delta,
            provider=provider,
            event="message.failed",
            extra={"attempts": attempts, "transient": error.transient, "exhausted": exhausted},
        )

    def _suppressed(self, row: OutboxRow, reason: str, customer_id: str) -> Finish:
        self.report.suppressed += 1
        self.report.by_provider[self.providers[row.channel].name]["suppressed"] += 1
        log.info("not sent (%s): %s", reason, row.describe())
        return Finish(row, "suppressed", self.wall(), customer_id, error=reason, error_code=reason)

    def _finish(self, finishes: Sequence[Finish]) -> None:
        lost = finish(self.engine, finishes, worker_id=self.worker_id)
        self.report.claims_lost += len(lost)
