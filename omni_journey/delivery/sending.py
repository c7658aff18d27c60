"""The dispatcher's provider calls, with the "in flight" and result commits around them.

An idempotent provider (the file outbox, webhooks) gets chunks of up to its
``max_batch``: one "in flight" commit, one ``send_batch`` call, one commit of the
results, because a message in doubt is simply sent again. A provider that takes no
idempotency key (SES, SMS, FCM, WhatsApp) gets one message per call, each committed "in
flight" right before its own call and its result right after it, at most
``OMNI_SEND_CONCURRENCY`` calls at once: a sender killed mid-call leaves in doubt only
the messages whose call was under way, not a whole batch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import Engine

from omni_journey.delivery.base import OutgoingMessage, Provider, SendResult
from omni_journey.delivery.dispatch_report import DispatchReport
from omni_journey.delivery.outbox import Finish, OutboxRow, finish, mark_in_flight, release
from omni_journey.delivery.outcomes import Outcomes
from omni_journey.delivery.ratelimit import SharedTokenBucket, TokenBucket
from omni_journey.errors import TransientDeliveryError
from omni_journey.settings import Settings

__all__ = ["Sending"]

log = logging.getLogger("omni_journey.delivery")

Items = Sequence[tuple[OutboxRow, OutgoingMessage]]


class Sending:
    """Mixed into the dispatcher's pass: the attributes below are the pass's."""

    engine: Engine
    settings: Settings
    worker_id: str
    ttl: timedelta
    buckets: dict[str, TokenBucket | SharedTokenBucket]
    report: DispatchReport
    outcomes: Outcomes
    wall: Callable[[], datetime]

    def _send(self, provider: Provider, items: Items, claimed_until: datetime) -> None:
        if provider.idempotent:
            self._send_chunks(provider, items, claimed_until)
        else:
            self._send_each(provider, items, claimed_until)

    def _chunk_size(self, provider: Provider) -> int:
        size = max(1, provider.max_batch)
        rate = self.buckets[provider.name].rate
        if rate:  # a chunk's wait for the rate limit stays well inside the claim
            size = min(size, max(1, int(rate * self.ttl.total_seconds() / 4)))
        return size

    def _put_back(self, provider: Provider, items: Items, claimed_until: datetime) -> bool:
        """Put ``items`` back unsent if the provider is paused or the claim half gone."""
        ids = [row.id for row, _ in items]
        paused = self.outcomes.paused_until.get(provider.name)
        if paused is not None:
            release(self.engine, ids, worker_id=self.worker_id, send_after=paused)
            self.report.deferred += len(ids)
            self.report.by_provider[provider.name]["deferred"] += len(ids)
            return True
        if self.wall() >= claimed_until - self.ttl / 2:
            log.warning(
                "claim on %d %s messages half expired before sending: put back",
                len(ids),
                provider.name,
            )
            release(self.engine, ids, worker_id=self.worker_id)
            self.report.deferred += len(ids)
            return True
        return False

    def _send_chunks(self, provider: Provider, items: Items, claimed_until: datetime) -> None:
        size = self._chunk_size(provider)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        for index, chunk in enumerate(chunks):
            if self.outcomes.paused_until.get(provider.name) is not None:
                self._put_back(provider, chunk, claimed_until)
                continue
            self.buckets[provider.name].acquire(len(chunk))
            rest = [item for c in chunks[index:] for item in c]
            if self._put_back(provider, rest, claimed_until):
                return
            ids = [row.id for row, _ in chunk]
            held = mark_in_flight(
                self.engine, ids, worker_id=self.worker_id, at=self.wall(), count=False
            )
            sendable = [(row, m) for row, m in chunk if row.id in held]
            self.report.claims_lost += len(chunk) - len(sendable)
            if not sendable:
                continue
            results = self._call(provider, [m for _, m in sendable])
            self._finish(
                [
                    self.outcomes.after_send(
                        provider.name, row, m, results[row.id], idempotent=provider.idempotent
                    )
                    for row, m in sendable
                ]
            )

    def _send_each(self, provider: Provider, items: Items, claimed_until: datetime) -> None:
        """One message per provider call, each in flight on its own (see the module)."""
        concurrency = max(1, self.settings.send_concurrency)
        books = threading.Lock()  # the outbox writes and the pass's counters
        slots = threading.BoundedSemaphore(concurrency)
        pool = ThreadPoolExecutor(max_workers=concurrency) if concurrency > 1 else None
        futures: list[Future[None]] = []

        def one(row: OutboxRow, message: OutgoingMessage) -> None:
            try:
                with books:
                    at = self.wall()
                    held = mark_in_flight(
                        self.engine, [row.id], worker_id=self.worker_id, at=at, count=False
                    )
                    if not held:
                        self.report.claims_lost += 1
                        return
                result = self._call(provider, [message])[row.id]
                with books:
                    finish_ = self.outcomes.after_send(
                        provider.name, row, message, result, idempotent=provider.idempotent
                    )
                    self._finish([finish_])
            finally:
                slots.release()

        size = self._chunk_size(provider)  # paces the rate limit as for a batch
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        try:
            for index, chunk in enumerate(chunks):
                with books:
                    if self.outcomes.paused_until.get(provider.name) is not None:
                        self._put_back(provider, chunk, claimed_until)
                        continue
                self.buckets[provider.name].acquire(len(chunk))
                rest = [item for c in chunks[index:] for item in c]
                with books:
                    if self._put_back(provider, rest, claimed_until):
                        break
                for position, (row, message) in enumerate(chunk):
                    slots.acquire()
                    with books:
                        if self.outcomes.paused_until.get(provider.name) is not None:
                            slots.release()
                            self._put_back(provider, chunk[position:], claimed_until)
                            break
                    if pool is None:
                        one(row, message)
                    else:
                        futures.append(pool.submit(one, row, message))
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        for future in futures:
            future.result()  # an outbox write that failed: let the batch's task see it

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

    def _finish(self, finishes: Sequence[Finish]) -> None:
        lost = finish(self.engine, finishes, worker_id=self.worker_id)
        self.report.claims_lost += len(lost)
