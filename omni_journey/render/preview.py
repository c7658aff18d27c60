"""The render context of a real customer from the store, for ``omni-journey preview``.

The trigger event is a sample one (the properties ``validate`` uses), or a stored
event given by id; recommendations are empty, as they are for a real send until a
recommender fills them. A merged customer previews as the profile it was merged into.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, select

from omni_journey.errors import OmniJourneyError
from omni_journey.identity.survivors import survivor_of
from omni_journey.render.context import SAMPLE_EVENT, RenderContext, customer_profile
from omni_journey.spec.diagnostics import quoted
from omni_journey.store.tables import Customer, Event

__all__ = ["PreviewError", "PreviewSubject", "load_preview_subject"]


class PreviewError(OmniJourneyError, LookupError):
    """A preview cannot start: ``reason`` is unknown-customer or unknown-event."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class PreviewSubject:
    """Whom a preview is for: the render context, and the address an email would go to."""

    context: RenderContext
    email: str | None
    merged_from: str | None = None  # the id asked for, when it was merged into another


def _customer(session: Session, customer_id: str) -> tuple[Customer, str | None]:
    """The customer to preview for ``customer_id`` (its survivor when merged), and the id
    it was merged from, if it was."""
    survivor = survivor_of(session.connection(), customer_id)
    customer = session.get(Customer, str(survivor.id)) if survivor is not None else None
    if customer is None:
        if session.get(Customer, customer_id) is not None:  # a merge chain that ends nowhere
            raise PreviewError(
                "unknown-customer",
                f"customer {quoted(customer_id)} was merged into a customer that does not exist",
            )
        raise PreviewError("unknown-customer", f"there is no customer {quoted(customer_id)}")
    return customer, (customer_id if customer.id != customer_id else None)


def load_preview_subject(
    engine: Engine,
    customer_id: str,
    *,
    event_id: str | None = None,
    locale: str | None = None,
) -> PreviewSubject:
    """The context to preview a message for ``customer_id`` with. ``locale`` overrides
    the customer's; ``event_id`` picks a stored event of theirs as the trigger.

    Raises :class:`PreviewError` for an unknown customer or event.
    """
    with Session(engine) as session:
        customer, merged_from = _customer(session, customer_id)
        properties = dict(SAMPLE_EVENT)
        if event_id is not None:
            event = session.exec(select(Event).where(Event.event_id == event_id)).first()
            if event is None or event.customer_id not in (customer.id, customer_id):
                raise PreviewError(
                    "unknown-event",
                    f"customer {quoted(customer_id)} has no event {quoted(event_id)}",
                )
            properties = dict(event.properties)
        profile = customer_profile(
            customer.id,
            customer.attributes,
            locale=locale or customer.locale,
            timezone=customer.timezone,
        )
        context = RenderContext(
            customer=profile,
            event=properties,
            journey={"key": "preview", "step": "preview"},
            recommendations=(),
        )
        return PreviewSubject(context=context, email=customer.email, merged_from=merged_from)
