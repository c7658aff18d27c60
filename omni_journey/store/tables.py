"""The store: SQLModel tables. Each table has one writer (docs/architecture.md lists them).

Customer keys are strings (the ``customer_id`` users send). Merged customers keep a
row with ``merged_into`` set, and their identities point at the survivor.
Every query the engine runs at scale has an index; the comments say which.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from omni_journey.store.types import JSONDict, UTCDateTime

__all__ = [
    "ChannelModelArtefact",
    "Consent",
    "ConsentChange",
    "Customer",
    "Enrollment",
    "Erasure",
    "Event",
    "Identity",
    "JourneyCursor",
    "JourneyLog",
    "JourneyShardCursor",
    "JourneyVersion",
    "Message",
    "ProviderRateLimit",
    "PurchaseCycle",
    "SegmentMembership",
    "SegmentState",
    "Suppression",
    "metadata",
]

metadata = SQLModel.metadata


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Customer(SQLModel, table=True):
    """One person: one profile, one history, whatever channel they use."""

    __tablename__ = "customers"

    id: str = Field(primary_key=True, max_length=128)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=20)
    timezone: str | None = Field(default=None, max_length=64)
    locale: str | None = Field(default=None, max_length=35)
    attributes: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONDict, nullable=False)
    )
    merged_into: str | None = Field(default=None, max_length=128, index=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Identity(SQLModel, table=True):
    """(kind, value) -> customer. Kinds: customer_id, email, phone, push_token,
    external_id, anonymous_id. A value belongs to exactly one customer."""

    __tablename__ = "identities"

    kind: str = Field(primary_key=True, max_length=16)
    value: str = Field(primary_key=True, max_length=512)
    customer_id: str = Field(max_length=128, index=True)  # merges re-point by customer
    created_at: datetime = _ts()


class Consent(SQLModel, table=True):
    """Consent per customer and channel; the latest statement wins."""

    __tablename__ = "consents"

    customer_id: str = Field(primary_key=True, max_length=128)
    channel: str = Field(primary_key=True, max_length=16)
    granted: bool
    source: str | None = Field(default=None, max_length=64)
    updated_at: datetime = _ts()


class ConsentChange(SQLModel, table=True):
    """Every change of a consent (writer: ``identity``, with ``consents``): the channel,
    the value before (``None``: never stated) and after, how (``source``) and when."""

    __tablename__ = "consent_changes"
    __table_args__ = (Index("ix_consent_changes_customer_at", "customer_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=128)
    channel: str = Field(max_length=16)
    previous: bool | None = None
    granted: bool
    source: str | None = Field(default=None, max_length=64)
    at: datetime = _ts()


class Erasure(SQLModel, table=True):
    """One erased customer (writer: ``privacy``), without personal data: the opaque
    ``id`` their rows now carry (one ``tombstones`` entry per id merged into them),
    what was removed (``counts``), and ``finished_at`` once the files are swept too."""

    __tablename__ = "erasures"

    id: str = Field(primary_key=True, max_length=64)
    tombstones: list[str] = Field(default_factory=list, sa_column=Column(JSONDict, nullable=False))
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONDict, nullable=False))
    erased_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)


class Suppression(SQLModel, table=True):
    """Addresses we must never send to (hard bounce, complaint, opt-out, pruned token)."""

    __tablename__ = "suppressions"

    channel: str = Field(primary_key=True, max_length=16)
    address: str = Field(primary_key=True, max_length=512)
    reason: str = Field(max_length=64)
    created_at: datetime = _ts()


class Event(SQLModel, table=True):
    """Append-only behavioural events; ``event_id`` makes ingestion idempotent."""

    __tablename__ = "events"
    __table_args__ = (
        # segments and branches: "did customer X do event N (since T)?"
        Index("ix_events_customer_name_at", "customer_id", "name", "at"),
        # enrollment: new events of a name in arrival order
        Index("ix_events_name_seq", "name", "seq"),
    )

    seq: int | None = Field(default=None, primary_key=True)  # arrival order, the cursor
    event_id: str = Field(max_length=255, sa_column_kwargs={"unique": True})
    name: str = Field(max_length=128)
    customer_id: str = Field(max_length=128)
    at: datetime = _ts()
    received_at: datetime = _ts()
    properties: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONDict, nullable=False)
    )


class JourneyVersion(SQLModel, table=True):
    """A published journey definition. Enrollments are pinned to one."""

    __tablename__ = "journey_versions"
    __table_args__ = (UniqueConstraint("journey_key", "spec_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    journey_key: str = Field(max_length=64, index=True)
    version: int
    spec_hash: str = Field(max_length=64)
    spec: dict[str, Any] = Field(sa_column=Column(JSONDict, nullable=False))
    published_at: datetime = _ts()
    retired_at: datetime | None = _ts(nullable=True)


class Enrollment(SQLModel, table=True):
    """One customer's place in one journey version."""

    __tablename__ = "enrollments"
    __table_args__ = (
        # at most one active enrollment per customer and journey
        Index(
            "uq_enrollments_active",
            "journey_key",
            "customer_id",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
        # the engine's hot query: due active enrollments, by time
        Index("ix_enrollments_due", "state", "wake_at"),
        # event delivery to waiting customers, and re-entry checks
        Index("ix_enrollments_customer", "customer_id", "journey_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    journey_key: str = Field(max_length=64)
    journey_version_id: int = Field(foreign_key="journey_versions.id")
    customer_id: str = Field(max_length=128)
    step_id: str | None = Field(default=None, max_length=64)
    state: str = Field(default="active", max_length=16)  # active | completed | exited
    wake_at: datetime | None = _ts(nullable=True)
    entered_at: datetime = _ts()
    updated_at: datetime = _ts()
    ended_at: datetime | None = _ts(nullable=True)
    end_reason: str | None = Field(default=None, max_length=128)
    holdout: bool = False
    trigger_event_id: str | None = Field(default=None, max_length=255)
    context: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONDict, nullable=False)
    )
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = _ts(nullable=True)


class Message(SQLModel, table=True):
    """The outbox: one row per send decision, unique by idempotency key.

    pending -> claimed -> sent | failed | suppressed. The decision log (eligible
    channels, scores, probabilities, propensity, policy and model version) rides along.
    """

    __tablename__ = "messages"
    __table_args__ = (
        # the dispatcher's hot query
        Index("ix_messages_dispatch", "status", "send_after"),
        # frequency caps and channel features: a customer's recent sends
        Index("ix_messages_customer_created", "customer_id", "created_at"),
        Index("ix_messages_enrollment", "enrollment_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=255, sa_column_kwargs={"unique": True})
    enrollment_id: int | None = Field(default=None)
    journey_key: str | None = Field(default=None, max_length=64)
    journey_version_id: int | None = None
    step_id: str | None = Field(default=None, max_length=64)
    customer_id: str = Field(max_length=128)
    channel: str = Field(max_length=16)
    message_key: str = Field(max_length=64)
    status: str = Field(default="pending", max_length=16)
    send_after: datetime = _ts()
    created_at: datetime = _ts()
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = _ts(nullable=True)
    attempts: int = 0
    # set (and committed) just before the provider call, cleared with its result: an
    # expired claim with this set is the one ambiguous case (see docs/operations.md)
    in_flight_since: datetime | None = _ts(nullable=True)
    sent_at: datetime | None = _ts(nullable=True)
    provider: str | None = Field(default=None, max_length=32)
    provider_message_id: str | None = Field(default=None, max_length=255, sa_type=String(255))
    error: str | None = Field(default=None, max_length=1024)
    decision: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONDict, nullable=False)
    )
    # what the message is rendered from, captured at decision time (the trigger event)
    render_context: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONDict, nullable=False, default=dict)
    )


