"""Conditions shared by segments, branch arms, triggers and waits.

A condition is a mapping whose first key says its kind::

    all: [...]            any: [...]            not: {...}
    attribute: tier, in: [gold, silver]
    event: product.viewed, where: {category: skincare}, within: 7d, at_least: 2
    segment: vip          consent: email         reachable: sms
    purchases: {within: 365d, count: {gte: 3}, total: {gte: 100}}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

from omni_journey.spec.durations import Duration

__all__ = [
    "CHANNELS",
    "CONDITION_KINDS",
    "STANDARD_EVENTS",
    "AllCondition",
    "AnyCondition",
    "AttributeCondition",
    "Channel",
    "Comparison",
    "Condition",
    "ConsentCondition",
    "EventCondition",
    "NotCondition",
    "PropertyFilters",
    "PurchasesCondition",
    "Range",
    "ReachableCondition",
    "Scalar",
    "SegmentCondition",
    "SpecModel",
]

Channel = Literal["email", "sms", "push", "whatsapp"]
CHANNELS: tuple[str, ...] = ("email", "sms", "push", "whatsapp")
Scalar = Union[str, int, float, bool, None]
KEY_PATTERN = r"^[a-z][a-z0-9_]*$"
EVENT_PATTERN = r"^[A-Za-z][A-Za-z0-9_.:-]*$"
Key = Annotated[str, Field(pattern=KEY_PATTERN, max_length=64)]
EventName = Annotated[str, Field(pattern=EVENT_PATTERN, max_length=128)]

ORDER_COMPLETED = "order.completed"  # what RFM, purchase cycles and goals count as an order

# The event names of the contract: what shops send and what omni-journey emits itself.
# A journey may also use a name some journey is triggered by, or one listed in the
# project's events.yaml.
STANDARD_EVENTS: frozenset[str] = frozenset(
    {
        "product.viewed",
        "product.added",
        "cart.viewed",
        "checkout.started",
        "order.completed",
        "product.back_in_stock",
        "product.price_dropped",
        "message.sent",
        "message.delivered",
        "message.opened",
        "message.clicked",
        "message.bounced",
        "message.complained",
        "message.unsubscribed",
        "message.resubscribed",
        "message.replied",
        "purchase_cycle.due",
        "journey.entered",
        "journey.exited",
        "journey.converted",
    }
)


class SpecModel(BaseModel):
    """Base of every spec model: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Comparison(SpecModel):
    """Compare a value: any of the keys, all must hold."""

    eq: Scalar = None
    ne: Scalar = None
    in_: tuple[Scalar, ...] | None = Field(default=None, alias="in")
    not_in: tuple[Scalar, ...] | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    exists: bool | None = None
    contains: str | None = None


# property -> value (equality) or a Comparison
PropertyFilters = dict[str, Comparison | Scalar | tuple[Scalar, ...]]


class Range(SpecModel):
    """A numeric range: ``{gte: 3}``, ``{gt: 0, lte: 100}``."""

    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    eq: float | None = None


class AttributeCondition(SpecModel):
    """A profile attribute compared (``attribute: tier, in: [gold]``)."""

    attribute: Annotated[str, Field(min_length=1, max_length=128)]
    equals: Scalar = None
    not_equals: Scalar = None
    in_: tuple[Scalar, ...] | None = Field(default=None, alias="in")
    not_in: tuple[Scalar, ...] | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _has_test(self) -> AttributeCondition:
        tests = ("equals", "not_equals", "in_", "not_in", "gt", "gte", "lt", "lte", "exists")
        if all(getattr(self, name) is None for name in tests):
            raise PydanticCustomError(
                "missing-field",
                "needs a test: one of equals, not_equals, in, not_in, gt, gte, lt, lte, exists",
                {"hint": "add a test, for example equals: gold, or in: [gold, silver]"},
            )
        return self


class EventCondition(SpecModel):
    """The customer did an event (``at_least`` times, ``within`` a window)."""

    event: EventName
    where: PropertyFilters = Field(default_factory=dict)
    within: Duration | None = None
    at_least: Annotated[int, Field(ge=1)] = 1
    at_most: Annotated[int, Field(ge=0)] | None = None


class SegmentCondition(SpecModel):
    """Membership of another segment."""

    segment: Key


class ConsentCondition(SpecModel):
    """Consent given on a channel."""

    consent: Channel


class ReachableCondition(SpecModel):
    """An address or token, consent, and no suppression on a channel."""

    reachable: Channel


class PurchaseMeasures(SpecModel):
    """RFM: recency, frequency and monetary value of ``order.completed`` events."""

    within: Duration | None = Field(default=None, description="Window for count and total.")
    last_within: Duration | None = Field(default=None, description="Recency: bought within.")
    none_within: Duration | None = Field(default=None, description="Recency: not bought within.")
    count: Range | None = None
    total: Range | None = None


class PurchasesCondition(SpecModel):
    purchases: PurchaseMeasures


class AllCondition(SpecModel):
    all: Annotated[tuple[Condition, ...], Field(min_length=1)]


class AnyCondition(SpecModel):
    any: Annotated[tuple[Condition, ...], Field(min_length=1)]


class NotCondition(SpecModel):
    not_: Condition = Field(alias="not")


CONDITION_KINDS: dict[str, type[SpecModel]] = {
    "all": AllCondition,
    "any": AnyCondition,
    "not": NotCondition,
    "attribute": AttributeCondition,
    "event": EventCondition,
    "segment": SegmentCondition,
    "consent": ConsentCondition,
    "reachable": ReachableCondition,
    "purchases": PurchasesCondition,
}


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, SpecModel):
        for kind, model in CONDITION_KINDS.items():
            if isinstance(value, model):
                return f"cond:{kind}"
        return None
    if isinstance(value, dict):
        for kind in CONDITION_KINDS:
            if kind in value:
                return f"cond:{kind}"
    return None


Condition = Annotated[
    Annotated[AllCondition, Tag("cond:all")]
    | Annotated[AnyCondition, Tag("cond:any")]
    | Annotated[NotCondition, Tag("cond:not")]
    | Annotated[AttributeCondition, Tag("cond:attribute")]
    | Annotated[EventCondition, Tag("cond:event")]
    | Annotated[SegmentCondition, Tag("cond:segment")]
    | Annotated[ConsentCondition, Tag("cond:consent")]
    | Annotated[ReachableCondition, Tag("cond:reachable")]
    | Annotated[PurchasesCondition, Tag("cond:purchases")],
    Discriminator(
        _condition_kind,
        custom_error_type="unknown-condition",
        custom_error_message="expected a condition: one of " + ", ".join(CONDITION_KINDS),
    ),
]

for _model in (AllCondition, AnyCondition, NotCondition):
    _model.model_rebuild()
