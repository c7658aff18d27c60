"""What a template sees: the render context, built from a profile, an event and a journey.

``customer`` is the profile: ``id``, ``locale``, ``timezone`` and every attribute at the
top level (``customer.first_name``). Identities (email, phone, push tokens) are not in
it, nor any attribute whose name says it is a secret (``*token*``, ``*secret*``,
``*password*``, ``*api_key*``). ``event`` is the trigger event's properties; ``journey``
has ``key`` and ``step``; ``recommendations`` is a list (maybe empty). ``links`` and
``message`` are added by the renderer, per channel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

__all__ = [
    "CONTEXT_NAMES",
    "RenderContext",
    "customer_profile",
    "sample_context",
]

CONTEXT_NAMES: Final = frozenset(
    {"customer", "event", "journey", "recommendations", "links", "message"}
)
_SECRET_ATTRIBUTE = re.compile(r"(?i)token|secret|passw(or)?d|api_?key|credential")

SAMPLE_ATTRIBUTES: Final[Mapping[str, Any]] = {
    "first_name": "Ana",
    "last_name": "Silva",
    "tier": "gold",
    "points": 1250,
    "city": "Berlin",
}
SAMPLE_EVENT: Final[Mapping[str, Any]] = {
    "sku": "SERUM-30",
    "name": "Hydrating Serum 30 ml",
    "product_name": "Hydrating Serum 30 ml",
    "category": "skincare",
    "brand": "Lumen",
    "price": 24.0,
    "old_price": 29.0,
    "currency": "EUR",
    "quantity": 1,
    "url": "https://shop.example.com/p/serum-30",
    "image_url": "https://shop.example.com/img/serum-30.jpg",
    "order_id": "o-1001",
    "total": 48.0,
    "products": [
        {
            "sku": "SERUM-30",
            "name": "Hydrating Serum 30 ml",
            "category": "skincare",
            "price": 24.0,
            "quantity": 2,
        },
    ],
}
SAMPLE_RECOMMENDATIONS: Final[Sequence[Mapping[str, Any]]] = (
    {
        "sku": "CREAM-50",
        "name": "Night Cream 50 ml",
        "price": 32.0,
        "currency": "EUR",
        "url": "https://shop.example.com/p/cream-50",
        "image_url": "https://shop.example.com/img/cream-50.jpg",
    },
    {
        "sku": "MASK-01",
        "name": "Clay Mask",
        "price": 18.5,
        "currency": "EUR",
        "url": "https://shop.example.com/p/mask-01",
        "image_url": "https://shop.example.com/img/mask-01.jpg",
    },
)


@dataclass(frozen=True)
class RenderContext:
    """Everything a message is rendered from, for one customer. ``customer["id"]`` is
    required: links are signed for it."""

    customer: Mapping[str, Any]
    event: Mapping[str, Any] = field(default_factory=dict)
    journey: Mapping[str, Any] = field(default_factory=dict)
    recommendations: Sequence[Mapping[str, Any]] = ()

    @property
    def customer_id(self) -> str:
        return str(self.customer["id"])

    @property
    def locale(self) -> str | None:
        value = self.customer.get("locale")
        return str(value) if value else None

    def with_locale(self, locale: str | None) -> RenderContext:
        return replace(self, customer={**self.customer, "locale": locale})

    def variables(self) -> dict[str, Any]:
        """The template variables (without ``links`` and ``message``)."""
        return {
            "customer": dict(self.customer),
            "event": dict(self.event),
            "journey": {"key": None, "step": None, **self.journey},
            "recommendations": [dict(item) for item in self.recommendations],
        }


def customer_profile(
    customer_id: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    locale: str | None = None,
    timezone: str | None = None,
) -> dict[str, Any]:
    """The ``customer`` a template sees; the core fields win over same-named attributes."""
    profile = {
        name: value
        for name, value in (attributes or {}).items()
        if isinstance(name, str) and not _SECRET_ATTRIBUTE.search(name)
    }
    profile.update(id=customer_id, locale=locale, timezone=timezone)
    return profile


def sample_context(
    locale: str | None = None,
    *,
    attributes: bool = True,
    recommendations: bool = True,
) -> RenderContext:
    """The context ``validate`` renders every message with. ``attributes=False`` gives a
    customer with only the core fields; ``recommendations=False`` an empty list."""
    return RenderContext(
        customer=customer_profile(
            "c-sample",
            SAMPLE_ATTRIBUTES if attributes else None,
            locale=locale,
            timezone="Europe/Berlin",
        ),
        event=SAMPLE_EVENT,
        journey={"key": "sample_journey", "step": "send"},
        recommendations=SAMPLE_RECOMMENDATIONS if recommendations else (),
    )