class JourneyCursor(SQLModel, table=True):
    """How far each journey has read the event stream (events.seq)."""

    __tablename__ = "journey_cursors"

    journey_key: str = Field(primary_key=True, max_length=64)
    last_event_seq: int = 0
    last_scheduled_at: datetime | None = _ts(nullable=True)  # scheduled audiences
    updated_at: datetime = _ts()
    # shards the journey runs as; over 1, the cursors are journey_shard_cursors rows
    shards: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class JourneyShardCursor(SQLModel, table=True):
    """How far shard ``shard`` of ``shards`` of a journey has read the event stream (the
    events of its customers only), when the journey runs as more than one shard."""

    __tablename__ = "journey_shard_cursors"

    journey_key: str = Field(primary_key=True, max_length=64)
    shards: int = Field(primary_key=True)
    shard: int = Field(primary_key=True)
    last_event_seq: int = 0
    last_scheduled_at: datetime | None = _ts(nullable=True)
    updated_at: datetime = _ts()


class ProviderRateLimit(SQLModel, table=True):
    """A provider's token bucket, shared by all dispatchers (writer: delivery.ratelimit)."""

    __tablename__ = "provider_rate_limits"

    provider: str = Field(primary_key=True, max_length=32)
    tokens: float
    stamp: float


class JourneyLog(SQLModel, table=True):
    """The decision record (writer: runner.writes), one row per decision: entered,
    step, sent, skipped (at step ``(entry)``: refused), deferred, exited, converted,
    with its ``reason`` and, in ``detail``, the inputs that decided it. Funnels,
    simulate, reports and one customer's history read it."""

    __tablename__ = "journey_log"
    __table_args__ = (
        Index("ix_journey_log_journey_kind_at", "journey_key", "kind", "at"),
        Index("ix_journey_log_enrollment", "enrollment_id"),
        Index("ix_journey_log_customer_journey_at", "customer_id", "journey_key", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    journey_key: str = Field(max_length=64)
    journey_version_id: int | None = None
    enrollment_id: int | None = None
    customer_id: str = Field(max_length=128)
    step_id: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=128)
    holdout: bool = False
    event_id: str | None = Field(default=None, max_length=255)
    message_id: int | None = None
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONDict, nullable=True))
    at: datetime = _ts()


