"""The diagnostic: how it prints, sorts, serialises, and what it never shows."""

from __future__ import annotations

from omni_journey.spec.diagnostics import (
    Diagnostic,
    did_you_mean,
    format_diagnostics,
    one_of,
    quoted,
    redact,
    summary,
)

STYLE_EXAMPLE = """\
journeys/cart_abandon.yaml:14:5: error[unknown-field] step "remind" has no setting "chanel"
   14 |     chanel: email
      |     ^^^^^^
  expected: one of channel, template, next, when
  hint: did you mean "channel"?"""


def _diagnostic(**overrides: object) -> Diagnostic:
    fields: dict[str, object] = {
        "path": "journeys/cart_abandon.yaml",
        "line": 14,
        "col": 5,
        "code": "unknown-field",
        "message": 'step "remind" has no setting "chanel"',
        "expected": "one of channel, template, next, when",
        "hint": 'did you mean "channel"?',
        "length": 6,
        "source_line": "    chanel: email",
    }
    fields.update(overrides)
    return Diagnostic(**fields)  # type: ignore[arg-type]


def test_formats_exactly_like_the_house_style() -> None:
    assert _diagnostic().format() == STYLE_EXAMPLE
    assert str(_diagnostic()) == STYLE_EXAMPLE


def test_without_a_source_line_or_extras_it_is_one_line() -> None:
    bare = _diagnostic(source_line=None, expected=None, hint=None, severity="warning")
    assert bare.format() == (
        'journeys/cart_abandon.yaml:14:5: warning[unknown-field] step "remind" has no setting'
        ' "chanel"'
    )


def test_gutter_widths_line_up_for_long_files() -> None:
    lines = _diagnostic(line=1234, source_line="x: 1", col=1, length=1).format().splitlines()
    assert lines[1] == " 1234 | x: 1"
    assert lines[2] == "      | ^"


def test_sorted_by_path_then_line_then_column() -> None:
    b = _diagnostic(path="segments/a.yaml", line=1)
    a2 = _diagnostic(line=3, col=9)
    a1 = _diagnostic(line=3, col=2)
    assert sorted([b, a2, a1]) == [a1, a2, b]
    assert format_diagnostics([b, a1]).split("\n\n")[0] == a1.format()


def test_to_dict_is_json_ready() -> None:
    assert _diagnostic().to_dict() == {
        "path": "journeys/cart_abandon.yaml",
        "line": 14,
        "col": 5,
        "end_col": 11,
        "severity": "error",
        "code": "unknown-field",
        "message": 'step "remind" has no setting "chanel"',
        "expected": "one of channel, template, next, when",
        "hint": 'did you mean "channel"?',
    }


def test_summary_line() -> None:
    error = _diagnostic()
    warning = _diagnostic(severity="warning", path="segments/vip.yaml")
    assert summary([], 12) == "checked 12 files: no problems"
    assert summary([], 1) == "checked 1 file: no problems"
    assert summary([error, error], 12) == "2 errors in 1 of 12 files"
    assert summary([error, warning], 3) == "1 error, 1 warning in 2 of 3 files"
    assert summary([warning], 3) == "1 warning in 1 of 3 files"


def test_did_you_mean() -> None:
    choices = ["channel", "message", "next", "send_at"]
    assert did_you_mean("chanel", choices) == "channel"
    assert did_you_mean("Message", choices) == "message"
    assert did_you_mean("zzz", choices) is None
    assert did_you_mean(3, choices) is None


def test_one_of_shortens_long_lists() -> None:
    assert one_of(["a"]) == "a"
    assert one_of(["a", "b", "a"]) == "one of a, b"
    assert one_of([str(i) for i in range(15)], limit=3) == "one of 0, 1, 2 (and 12 more)"


def test_redact_masks_pii_and_secrets_keeping_the_length() -> None:
    lines = {
        "    to: ana@example.com": "    to: ***************",
        "phone: +49 151 12345678": "phone: ****************",
        "  api_key: abc123": "  api_key: ******",
        "  Authorization: Bearer sk_live_1": "  Authorization: Bearer *********",
        'url: "https://u:pw@crm.example.com/x?token=s3cr3t"': (
            'url: "https://u:' + "*" * len("pw@crm.example.com") + '/x?token=******"'
        ),
    }
    for line, masked in lines.items():
        assert redact(line) == masked
        assert len(redact(line)) == len(line)
    for harmless in ("  - {id: token_reminder, type: send}", "    for: 1d12h", 'at: "09:30"'):
        assert redact(harmless) == harmless


def test_quoted_never_shows_pii_and_stays_short() -> None:
    assert quoted("chanel") == '"chanel"'
    assert quoted("ana@example.com") == '"***"'
    assert quoted("+4915112345678") == '"***"'
    assert quoted("x" * 100) == '"' + "x" * 39 + '…"'


def test_a_diagnostic_about_an_email_key_never_prints_it() -> None:
    from tests.unit.spec.helpers import journey_problems

    found = journey_problems(
        """
        key: x
        trigger: {event: a.b}
        steps:
          - id: s
            type: exit
            ana@example.com: true
        """
    )
    text = format_diagnostics(found)
    assert [d.code for d in found] == ["unknown-field"]
    assert "ana@" not in text and "example.com" not in text
