"""Segment Spec messages -> omni-journey event and profile records. Pure: no I/O, no clock.

``track``, ``page`` and ``screen`` become events (``page.viewed``, ``screen.viewed``);
``identify`` and ``alias`` become profiles (``alias`` joins ``previousId`` to ``userId``,
and is the one call that may merge two customers known by their own ids).
Ids (``userId``, ``anonymousId``, ``previousId``, ``messageId``) are strings or whole
numbers, kept exactly as written; each field of a message nests at most ``MAX_DEPTH``
levels (:mod:`omni_journey.ingest.limits`).
A message that cannot be mapped raises :class:`~omni_journey.errors.IngestError` with a
stable, PII-free reason; :func:`map_batch` keeps those per item so the rest goes in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from omni_journey.errors import IngestError
from omni_journey.ingest.limits import check_depth

__all__ = [
    "CALL_TYPES",
    "SEGMENT_EVENT_NAMES",
    "MappedRecord",
    "event_name",
    "map_batch",
    "map_message",
]

CALL_TYPES = ("track", "identify", "page", "screen", "alias")

# Segment's e-commerce spec (v2) -> our names. Matched case-insensitively.
SEGMENT_EVENT_NAMES: Mapping[str, str] = {
    "products searched": "products.searched",
    "product list viewed": "product_list.viewed",
    "product list filtered": "product_list.filtered",
    "promotion viewed": "promotion.viewed",
    "promotion clicked": "promotion.clicked",
    "product clicked": "product.clicked",
    "product viewed": "product.viewed",
    "product added": "product.added",
    "product removed": "product.removed",
    "cart viewed": "cart.viewed",
    "checkout started": "checkout.started",
    "checkout step viewed": "checkout_step.viewed",
    "checkout step completed": "checkout_step.completed",
    "payment info entered": "payment_info.entered",
    "order updated": "order.updated",
    "order completed": "order.completed",
    "order refunded": "order.refunded",
    "order cancelled": "order.cancelled",
    "coupon entered": "coupon.entered",
    "coupon applied": "coupon.applied",
    "coupon denied": "coupon.denied",
    "coupon removed": "coupon.removed",
    "product added to wishlist": "product.added_to_wishlist",
    "product removed from wishlist": "product.removed_from_wishlist",
    "wishlist product added to cart": "wishlist_product.added_to_cart",
    "product shared": "product.shared",
    "cart shared": "cart.shared",
    "product reviewed": "product.reviewed",
}
_COMMERCE_NAMES = frozenset(SEGMENT_EVENT_NAMES.values())

# Segment's reserved traits written in camelCase -> our snake_case attribute names.
_TRAIT_NAMES = {"firstName": "first_name", "lastName": "last_name", "createdAt": "created_at"}
# Identify traits that become profile fields rather than attributes.
_PROFILE_TRAITS = frozenset({"email", "phone", "timezone", "locale", "consent"})
# Fields of the message that never make it into the content hash of a missing messageId:
# they change when a client retries the same message.
_VOLATILE = frozenset({"messageId", "sentAt", "receivedAt", "writeKey"})

Kind = Literal["event", "profile"]


@dataclass(frozen=True)
class MappedRecord:
    """One Segment message as the record ``ingest_events`` / ``ingest_profiles`` takes."""

    kind: Kind
    record: dict[str, Any]


def event_name(segment_name: str) -> str:
    """Our name for a Segment event name: e-commerce names map, the rest pass unchanged."""
    key = " ".join(segment_name.split()).lower()
    return SEGMENT_EVENT_NAMES.get(key, segment_name)


def map_batch(
    payload: Mapping[str, Any], *, received_at: datetime
) -> list[MappedRecord | IngestError]:
    """Map a ``/v1/batch`` body item by item; an unmappable item is its ``IngestError``.

    The batch's ``context`` applies to every item (the item's own keys win) and its
    ``sentAt`` stands in for items without a time. Raises ``IngestError`` only when the
    body itself has the wrong shape.
    """
    items = payload.get("batch")
    if not isinstance(items, list):
        raise IngestError("invalid-shape", "the body needs a 'batch' list of messages")
    shared_context = _object(payload, "context")
    results: list[MappedRecord | IngestError] = []
    for item in items:
        try:
            if not isinstance(item, Mapping):
                raise IngestError("invalid-shape", "a batch item is not a JSON object")
            if shared_context:
                item = {**item, "context": {**shared_context, **_object(item, "context")}}
            results.append(
                map_message(item, received_at=received_at, sent_at=payload.get("sentAt"))
            )
        except IngestError as error:
            results.append(error)
    return results


def map_message(
    message: Mapping[str, Any],
    *,
    received_at: datetime,
    call: str | None = None,
    sent_at: Any = None,
) -> MappedRecord:
    """Map one Segment message. ``call`` is the endpoint's type (``/v1/track`` -> "track");
    without it the message's own ``type`` decides, as in a batch."""
    # before anything reads it: the content hash of a message without a messageId
    # walks all of it, and a message nested a thousand levels deep would overflow it
    for value in message.values():
        check_depth(value, "a field of the message")
    kind = call or message.get("type")
    if kind is None:
        raise IngestError("missing-type", f"expected 'type': one of {', '.join(CALL_TYPES)}")
    if kind not in CALL_TYPES:
        raise IngestError(
            "unsupported-type", f"type {str(kind)[:32]!r}; expected one of {', '.join(CALL_TYPES)}"
        )
    if kind == "identify":
        return MappedRecord("profile", _profile(message, received_at, sent_at))
    if kind == "alias":
        return MappedRecord("profile", _alias(message))
    return MappedRecord("event", _event(message, kind, received_at, sent_at))