class SegmentMembership(SQLModel, table=True):
    """Who is in each segment as of its last evaluation (writer: segments.evaluate)."""

    __tablename__ = "segment_memberships"
    __table_args__ = (
        # branch and entry checks from the customer's side: "which segments is X in?"
        Index("ix_segment_memberships_customer", "customer_id"),
    )

    segment_key: str = Field(primary_key=True, max_length=64)
    customer_id: str = Field(primary_key=True, max_length=128)
    entered_at: datetime = _ts()


class SegmentState(SQLModel, table=True):
    """One row per evaluated segment: when, at which spec, how many members.

    The row is locked (``FOR UPDATE``) while a segment is evaluated, so two evaluators
    never compute the same delta twice.
    """

    __tablename__ = "segment_states"

    segment_key: str = Field(primary_key=True, max_length=64)
    spec_hash: str = Field(max_length=64)
    size: int = 0
    evaluated_at: datetime = _ts()


class PurchaseCycle(SQLModel, table=True):
    """The replenishment schedule of one customer in one product category
    (writer: segments.purchase_cycles).

    ``cycle`` counts purchase occasions so far; the ``purchase_cycle.due`` event of a
    cycle has a deterministic id, so re-runs never emit twice. ``status``: ``irregular``
    (silent), ``scheduled`` (waits for ``due_at``), ``due`` (emitted), ``expired`` (the
    window closed before a run could emit).
    """

    __tablename__ = "purchase_cycles"
    __table_args__ = (
        # the runner's hot query: scheduled cycles that have come due
        Index("ix_purchase_cycles_status_due", "status", "due_at"),
    )

    customer_id: str = Field(primary_key=True, max_length=128)
    category: str = Field(primary_key=True, max_length=128)
    cycle: int
    status: str = Field(max_length=16)
    intervals: int = 0
    last_purchase_at: datetime = _ts()
    predicted_at: datetime | None = _ts(nullable=True)
    window_start: datetime | None = _ts(nullable=True)
    window_end: datetime | None = _ts(nullable=True)
    due_at: datetime | None = _ts(nullable=True)
    p_value: float | None = None
    confidence: float | None = None
    cancelled: int = 0  # cycles superseded by a purchase before they fired
    event_id: str | None = Field(default=None, max_length=255)
    updated_at: datetime = _ts()


class ChannelModelArtefact(SQLModel, table=True):
    """A trained channel model (writer: channels.artefacts). The files live under
    ``<OMNI_HOME>/models/<path>``; ``sha256`` is the digest of the weights file, checked
    on load. The newest ``active`` row is the model in use; older ones are ``retired``."""

    __tablename__ = "channel_models"

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    kind: str = Field(max_length=32)
    feature_version: str = Field(max_length=64)
    path: str = Field(max_length=512)
    sha256: str = Field(max_length=64)
    status: str = Field(default="active", max_length=16, index=True)  # active | retired
    trained_at: datetime = _ts()
    data_from: datetime | None = _ts(nullable=True)
    data_until: datetime | None = _ts(nullable=True)
    metrics: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONDict, nullable=False)
    )
