"""Pydantic errors, explained at the right place in the marketer's words."""

from __future__ import annotations

import pytest

from omni_journey.spec.model_paths import allowed_keys, model_at
from omni_journey.spec.models import JourneySpec, SendStep
from tests.unit.spec.helpers import codes, journey_problems, load

HEAD = """
key: x
trigger: {event: product.viewed}
"""


def _one(text: str) -> tuple[tuple[int, int, str], str, str | None, str | None]:
    found = journey_problems(text)
    assert len(found) == 1, [d.format() for d in found]
    [d] = found
    return (d.line, d.col, d.code), d.message, d.expected, d.hint


def test_unknown_field_points_at_the_key_and_lists_the_allowed_ones() -> None:
    where, message, expected, hint = _one(
        HEAD
        + """
steps:
  - id: remind
    type: send
    message: cart_reminder
    chanel: email
"""
    )
    assert where == (8, 5, "unknown-field")
    assert message == 'step "remind" has no setting "chanel"'
    assert expected == "one of channel, id, message, name, next, send_at, type"
    assert hint == 'did you mean "channel"?'


@pytest.mark.parametrize(
    ("extra", "hint"),
    [
        ("on_timeout: done", '"on_timeout" is a setting of wait_for steps'),
        ("arms: []", '"arms" is a setting of branch steps'),
        ("colour: red", 'remove "colour"'),
    ],
)
def test_unknown_field_hints_where_it_would_belong(extra: str, hint: str) -> None:
    _, _, _, got = _one(HEAD + f"steps:\n  - id: mark\n    type: update\n    {extra}\n")
    assert got == hint


def test_unknown_field_at_the_wrong_indentation_says_so() -> None:
    _, message, _, hint = _one(
        HEAD + 'entry:\n  segment: vip\n  holdout: "10%"\nsteps: [{id: e, type: exit}]\n'
    )
    assert message == 'entry has no setting "holdout"'
    assert hint == 'indent "holdout" less: it belongs to the journey'


def test_python_names_of_aliased_fields_are_not_yaml_keys() -> None:
    where, message, _, hint = _one(HEAD + "steps:\n  - {id: w, type: delay, for_: 1h}\n")
    assert where[2] == "unknown-field" and '"for_"' in message
    assert hint == 'did you mean "for"?'


def test_missing_field() -> None:
    where, message, expected, hint = _one(HEAD + "steps:\n  - id: remind\n    type: send\n")
    assert where == (4, 5, "missing-field")
    assert message == 'step "remind" is missing "message"'
    assert hint == "add message: <a folder name under templates/>"
    assert expected == "message: <a folder name under templates/>"


def test_missing_top_level_fields_are_all_reported() -> None:
    found = journey_problems("key: x\nname: Something\n")
    assert [d.message for d in found] == [
        'the journey is missing "steps"',
        'the journey is missing "trigger"',
    ]


def test_an_empty_file_says_so() -> None:
    from omni_journey.spec.loader import parse_yaml
    from omni_journey.spec.validation import validate_document

    doc = parse_yaml("", "journeys/x.yaml").document
    assert doc is not None
    _, [problem] = validate_document(doc, JourneySpec, "journey")
    assert (problem.code, problem.message) == ("missing-field", "the journey file is empty")
    assert problem.expected == "one of key, steps, trigger"


@pytest.mark.parametrize(
    ("step", "where", "message", "hint"),
    [
        (
            "{id: s, type: sned}",
            (4, 19),
            'step "s" has an unknown type "sned"',
            'did you mean "send"?',
        ),
        ("{id: s, message: m}", (4, 5), 'step "s" is missing "type"', "add type: send"),
        ("{id: s, arms: []}", (4, 5), 'step "s" is missing "type"', "add type: branch"),
        (
            "remind",
            (4, 5),
            "a step is not a mapping",
            "write a step like - {id: wait, type: delay, for: 1h}",
        ),
    ],
)
def test_step_types(step: str, where: tuple[int, int], message: str, hint: str) -> None:
    got_where, got_message, _, got_hint = _one(HEAD + f"steps:\n  - {step}\n")
    assert got_where[:2] == where
    assert (got_message, got_hint) == (message, hint)


def test_unknown_condition_and_trigger() -> None:
    found = journey_problems(
        """
        key: x
        trigger: {evnt: product.viewed}
        steps:
          - id: check
            type: branch
            arms:
              - when: {segmnt: vip}
                next: check
              - when: vip
                next: check
        """
    )
    assert codes(found) == [
        (2, 11, "unknown-trigger"),
        (7, 16, "unknown-condition"),
        (9, 15, "unknown-condition"),
    ]
    assert found[0].hint == 'did you mean "event"?'
    assert found[1].message == 'a condition in step "check" has an unknown kind "segmnt"'
    assert found[1].hint == 'did you mean "segment"?'
    assert found[2].hint == "write it like {segment: vip}"


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("2 days", 'write "2d"'),
        ("3 hours", 'write "3h"'),
        ("90", 'add a unit: "90h" for hours, "90d" for days'),
        ("1.5h", 'use whole numbers: "90m"'),
        ("0h", "a duration must be longer than zero"),
        ("soon", 'write a number and a unit, like "3d" or "1d12h"'),
    ],
)
def test_invalid_duration(value: str, hint: str) -> None:
    where, message, _, got = _one(HEAD + f"steps:\n  - {{id: w, type: delay, for: {value}}}\n")
    assert where == (4, 31, "invalid-duration")
    assert message == 'step "w" has an invalid duration in "for"'
    assert got == hint


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ('"9pm"', 'write "21:00"'),
        ('"7:30 am"', 'write "07:30"'),
        ('"9:30"', 'write "09:30"'),
        ('"25:00"', 'write hours 00-23 and minutes 00-59, like "21:00"'),
    ],
)
def test_invalid_time(value: str, hint: str) -> None:
    where, message, _, got = _one(
        HEAD + f'quiet_hours: {{start: {value}, end: "08:00"}}\nsteps: [{{id: e, type: exit}}]\n'
    )
    assert where == (3, 22, "invalid-time")
    assert message == 'quiet_hours has an invalid time in "start"'
    assert got == hint