def _event(
    message: Mapping[str, Any], kind: str, received_at: datetime, sent_at: Any
) -> dict[str, Any]:
    user_id, anonymous_id = _user_ids(message)
    context = _object(message, "context")
    properties = dict(_object(message, "properties"))
    if kind == "track":
        raw_name = message.get("event")
        if not isinstance(raw_name, str) or not raw_name.strip():
            raise IngestError("missing-event", "a track call needs a non-empty 'event' name")
        name = event_name(raw_name.strip())
    else:
        name = f"{kind}.viewed"
        for key in ("name", "category"):
            value = message.get(key)
            if value is not None:
                properties.setdefault(key, value)
    if name in _COMMERCE_NAMES:
        properties = _commerce_properties(name, properties)
    identities = _identities(_object(context, "traits", "context.traits"), context)
    if anonymous_id is not None:
        identities["anonymous_id"] = anonymous_id
    record: dict[str, Any] = {
        "id": _message_id(message, kind),
        "name": name,
        "at": _event_time(message, received_at, sent_at),
        "properties": properties,
        "identities": identities,
    }
    if user_id is not None:
        record["customer_id"] = user_id
    return record


def _profile(message: Mapping[str, Any], received_at: datetime, sent_at: Any) -> dict[str, Any]:
    """An identify's profile. Values are passed as given: ingestion normalises and
    checks them (email, phone, time zone, consent channels)."""
    user_id, anonymous_id = _user_ids(message)
    context = _object(message, "context")
    traits = {**_object(context, "traits", "context.traits"), **_object(message, "traits")}
    profile: dict[str, Any] = {}
    if user_id is not None:
        profile["customer_id"] = user_id
    if anonymous_id is not None:
        profile["anonymous_id"] = anonymous_id
    identities = _identities(traits, context)
    for key in ("email", "phone"):
        if key in identities:
            profile[key] = identities[key]
    if "push_token" in identities:
        profile["push_tokens"] = [identities["push_token"]]
    for key in ("timezone", "locale"):
        value = context.get(key, traits.get(key))
        if value is not None:
            profile[key] = value
    if traits.get("consent") is not None:
        profile["consent"] = traits["consent"]
    attributes: dict[str, Any] = {}
    for key, value in traits.items():
        if key not in _PROFILE_TRAITS:
            attributes.setdefault(_TRAIT_NAMES.get(key, key), value)
    profile["attributes"] = attributes
    # When the person said it: consent statements are ordered by it.
    profile["at"] = _event_time(message, received_at, sent_at)
    return profile


