"""How a claimed row ends one pass, decided once the provider (or the checks before it)
answered: sent, retried later with backoff, failed, suppressed, or put back while its
provider is paused. Each decision is counted in the pass's :class:`DispatchReport` and
returned as a :class:`~omni_journey.delivery.outbox.Finish` for the outbox to write.

Kept apart from the dispatcher's loop so that the retry and failure rules (what counts
as an attempt, when a transient error becomes final) read in one place. Every claimed
row's attempt is counted before it is rendered
(:func:`~omni_journey.delivery.outbox.start_attempts`); an outcome that was no attempt
(suppressed, unreachable, put back while paused) takes it back (``attempts_delta=-1``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from omni_journey.delivery.base import (
    AddressRejectedError,
    DeliveryInDoubtError,
    OutgoingMessage,
    ProviderPausedError,
    RetryLaterError,
    SendResult,
)
from omni_journey.delivery.dispatch_report import DispatchReport
from omni_journey.delivery.outbox import Finish, OutboxRow
from omni_journey.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from omni_journey.settings import Settings

__all__ = ["Outcomes"]

log = logging.getLogger("omni_journey.delivery")


class Outcomes:
    """The outcome rules of one pass; ``paused_until`` is when each paused provider may
    be used again."""

    def __init__(
        self, settings: Settings, report: DispatchReport, wall: Callable[[], datetime]
    ) -> None:
        self.settings = settings
        self.report = report
        self.wall = wall
        self.paused_until: dict[str, datetime] = {}

    def after_send(
        self,
        provider: str,
        row: OutboxRow,
        message: OutgoingMessage,
        result: SendResult,
        *,
        idempotent: bool = False,
    ) -> Finish:
        """The provider's answer for one message (``idempotent``: the provider's)."""
        at = self.wall()
        attempts = row.attempts + 1
        stats = self.report.by_provider[provider]
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
                provider=provider,
                provider_message_id=result.provider_message_id,
                event="message.sent",
                extra={"attempts": attempts},
            )
        if isinstance(error, ProviderPausedError):
            return self._paused(provider, row, message, error, at)
        if (
            isinstance(error, DeliveryInDoubtError)
            and not idempotent
            and self.settings.dispatch_in_doubt == "fail"
        ):  # no answer from a provider without idempotency: never risk a second send
            self.report.in_doubt += 1
            return self.fail(
                row,
                PermanentDeliveryError(provider, "in_doubt", f"no answer ({error.code})"),
                customer_id=message.customer_id,
                provider=provider,
                in_doubt=True,
            )
        if isinstance(error, TransientDeliveryError):
            return self.retry(row, error, customer_id=message.customer_id, provider=provider)
        finish_ = self.fail(row, error, customer_id=message.customer_id, provider=provider)
        if isinstance(error, AddressRejectedError):
            finish_.suppress = (row.channel, message.to, error.code)
            if row.channel == "push":
                finish_.prune_push_token = message.to
        return finish_

    def _paused(
        self,
        provider: str,
        row: OutboxRow,
        message: OutgoingMessage,
        error: ProviderPausedError,
        at: datetime,
    ) -> Finish:
        """The provider refuses everything for a while: back to pending, no attempt."""
        until = at + error.retry_after
        before = self.paused_until.get(provider)
        self.paused_until[provider] = max(until, before or until)
        self.report.paused[provider] = error.code
        self.report.deferred += 1
        self.report.by_provider[provider]["deferred"] += 1
        self.report.errors[f"{error.provider}:{error.code}"] += 1
        if before is None:  # once a pass, not once for each message of the paused batch
            log.error("provider %s paused until %s: %s", provider, until.isoformat(), error)
        return Finish(
            row,
            "pending",
            at,
            message.customer_id,
            error=str(error),
            error_code=error.code,
            send_after=until,
            attempts_delta=-1,
            provider=provider,
        )

    def backoff(self, attempts: int) -> timedelta:
        base = self.settings.dispatch_backoff_seconds
        return timedelta(seconds=base * 2 ** min(max(attempts - 1, 0), 6))

    def retry(
        self,
        row: OutboxRow,
        error: DeliveryError,
        *,
        customer_id: str,
        provider: str | None = None,
    ) -> Finish:
        """Transient (a provider's answer, or a render that may work next time): back to
        pending later, or failed after the last attempt. The attempt counts (it was
        counted before rendering)."""
        attempts = row.attempts + 1
        if attempts >= self.settings.dispatch_max_attempts:
            return self.fail(
                row, error, customer_id=customer_id, provider=provider, counted=True,
                exhausted=True,
            )  # fmt: skip
        at = self.wall()
        delay = self.backoff(attempts)
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
            provider=provider,
        )

    def fail(
        self,
        row: OutboxRow,
        error: DeliveryError,
        *,
        customer_id: str,
        provider: str | None = None,
        counted: bool = False,
        exhausted: bool = False,
        in_doubt: bool = False,
    ) -> Finish:
        """Failed for good. ``counted``: the attempt counts although no provider was
        called (a render error); a failure after a provider call (``provider``) always
        counts, any other (unreachable, unknown customer, in doubt) takes it back."""
        self.report.failed += 1
        self.report.errors[f"{error.provider}:{error.code}"] += 1
        self.report.by_provider[provider or error.provider]["failed"] += 1
        log.warning("failed %s: %s", row.describe(), error)
        counts = counted or provider is not None
        attempts = row.attempts + (1 if counts else 0)
        return Finish(
            row,
            "failed",
            self.wall(),
            customer_id,
            error=str(error),
            error_code=error.code,
            attempts_delta=0 if counts else -1,
            # in doubt: the provider that may have sent it, for the list of such messages
            provider=provider or (error.provider if in_doubt else None),
            event="message.failed",
            keep_in_flight=in_doubt,
            extra={"attempts": attempts, "transient": error.transient, "exhausted": exhausted},
        )

    def suppressed(self, row: OutboxRow, reason: str, customer_id: str, provider: str) -> Finish:
        self.report.suppressed += 1
        self.report.by_provider[provider]["suppressed"] += 1
        log.info("not sent (%s): %s", reason, row.describe())
        return Finish(
            row,
            "suppressed",
            self.wall(),
            customer_id,
            error=reason,
            error_code=reason,
            attempts_delta=-1,
        )
