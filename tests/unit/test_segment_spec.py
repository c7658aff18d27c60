"""The pure Segment Spec -> record mapping: every call type, names, ids and times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from omni_journey.collector.segment_protocol import (
    SEGMENT_EVENT_NAMES,
    MappedRecord,
    event_name,
    map_batch,
    map_message,
)
from omni_journey.errors import IngestError

RECEIVED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _map(message: dict[str, Any], call: str | None = None, **kwargs: Any) -> MappedRecord:
    return map_message(message, received_at=RECEIVED, call=call, **kwargs)


def test_track_becomes_an_event_with_ids_identities_and_time() -> None:
    mapped = _map(
        {
            "type": "track",
            "messageId": "m-1",
            "event": "Signed Up",
            "userId": "c-42",
            "anonymousId": "anon-1",
            "timestamp": "2026-05-01T10:00:00.123Z",
            "properties": {"plan": "pro"},
            "context": {
                "traits": {"email": "ana@example.com", "phone": "+4915112345678"},
                "device": {"token": "fcm-token-1"},
                "ip": "203.0.113.9",
            },
        }
    )
    assert mapped == MappedRecord(
        "event",
        {
            "id": "m-1",
            "name": "Signed Up",
            "customer_id": "c-42",
            "at": "2026-05-01T10:00:00.123Z",
            "properties": {"plan": "pro"},
            "identities": {
                "email": "ana@example.com",
                "phone": "+4915112345678",
                "push_token": "fcm-token-1",
                "anonymous_id": "anon-1",
            },
        },
    )


def test_anonymous_track_has_no_customer_id() -> None:
    record = _map({"event": "x", "anonymousId": "anon-1", "messageId": "m"}, call="track").record
    assert "customer_id" not in record
    assert record["identities"] == {"anonymous_id": "anon-1"}


def test_numeric_user_ids_become_strings() -> None:
    record = _map({"event": "x", "userId": 42, "messageId": 7}, call="track").record
    assert record["customer_id"] == "42"
    assert record["id"] == "7"


@pytest.mark.parametrize(
    ("segment", "ours"),
    [
        ("Product Viewed", "product.viewed"),
        ("Product Added", "product.added"),
        ("Cart Viewed", "cart.viewed"),
        ("Checkout Started", "checkout.started"),
        ("Order Completed", "order.completed"),
        ("Product List Viewed", "product_list.viewed"),
        ("order  completed", "order.completed"),
        ("Newsletter Signup", "Newsletter Signup"),
        ("product.viewed", "product.viewed"),
    ],
)
def test_ecommerce_names_map_and_others_pass_through(segment: str, ours: str) -> None:
    assert event_name(segment) == ours
    record = _map({"event": segment, "userId": "c", "messageId": "m"}, call="track").record
    assert record["name"] == ours


def test_every_mapped_name_is_dotted_snake_case() -> None:
    for ours in SEGMENT_EVENT_NAMES.values():
        noun, _, verb = ours.partition(".")
        assert noun and verb and ours == ours.lower() and " " not in ours


def test_product_viewed_gets_sku_from_product_id() -> None:
    record = _map(
        {
            "event": "Product Viewed",
            "userId": "c",
            "messageId": "m",
            "properties": {"product_id": "SERUM-30", "category": "skincare", "price": 24.0},
        },
        call="track",
    ).record
    assert record["properties"] == {
        "product_id": "SERUM-30",
        "sku": "SERUM-30",
        "category": "skincare",
        "price": 24.0,
    }


def test_order_completed_keeps_products_total_currency_and_order_id() -> None:
    record = _map(
        {
            "event": "Order Completed",
            "userId": "c",
            "messageId": "m",
            "properties": {
                "order_id": "o-1",
                "revenue": 42.5,
                "currency": "EUR",
                "products": [
                    {"product_id": 101, "category": "skincare", "price": 24.0, "quantity": 1},
                    {"sku": "CREAM-50", "product_id": 102, "category": "care", "price": 18.5},
                ],
            },
        },
        call="track",
    ).record
    props = record["properties"]
    assert record["name"] == "order.completed"
    assert (props["order_id"], props["total"], props["currency"]) == ("o-1", 42.5, "EUR")
    assert [
        (p["sku"], p["category"], p["price"], p.get("quantity")) for p in props["products"]
    ] == [
        ("101", "skincare", 24.0, 1),
        ("CREAM-50", "care", 18.5, None),
    ]


def test_order_total_wins_over_revenue() -> None:
    props = {"total": 50.0, "revenue": 42.0}
    record = _map(
        {"event": "Order Completed", "userId": "c", "messageId": "m", "properties": props},
        call="track",
    ).record
    assert record["properties"]["total"] == 50.0


def test_a_bad_products_list_is_rejected() -> None:
    with pytest.raises(IngestError) as caught:
        _map(
            {
                "event": "Order Completed",
                "userId": "c",
                "properties": {"products": ["SERUM-30"]},
            },
            call="track",
        )
    assert caught.value.reason == "invalid-products"


@pytest.mark.parametrize(("call", "name"), [("page", "page.viewed"), ("screen", "screen.viewed")])
def test_page_and_screen_are_viewed_events(call: str, name: str) -> None:
    record = _map(
        {
            "anonymousId": "anon-1",
            "messageId": "m",
            "name": "Home",
            "category": "Landing",
            "properties": {"path": "/"},
        },
        call=call,
    ).record
    assert record["name"] == name
    assert record["properties"] == {"path": "/", "name": "Home", "category": "Landing"}


def test_identify_becomes_a_profile() -> None:
    mapped = _map(
        {
            "type": "identify",
            "userId": "c-42",
            "anonymousId": "anon-1",
            "traits": {
                "email": "ana@example.com",
                "phone": "+4915112345678",
                "firstName": "Ana",
                "tier": "gold",
                "consent": {"email": True, "sms": False},
            },
            "context": {
                "timezone": "Europe/Berlin",
                "locale": "de-DE",
                "device": {"token": "fcm-token-1"},
            },
        }
    )
    assert mapped == MappedRecord(
        "profile",
        {
            "customer_id": "c-42",
            "anonymous_id": "anon-1",
            "email": "ana@example.com",
            "phone": "+4915112345678",
            "push_tokens": ["fcm-token-1"],
            "timezone": "Europe/Berlin",
            "locale": "de-DE",
            "consent": {"email": True, "sms": False},
            "attributes": {"first_name": "Ana", "tier": "gold"},
            "at": "2026-05-01T12:00:00+00:00",
        },
    )


def test_identify_time_orders_consent_statements() -> None:
    record = _map(
        {"userId": "c", "timestamp": "2026-04-30T08:00:00+02:00", "traits": {"consent": {}}},
        call="identify",
    ).record
    assert record["at"] == "2026-04-30T08:00:00+02:00"


def test_identity_values_are_left_for_ingestion_to_check() -> None:
    record = _map(
        {"userId": "c", "traits": {"email": "not an address", "consent": {"fax": "yes"}}},
        call="identify",
    ).record
    assert (record["email"], record["consent"]) == ("not an address", {"fax": "yes"})


def test_identify_traits_win_over_context_traits() -> None:
    record = _map(
        {
            "userId": "c",
            "traits": {"email": "new@example.com"},
            "context": {"traits": {"email": "old@example.com", "plan": "free"}},
        },
        call="identify",
    ).record
    assert record["email"] == "new@example.com"
    assert record["attributes"] == {"plan": "free"}


def test_alias_joins_previous_id_to_user_id() -> None:
    mapped = _map({"previousId": "anon-1", "userId": "c-42"}, call="alias")
    # an alias is the explicit request to merge (an identify never merges known customers)
    expected = {"customer_id": "c-42", "anonymous_id": "anon-1", "merge": True}
    assert mapped == MappedRecord("profile", expected)
    identify = _map({"anonymousId": "anon-1", "userId": "c-42"}, call="identify")
    assert "merge" not in identify.record


@pytest.mark.parametrize(
    ("call", "message", "reason"),
    [
        ("track", {"event": "x"}, "missing-user-id"),
        ("track", {"userId": "c"}, "missing-event"),
        ("track", {"userId": "c", "event": "  "}, "missing-event"),
        ("identify", {"traits": {"email": "a@example.com"}}, "missing-user-id"),
        ("alias", {"userId": "c"}, "missing-user-id"),
        ("track", {"userId": True, "event": "x"}, "invalid-id"),
        ("track", {"userId": "c", "event": "x", "properties": [1]}, "invalid-shape"),
        (None, {"userId": "c"}, "missing-type"),
        (None, {"type": "group", "userId": "c"}, "unsupported-type"),
    ],
)
def test_unmappable_messages_raise_a_stable_reason(
    call: str | None, message: dict[str, Any], reason: str
) -> None:
    with pytest.raises(IngestError) as caught:
        _map(message, call=call)
    assert caught.value.reason == reason
    assert "a@example.com" not in str(caught.value)


def test_missing_message_id_is_a_deterministic_content_hash() -> None:
    message = {"event": "x", "userId": "c", "timestamp": "2026-05-01T10:00:00Z"}
    first = _map({**message, "sentAt": "2026-05-01T10:00:01Z"}, call="track").record["id"]
    retried = _map({**message, "sentAt": "2026-05-01T10:05:00Z"}, call="track").record["id"]
    other = _map({**message, "userId": "d"}, call="track").record["id"]
    assert first == retried != other
    assert first.startswith("seg-")
    same_in_a_batch = map_batch({"batch": [{**message, "type": "track"}]}, received_at=RECEIVED)
    assert isinstance(same_in_a_batch[0], MappedRecord)
    assert same_in_a_batch[0].record["id"] == first


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        (
            {"timestamp": "2026-05-01T10:00:00+02:00", "originalTimestamp": "2026-05-01T09:00:00Z"},
            "2026-05-01T10:00:00+02:00",
        ),
        (
            {"originalTimestamp": "2026-05-01T09:00:00Z", "sentAt": "2026-05-01T09:30:00Z"},
            "2026-05-01T09:00:00Z",
        ),
        ({"sentAt": "2026-05-01T09:30:00Z"}, "2026-05-01T09:30:00Z"),
        ({}, "2026-05-01T12:00:00+00:00"),
    ],
)
def test_event_time_falls_back_timestamp_original_sent_received(
    times: dict[str, str], expected: str
) -> None:
    record = _map({"event": "x", "userId": "c", "messageId": "m", **times}, call="track").record
    assert record["at"] == expected


def test_batch_maps_each_item_and_keeps_bad_ones_as_errors() -> None:
    results = map_batch(
        {
            "sentAt": "2026-05-01T11:00:00Z",
            "context": {"timezone": "Europe/Berlin", "traits": {"email": "ana@example.com"}},
            "batch": [
                {"type": "track", "event": "Product Viewed", "anonymousId": "a", "messageId": "1"},
                "not an object",
                {"type": "identify", "userId": "c", "context": {"timezone": "UTC"}},
                {"type": "track", "userId": "c"},
            ],
        },
        received_at=RECEIVED,
    )
    first, second, third, fourth = results
    assert isinstance(first, MappedRecord)
    assert first.record["at"] == "2026-05-01T11:00:00Z"
    assert first.record["identities"]["email"] == "ana@example.com"
    assert isinstance(second, IngestError) and second.reason == "invalid-shape"
    assert isinstance(third, MappedRecord) and third.record["timezone"] == "UTC"
    assert isinstance(fourth, IngestError) and fourth.reason == "missing-event"


@pytest.mark.parametrize("payload", [{}, {"batch": {}}, {"batch": "x"}])
def test_a_batch_body_without_a_batch_list_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(IngestError) as caught:
        map_batch(payload, received_at=RECEIVED)
    assert caught.value.reason == "invalid-shape"


def test_mapping_does_not_change_its_input() -> None:
    message = {
        "event": "Order Completed",
        "userId": "c",
        "properties": {"products": [{"product_id": "p"}], "revenue": 1},
    }
    snapshot = repr(message)
    _map(message, call="track")
    assert repr(message) == snapshot
