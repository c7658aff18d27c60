"""The outbox dispatcher: claim due messages, re-check consent, render, send, record.

One pass (:func:`dispatch`) loops: claim a batch (``OMNI_DISPATCH_BATCH_SIZE``) -> count
the attempt (before rendering, so a sender that dies while rendering still counts it) ->
read recipients (consent, suppressions, tokens, WhatsApp window) -> decide per row
(suppressed / failed / render; a row already at ``OMNI_DISPATCH_MAX_ATTEMPTS`` fails with
``max-attempts``; each render under its budget of time and size, so one message's
template never holds up the others, and once slow renders have used half the claim the
rows not yet rendered go back) -> per provider (:mod:`omni_journey.delivery.sending`),
in chunks of its ``max_batch`` for an idempotent provider, one message a call otherwise:
wait for the rate limit, commit "in flight", call the provider's ``send_batch`` (a
provider that writes or flushes a whole batch at once does so before it returns), commit
the results (status, provider message id, attempts, error, ``message.sent`` /
``message.failed`` events, suppressions, pruned tokens; the rules are in
:mod:`omni_journey.delivery.outcomes`). The dispatcher decides nothing about journeys; it
sends what the outbox says, exactly once where the provider allows it (docs/operations.md,
"Providers and delivery", explains the one ambiguous window).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine

from omni_journey.delivery.base import Content, OutgoingMessage, Provider
from omni_journey.delivery.dispatch_report import DispatchReport
from omni_journey.delivery.outbox import Finish, OutboxRow, claim, release, start_attempts
from omni_journey.delivery.outcomes import Outcomes
from omni_journey.delivery.ratelimit import SharedTokenBucket, TokenBucket, bucket_for
from omni_journey.delivery.recipients import (
    WHATSAPP_WINDOW,
    Recipients,
    load_recipients,
)
from omni_journey.delivery.rendering import Renderer, render_failure
from omni_journey.delivery.sending import Sending
from omni_journey.errors import PermanentDeliveryError, TransientDeliveryError
from omni_journey.links import LinkSigner
from omni_journey.settings import Settings
from omni_journey.store.shards import ALL, Shard

# DispatchReport, Renderer and render_failure lived here; importable from here still.
__all__ = ["DispatchReport", "Renderer", "dispatch", "render_failure"]

log = logging.getLogger("omni_journey.delivery")


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
    rate_limiters: Mapping[str, TokenBucket | SharedTokenBucket] | None = None,
    shard: Shard = ALL,
) -> DispatchReport:
    """Send every due outbox message once (at most ``limit`` claimed; only those to
    ``shard``'s customers when given), and report.

    ``providers`` maps a channel (email, sms, push, whatsapp, webhook) to its provider;
    ``now`` is the pass's start, ``clock`` measures time since (rate limits, claim
    expiry) and ``sleep`` waits for the rate limit: tests pass fakes for both. The rate
    limits (``OMNI_RATE_LIMITS``) hold for every dispatcher of a PostgreSQL store
    together (:func:`~omni_journey.delivery.ratelimit.bucket_for`).
    """
    return _Pass(
        engine, providers, renderer, now, settings, worker_id, clock, sleep, rate_limiters
    ).run(limit, shard)


class _Pass(Sending):
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
        rate_limiters: Mapping[str, TokenBucket | SharedTokenBucket] | None,
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
        self.buckets: dict[str, TokenBucket | SharedTokenBucket] = dict(rate_limiters or {})
        for provider in providers.values():
            if provider.name not in self.buckets:
                self.buckets[provider.name] = bucket_for(
                    engine, provider.name, rates.get(provider.name), clock=clock, sleep=sleep
                )
        self.report = DispatchReport()
        self.outcomes = Outcomes(settings, self.report, self.wall)
        self.links = LinkSigner.from_settings(settings)

    def wall(self) -> datetime:
        return self.now + timedelta(seconds=max(0.0, self.clock() - self.started))

    def run(self, limit: int | None, shard: Shard = ALL) -> DispatchReport:
        remaining = limit
        while remaining is None or remaining > 0:
            size = self.settings.dispatch_batch_size
            if remaining is not None:
                size = min(size, remaining)
            at = self.wall()
            rows = claim(
                self.engine,
                worker_id=self.worker_id,
                now=at,
                until=at + self.ttl,
                limit=size,
                shard=shard,
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
        # a row taken over from a sender that died before its provider call may be what
        # killed it (a renderer that crashes the process): each such row goes alone, so
        # it counts its own attempts and never those of the rest of its batch
        fresh = [row for row in rows if not row.taken_over]
        if fresh:
            self._process_group(fresh, claimed_until)
        for row in rows:
            if row.taken_over:
                self._process_group([row], claimed_until)

    def _process_group(self, rows: Sequence[OutboxRow], claimed_until: datetime) -> None:
        start_attempts(self.engine, [row.id for row in rows], worker_id=self.worker_id)
        with self.engine.connect() as connection:
            recipients = load_recipients(
                connection,
                [r.customer_id for r in rows if r.channel != "webhook"],
                now=self.wall(),
            )
        finished: list[Finish] = []
        outgoing: dict[str, list[tuple[OutboxRow, OutgoingMessage]]] = defaultdict(list)
        for index, row in enumerate(rows):
            if self.wall() >= claimed_until - self.ttl / 2:
                # slow renders (each bounded by OMNI_RENDER_TIMEOUT_SECONDS) used half the
                # claim: what is prepared goes on, the rest goes back untouched
                rest = [r.id for r in rows[index:]]
                log.warning("claim half expired while rendering: %d messages put back", len(rest))
                release(self.engine, rest, worker_id=self.worker_id)
                self.report.deferred += len(rest)
                break
            try:
                prepared = self._prepare(row, recipients)
            except Exception as error:  # a bug in one row never stops the run
                log.exception("could not prepare %s", row.describe())
                prepared = self.outcomes.retry(
                    row,
                    TransientDeliveryError("dispatch", "prepare_error", type(error).__name__),
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
            return self.outcomes.fail(
                row,
                PermanentDeliveryError("dispatch", "no_provider", row.channel),
                customer_id=row.customer_id,
            )
        if row.in_doubt:
            self.report.in_doubt += 1
            if not provider.idempotent and self.settings.dispatch_in_doubt == "fail":
                log.error("in doubt, not resent (OMNI_DISPATCH_IN_DOUBT=fail): %s", row.describe())
                return self.outcomes.fail(
                    row,
                    PermanentDeliveryError(
                        provider.name, "in_doubt", "a sender crashed during the provider call"
                    ),
                    customer_id=row.customer_id,
                    in_doubt=True,
                )
        if row.attempts >= self.settings.dispatch_max_attempts:
            # every attempt so far died before it could record an outcome (a renderer or
            # a provider call that kills the process): no more
            log.error("attempts exhausted without an outcome: %s", row.describe())
            return self.outcomes.fail(
                row,
                PermanentDeliveryError(
                    provider.name if row.in_doubt else "dispatch",  # in doubt: who may have it
                    "max-attempts",
                    f"{row.attempts} attempts ended without an outcome (the sender died)",
                ),
                customer_id=row.customer_id,
                exhausted=True,
                in_doubt=row.in_doubt and not provider.idempotent,  # listed as such
            )
        if row.channel == "webhook":
            url = row.decision.get("url")
            if not isinstance(url, str) or not url:
                return self.outcomes.fail(
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
            return self.outcomes.fail(
                row,
                PermanentDeliveryError("dispatch", "unknown_customer"),
                customer_id=row.customer_id,
            )
        if not customer.consent.get(row.channel):
            return self._suppressed(row, "no_consent", customer.id)
        address = recipients.address(customer, row.channel)
        if not address:
            return self.outcomes.fail(
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
                return self.outcomes.retry(row, failure, customer_id=customer.id)
            return self.outcomes.fail(row, failure, customer_id=customer.id, counted=True)
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

    def _suppressed(self, row: OutboxRow, reason: str, customer_id: str) -> Finish:
        provider = self.providers[row.channel].name
        return self.outcomes.suppressed(row, reason, customer_id, provider)