def _alias(message: Mapping[str, Any]) -> dict[str, Any]:
    user_id = _optional_id(message, "userId")
    previous_id = _optional_id(message, "previousId")
    if user_id is None or previous_id is None:
        raise IngestError("missing-user-id", "an alias call needs both 'userId' and 'previousId'")
    # an alias is the explicit request to join two identities: it may merge two
    # customers known by their own ids (an identify never does)
    return {"customer_id": user_id, "anonymous_id": previous_id, "merge": True}


def _user_ids(message: Mapping[str, Any]) -> tuple[str | None, str | None]:
    user_id = _optional_id(message, "userId")
    anonymous_id = _optional_id(message, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise IngestError("missing-user-id", "a message needs a 'userId' or an 'anonymousId'")
    return user_id, anonymous_id


def _identities(traits: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    identities: dict[str, Any] = {}
    for key in ("email", "phone"):
        if traits.get(key) not in (None, ""):
            identities[key] = traits[key]
    token = _object(context, "device", "context.device").get("token")
    if token not in (None, ""):
        identities["push_token"] = token
    return identities


def _commerce_properties(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """Segment product fields -> ours: ``sku`` falls back to ``product_id``; an order's
    ``total`` falls back to ``revenue``, then ``value``; every other field stays."""
    properties = _with_sku(properties)
    products = properties.get("products")
    if products is not None:
        if not isinstance(products, list) or not all(isinstance(p, Mapping) for p in products):
            raise IngestError("invalid-products", "properties.products must be a list of objects")
        properties["products"] = [_with_sku(dict(product)) for product in products]
    if name.startswith("order.") and properties.get("total") is None:
        for fallback in ("revenue", "value"):
            if properties.get(fallback) is not None:
                properties["total"] = properties[fallback]
                break
    return properties


def _with_sku(product: dict[str, Any]) -> dict[str, Any]:
    if product.get("sku") in (None, "") and product.get("product_id") not in (None, ""):
        product["sku"] = str(product["product_id"])
    return product


def _event_time(message: Mapping[str, Any], received_at: datetime, sent_at: Any) -> Any:
    """The first of ``timestamp``, ``originalTimestamp``, ``sentAt`` that is there, as
    given (ingestion checks it is ISO 8601 with a zone), else the time of receipt."""
    for key in ("timestamp", "originalTimestamp"):
        if message.get(key) is not None:
            return message[key]
    given = message.get("sentAt", sent_at)
    return received_at.isoformat() if given is None else given


def _message_id(message: Mapping[str, Any], kind: str) -> str:
    """``messageId``, or a deterministic id from the message's content, so a retried
    message without one is still stored once."""
    given = _optional_id(message, "messageId")
    if given is not None:
        return given
    content = {k: v for k, v in message.items() if k not in _VOLATILE}
    content["type"] = kind
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return "seg-" + hashlib.sha256(canonical.encode()).hexdigest()


def _optional_id(message: Mapping[str, Any], key: str) -> str | None:
    value = message.get(key)
    if value is None:
        return None
    if isinstance(value, float):  # 1.5, 1e20, or an integer read inexactly: never rounded
        raise IngestError("invalid-id", f"{key} is a decimal number; send it as a string")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise IngestError("invalid-id", f"{key} must be a string or a whole number")
    text = str(value).strip()
    return text or None


def _object(parent: Mapping[str, Any], key: str, where: str | None = None) -> Mapping[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise IngestError("invalid-shape", f"{where or key} must be a JSON object")
    return value
