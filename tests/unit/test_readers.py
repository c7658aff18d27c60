"""Streaming readers: batches, line numbers, original text, unreadable lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni_journey.ingest.readers import (
    Batch,
    ImportFileError,
    detect_format,
    read_batches,
    read_records,
)


def _all(path: Path, fmt: str, kind: str = "events", size: int = 1000) -> list[Batch]:
    return list(read_batches(path, fmt, kind, size))  # type: ignore[arg-type]


def test_jsonl_batches_keep_line_numbers_and_original_text(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    content = b'\xef\xbb\xbf{"id": "a"}\n\n{"id": "b"}\r\n{broken\n[1, 2]\n   \n{"id": "c"}'
    path.write_bytes(content)
    batches = _all(path, "jsonl", size=2)
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [r["id"] for b in batches for r in b.records] == ["a", "b", "c"]
    assert [n for b in batches for n in b.lines] == [1, 3, 7]
    assert [raw for b in batches for raw in b.raws][1] == b'{"id": "b"}\r\n'
    unreadable = [u for b in batches for u in b.unreadable]
    assert [(u.line, u.reason) for u in unreadable] == [(4, "invalid-json"), (5, "invalid-json")]
    assert unreadable[0].raw == b"{broken\n"
    assert [b.bytes_read for b in batches] == sorted(b.bytes_read for b in batches)
    assert batches[-1].bytes_read == len(content)


def test_a_json_array_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text('  [{"id": "a"}]')
    with pytest.raises(ImportFileError, match="JSON array"):
        _all(path, "jsonl")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot read"):
        _all(tmp_path / "nope.jsonl", "jsonl")


def test_csv_events_map_to_contract_records(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(
        b"id,name,customer_id,at,properties.price,properties.sku,properties.tags,identities.email\r\n"
        b'e-1,product.viewed,c-1,2026-05-01T10:00:00Z,24.0,00123,"[""a""]",ana@example.com\r\n'
        b'e-2,x,,2026-05-01T10:00:00Z,,"multi\r\nline",,\r\n'
        b"\r\n"
        b"e-3,x,c-1\r\n"
        b"e-4,x,c-\xff,2026-05-01T10:00:00Z,,,,\r\n"
    )
    (batch,) = _all(path, "csv")
    assert batch.records == [
        {
            "id": "e-1",
            "name": "product.viewed",
            "customer_id": "c-1",
            "at": "2026-05-01T10:00:00Z",
            "properties": {"price": 24.0, "sku": "00123", "tags": ["a"]},
            "identities": {"email": "ana@example.com"},
        },
        {
            "id": "e-2",
            "name": "x",
            "at": "2026-05-01T10:00:00Z",
            "properties": {"sku": "multi\r\nline"},
        },
    ]
    assert batch.lines == [2, 3]
    assert batch.raws[1] == b'e-2,x,,2026-05-01T10:00:00Z,,"multi\r\nline",,\r\n'
    assert [(u.line, u.reason) for u in batch.unreadable] == [
        (6, "invalid-csv"),
        (7, "invalid-encoding"),
    ]
    assert batch.bytes_read == path.stat().st_size


def test_csv_customers_map_to_contract_profiles(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "customer_id,email,phone,push_tokens,consent.email,consent.sms,consent.push,attributes.tier,attributes.orders\n"
        "c-1,ana@example.com,+4915112345678,tok-1; tok-2,Yes,0,maybe,gold,3\n"
        'c-2,,,"[""t""]",,,,,\n'
    )
    records = list(read_records(path, "customers"))
    assert records == [
        {
            "customer_id": "c-1",
            "email": "ana@example.com",
            "phone": "+4915112345678",
            "push_tokens": ["tok-1", "tok-2"],
            "consent": {"email": True, "sms": False, "push": "maybe"},
            "attributes": {"tier": "gold", "orders": 3},
        },
        {"customer_id": "c-2", "push_tokens": ["t"]},
    ]


@pytest.mark.parametrize(
    ("header", "kind", "message"),
    [
        ("id,name,at,emial", "events", "unknown columns: 'emial'"),
        ("id,name,customer_id", "events", "missing columns: at"),
        ("id,name,at,at", "events", "duplicate columns: at"),
        ("id,name,at,properties.", "events", "unknown columns"),
        ("customer_id,consent.email,traits.x", "customers", "unknown columns: 'traits.x'"),
        ("", "events", "no header"),
    ],
)
def test_a_bad_csv_header_refuses_the_file(
    tmp_path: Path, header: str, kind: str, message: str
) -> None:
    path = tmp_path / "f.csv"
    path.write_text(header + ("\n" if header else ""))
    with pytest.raises(ImportFileError, match=message):
        _all(path, "csv", kind)


def test_formats_come_from_the_extension_or_the_option(tmp_path: Path) -> None:
    assert detect_format(Path("a.jsonl")) == "jsonl"
    assert detect_format(Path("a.JSON")) == "jsonl"
    assert detect_format(Path("a.csv")) == "csv"
    assert detect_format(Path("a.txt"), "csv") == "csv"
    with pytest.raises(ImportFileError, match="--format"):
        detect_format(Path("a.txt"))
    with pytest.raises(ImportFileError, match="unknown format"):
        detect_format(Path("a.csv"), "xml")


def test_batches_never_exceed_their_size(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text("".join(f'{{"id": "{i}"}}\n' if i % 3 else "bad\n" for i in range(100)))
    batches = _all(path, "jsonl", size=7)
    assert all(len(b) <= 7 for b in batches)
    assert sum(len(b.records) for b in batches) == 66
    assert sum(len(b.unreadable) for b in batches) == 34