@pytest.mark.parametrize(
    ("value", "message_end", "hint"),
    [
        ("10", 'in "holdout"', 'write "10%" in quotes'),
        ("0.1", 'in "holdout"', 'write "10%" in quotes'),
        ('"ten"', 'in "holdout"', 'write a number from 0 to 100 followed by %, in quotes: "10%"'),
        ('"60%"', "leaves most customers untreated", 'use at most "50%"; "5%" to "10%" is usual'),
    ],
)
def test_invalid_percent(value: str, message_end: str, hint: str) -> None:
    where, message, _, got = _one(HEAD + f"holdout: {value}\nsteps: [{{id: e, type: exit}}]\n")
    assert where == (3, 10, "invalid-percent")
    assert message.endswith(message_end)
    assert got == hint


def test_a_union_reports_one_problem_not_one_per_member() -> None:
    where, message, expected, hint = _one(
        HEAD + "steps:\n  - {id: s, type: send, message: m, channel: mail}\n"
    )
    assert where == (4, 46, "invalid-value")
    assert message == 'step "s" has an invalid "channel"'
    assert expected == "best, email, sms, push, whatsapp or a list of them"
    assert hint == 'did you mean "email"?'


def test_a_bad_item_of_a_list_is_pointed_at() -> None:
    where, message, expected, hint = _one(
        HEAD + "steps:\n  - {id: s, type: send, message: m, channel: [push, mail]}\n"
    )
    assert where == (4, 53, "invalid-value")
    assert message == 'step "s" has an invalid item in "channel"'
    assert (expected, hint) == ("email, sms, push or whatsapp", 'did you mean "email"?')


def test_a_filter_with_a_typo_is_an_unknown_field_not_five_type_errors() -> None:
    where, message, expected, _ = _one(
        "key: x\ntrigger: {event: a.b, where: {price: {gtee: 10}}}\nsteps: [{id: e, type: exit}]\n"
    )
    assert where == (2, 39, "unknown-field")
    assert message == 'the filter on "price" in the trigger has no setting "gtee"'
    assert expected is not None and "gte" in expected


def test_too_short_is_dropped_when_the_items_failed_and_kept_when_really_short() -> None:
    found = journey_problems(HEAD + "steps:\n  - {id: s, type: sned}\n")
    assert [d.code for d in found] == ["unknown-step-type"]
    where, message, expected, hint = _one(
        HEAD + "steps:\n  - {id: s, type: split, variants: [{name: a, weight: 1}]}\n"
    )
    assert where[2] == "invalid-value" and message == 'step "s" has an invalid "variants"'
    assert expected == "at least 2 items"
    assert hint == 'add more items to "variants"'


def test_model_level_rules_explain_themselves() -> None:
    found = journey_problems(
        HEAD
        + """
steps:
  - {id: a, type: delay}
  - {id: b, type: delay, for: 1h, until: "09:00"}
  - id: c
    type: branch
    arms: [{when: {attribute: tier}, next: a}]
"""
    )
    assert [(d.code, d.message) for d in found] == [
        ("missing-field", 'step "a" needs "for" (a duration) or "until" (a time of day)'),
        ("invalid-value", 'step "b" has both "for" and "until"; a delay takes only one of them'),
        (
            "missing-field",
            'the attribute condition in step "c" needs a test: one of equals, not_equals,'
            " in, not_in, gt, gte, lt, lte, exists",
        ),
    ]
    assert all(d.hint for d in found)


def test_patterns_get_a_fix() -> None:
    found = journey_problems(
        """
        key: Cart-Abandon
        trigger: {event: Order Completed}
        entry: {re_entry: after 2 weeks}
        steps: [{id: w, type: webhook, url: "crm.example.com/hook"}]
        """
    )
    assert [(d.code, d.hint) for d in found] == [
        ("invalid-value", 'write "cart_abandon"'),
        ("invalid-value", 'write "order.completed" (no spaces in event names)'),
        ("invalid-value", 'write never, always, or after and a duration, like "after 14d"'),
        ("invalid-value", "write the full address, starting with https://"),
    ]


def test_a_trap_is_not_reported_twice() -> None:
    found = journey_problems(HEAD + "steps:\n  - {id: m, type: delay, until: 9:30}\n")
    assert codes(found) == [(4, 33, "yaml-1.1-trap")]


def test_model_at_walks_discriminated_unions() -> None:
    doc, _ = load(HEAD + "steps:\n  - {id: s, type: send, message: m}\n")
    assert model_at(JourneySpec, doc.data, ("steps", 0)) is SendStep
    assert model_at(JourneySpec, doc.data, ("steps", 0, "message")) is None
    assert "channel" in allowed_keys(SendStep)
