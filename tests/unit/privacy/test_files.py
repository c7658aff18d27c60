"""Which lines of a rejects file are about a customer, and rewriting a file without them."""

from __future__ import annotations

import stat
from pathlib import Path

from omni_journey.privacy.files import line_matcher, scrub_rejects

PHONE = "+4915112345678"


def test_a_line_is_about_the_customer_by_any_identity_or_phone_spelling() -> None:
    matcher = line_matcher(["ana@example.com", "c-1", "Anabel"], [PHONE])
    assert matcher is not None
    about = [
        '{"email": "ANA@example.com"}',
        '{"customer_id": "c-1", "x": 1}',
        "c-1,foo",
        '{"first_name": "anabel"}',
        '{"phone": "0151 12345678"}',
        "phone=+49 (151) 123-45678",
        '{"phone": "4915112345678"}',
        f'{{"phone": "{PHONE}"}}',
    ]
    other = [
        '{"email": "diana@example.com"}',
        '{"customer_id": "c-10"}',
        '{"customer_id": "xc-1"}',
        '{"first_name": "Anabella"}',
        '{"phone": "+4915112345679"}',
        '{"order": "9015112345678123"}',
    ]
    assert [line for line in about if not matcher.search(line)] == []
    assert [line for line in other if matcher.search(line)] == []
    assert line_matcher([], []) is None


def test_rejects_files_are_rewritten_private_or_removed(tmp_path: Path) -> None:
    mixed = tmp_path / "customers-crm-1.rejects.jsonl"
    mixed.write_text('{"raw": "c-1"}\n{"raw": "c-2"}\n')
    mixed.chmod(0o600)
    only = tmp_path / "events-e-1.rejects.jsonl"
    only.write_text('{"raw": "c-1"}\n')
    untouched = tmp_path / "notes.txt"
    untouched.write_text("c-1\n")

    assert scrub_rejects(tmp_path, line_matcher(["c-1"])) == (2, 2)
    assert mixed.read_text() == '{"raw": "c-2"}\n'
    assert stat.S_IMODE(mixed.stat().st_mode) == 0o600
    assert not only.exists() and untouched.read_text() == "c-1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [mixed.name, untouched.name]
    assert scrub_rejects(tmp_path, line_matcher(["c-1"])) == (0, 0)  # nothing left to do
