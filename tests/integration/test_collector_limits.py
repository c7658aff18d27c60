"""The collector on a real uvicorn server against real SQLite and PostgreSQL: timestamps
outside the accepted range, deeply nested messages, numeric ids and identity
conflicts are refused item by item (400), the good items of a batch stored, and 5xx
kept for a store that is really down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from omni_journey.settings import Settings
from omni_journey.store.tables import metadata
from tests.integration.test_collector import WRITE_KEY, serving

customers = metadata.tables["customers"]
events = metadata.tables["events"]
identities = metadata.tables["identities"]

OVERFLOWING = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"]
OUT_OF_RANGE = [*OVERFLOWING, "1899-12-31T23:59:59Z", "3000-01-01T00:00:00Z"]


class Client:
    def __init__(self, url: str, engine: Engine, http: httpx.Client) -> None:
        self.url, self.engine, self.http = url, engine, http

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.http.post(f"{self.url}{path}", json=body, auth=(WRITE_KEY, ""))

    def post_raw(self, path: str, content: bytes) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        return self.http.post(
            f"{self.url}{path}", content=content, headers=headers, auth=(WRITE_KEY, "")
        )

    def rows(self, table: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(table)))


@pytest.fixture
def client(store: Engine) -> Iterator[Client]:
    settings = Settings(write_keys=WRITE_KEY, max_body_bytes=64 * 1024)
    with serving(store, settings) as url, httpx.Client(timeout=30) as http:
        yield Client(url, store, http)


def _track(message_id: str | None, **fields: Any) -> dict[str, Any]:
    message = {
        "type": "track",
        "event": "Product Viewed",
        "userId": "c-1",
        "timestamp": "2026-05-01T10:00:00Z",
        "properties": {"sku": "SERUM-30"},
        **fields,
    }
    if message_id is not None:
        message["messageId"] = message_id
    return message


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


# --- timestamps ------------------------------------------------------------------------


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_a_track_with_a_timestamp_out_of_range_is_400(client: Client, when: str) -> None:
    response = client.post("/v1/track", _track("m-1", timestamp=when))
    assert response.status_code == 400, response.text
    assert response.json()["reason"] == "invalid-timestamp"
    assert "1900" in response.json()["message"]
    assert client.rows(events) == []


@pytest.mark.parametrize("when", OVERFLOWING)
def test_an_identify_with_a_timestamp_out_of_range_is_400_not_503(
    client: Client, when: str
) -> None:
    body = {"userId": "c-1", "traits": {"email": "ana@example.com"}, "timestamp": when}
    response = client.post("/v1/identify", body)
    assert (response.status_code, response.json()["reason"]) == (400, "invalid-timestamp")
    assert client.rows(customers) == []


@pytest.mark.parametrize("when", OVERFLOWING)
def test_a_batch_keeps_its_good_items_around_bad_timestamps(client: Client, when: str) -> None:
    no_time = {k: v for k, v in _track("m-4").items() if k != "timestamp"}
    body = {
        "sentAt": when,  # used only by the item without a time of its own
        "batch": [
            _track("m-1"),
            _track("m-2", timestamp=when),
            {**_track("m-3"), "timestamp": None, "sentAt": when},
            no_time,
            {"type": "identify", "userId": "c-2", "timestamp": when},
            _track("m-5"),
        ],
    }
    response = client.post("/v1/batch", body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 2
    assert [(r["index"], r["reason"]) for r in answer["rejected"]] == [
        (1, "invalid-timestamp"),
        (2, "invalid-timestamp"),
        (3, "invalid-timestamp"),
        (4, "invalid-timestamp"),
    ]
    assert sorted(row.event_id for row in client.rows(events)) == ["m-1", "m-5"]


# --- nesting ---------------------------------------------------------------------------


def _with_nested(message: dict[str, Any], key: str, levels: int) -> str:
    """``message`` as JSON text with ``{"x": <levels of arrays>}`` under ``key``
    (written by hand: the JSON encoders here stop well before a thousand levels)."""
    text = json.dumps(message)
    return text[:-1] + f', "{key}": {{"x": {"[" * levels}1{"]" * levels}}}}}'


@pytest.mark.parametrize("levels", [990, 1000, 1020])
def test_deep_properties_without_a_message_id_are_400(client: Client, levels: int) -> None:
    message = {k: v for k, v in _track(None).items() if k != "properties"}
    response = client.post_raw("/v1/track", _with_nested(message, "properties", levels).encode())
    assert response.status_code == 400, response.text
    assert response.json()["reason"] == "too-deeply-nested"
    assert client.rows(events) == []


def test_a_deep_batch_item_is_rejected_and_the_rest_stored(client: Client) -> None:
    deep = _with_nested(_track(None), "context", 1000)
    items = [
        json.dumps(_track("m-1")),
        deep,
        json.dumps(_track(None, properties={"y": _nested(31)})),
    ]
    response = client.post_raw("/v1/batch", f'{{"batch": [{", ".join(items)}]}}'.encode())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 2
    assert [(r["index"], r["reason"]) for r in answer["rejected"]] == [(1, "too-deeply-nested")]
    assert "32" in answer["rejected"][0]["detail"]


def test_properties_nested_at_the_limit_are_stored_one_level_more_refused(
    client: Client,
) -> None:
    at_limit = _track("m-1", properties={"x": _nested(31)})  # properties: 32 levels
    assert client.post("/v1/track", at_limit).status_code == 200
    over = client.post("/v1/track", _track("m-2", properties={"x": _nested(32)}))
    assert (over.status_code, over.json()["reason"]) == (400, "too-deeply-nested")
    assert [row.event_id for row in client.rows(events)] == ["m-1"]


# --- numeric ids -----------------------------------------------------------------------


def test_numeric_user_ids_past_64_bits_stay_distinct_customers(client: Client) -> None:
    big = 2**64
    items = [
        f'{{"type": "track", "event": "x", "userId": {big + n}, "messageId": "m-{n}",'
        f' "timestamp": "2026-05-01T10:00:00Z"}}'
        for n in range(3)
    ]
    items.append(
        f'{{"type": "identify", "userId": {big + 9}, "anonymousId": {-(2**63) - 1},'
        f' "traits": {{"n": {big}}}}}'
    )
    response = client.post_raw("/v1/batch", f'{{"batch": [{", ".join(items)}]}}'.encode())
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == []
    stored = {row.event_id: row.customer_id for row in client.rows(events)}
    assert stored == {f"m-{n}": str(big + n) for n in range(3)}
    assert str(big + 9) in {row.id for row in client.rows(customers)}
    assert ("anonymous_id", str(-(2**63) - 1)) in {
        (r.kind, r.value) for r in client.rows(identities)
    }


@pytest.mark.parametrize("raw", ["1.5", "1e20", "18446744073709551616.0"])
def test_a_decimal_user_id_is_refused_not_rounded(client: Client, raw: str) -> None:
    body = f'{{"event": "x", "userId": {raw}, "messageId": "m-1"}}'.encode()
    response = client.post_raw("/v1/track", body)
    assert (response.status_code, response.json()["reason"]) == (400, "invalid-id")
    assert raw not in response.json()["message"]
    assert client.rows(events) == []


# --- identity conflicts ----------------------------------------------------------------


def test_an_identify_never_merges_two_known_customers(client: Client) -> None:
    first = {"userId": "c-1", "traits": {"email": "ana@example.com"}}
    assert client.post("/v1/identify", first).status_code == 200
    second = client.post("/v1/identify", {"userId": "c-2", "traits": {"email": "ana@example.com"}})
    assert (second.status_code, second.json()["reason"]) == (400, "identity-conflict")
    assert "ana@example.com" not in second.text
    assert {(r.id, r.merged_into) for r in client.rows(customers)} == {("c-1", None)}

    batch = client.post(
        "/v1/batch",
        {
            "batch": [
                {"type": "identify", "userId": "c-3", "traits": {"email": "ana@example.com"}},
                {"type": "identify", "userId": "c-4", "traits": {"tier": "gold"}},
            ]
        },
    )
    answer = batch.json()
    assert [(r["index"], r["reason"]) for r in answer["rejected"]] == [(0, "identity-conflict")]
    assert {r.id for r in client.rows(customers)} == {"c-1", "c-4"}


def test_an_anonymous_visitor_still_joins_on_identify_and_alias_merges_on_request(
    client: Client,
) -> None:
    assert (
        client.post("/v1/track", _track("m-1", userId=None, anonymousId="a-1")).status_code == 200
    )
    joined = client.post("/v1/identify", {"userId": "c-1", "anonymousId": "a-1"})
    assert joined.status_code == 200, joined.text
    assert {row.customer_id for row in client.rows(events)} == {"c-1"}
    # a-1 now belongs to c-1; an alias is an explicit request to merge
    assert client.post("/v1/identify", {"userId": "c-2", "anonymousId": "a-1"}).status_code == 400
    alias = client.post("/v1/alias", {"userId": "c-2", "previousId": "a-1"})
    assert alias.status_code == 200, alias.text
    merged = {row.id: row.merged_into for row in client.rows(customers)}
    assert merged["c-1"] == "c-2"
