"""Semantic checks: keys, the step graph, references, segment cycles."""

from __future__ import annotations

from omni_journey.spec.checks import (
    check_journey,
    check_journey_references,
    check_key,
    check_segment_cycles,
    check_segment_references,
    known_events,
)
from omni_journey.spec.conditions import STANDARD_EVENTS
from tests.unit.spec.helpers import codes, journey, segment

HEAD = "key: x\ntrigger: {event: product.viewed}\n"


def _graph(steps: str) -> list[tuple[int, int, str]]:
    spec, doc = journey(HEAD + "steps:\n" + steps)
    return codes(sorted(check_journey(spec, doc, "x")))


def test_successors_follow_the_documented_defaults() -> None:
    spec, _ = journey(
        HEAD
        + """steps:
  - {id: wait, type: wait_for, event: order.completed, timeout: 1d, on_timeout: nudge}
  - {id: check, type: branch, arms: [{when: {segment: vip}, next: nudge}]}
  - {id: ab, type: split, variants: [{name: a, weight: 1, next: done}, {name: b, weight: 1}]}
  - {id: nudge, type: update, set: {a: 1}, next: done}
  - {id: done, type: exit}
"""
    )
    assert spec.successors("wait") == ("check", "nudge")
    assert spec.successors("check") == ("nudge", "ab")
    assert spec.successors("ab") == ("done", "nudge")
    assert spec.successors("nudge") == ("done",)
    assert spec.successors("done") == ()
    assert spec.default_next("wait") == "check"


def test_a_clean_graph_has_no_problems() -> None:
    assert (
        _graph(
            """  - {id: wait, type: delay, for: 1h}
  - {id: bought, type: wait_for, event: order.completed, timeout: 2d, on_timeout: offer}
  - {id: thanks, type: exit}
  - {id: offer, type: update, set: {offered: true}}
"""
        )
        == []
    )


def test_key_must_equal_the_file_stem() -> None:
    spec, doc = journey(HEAD + "steps: [{id: e, type: exit}]\n")
    [problem] = check_key(spec, doc, "cart_abandonment")
    assert (problem.line, problem.col, problem.code) == (1, 6, "key-mismatch")
    assert problem.hint == 'change the key to "cart_abandonment", or rename the file to x.yaml'
    assert check_key(spec, doc, "x") == [] and check_key(spec, doc, None) == []


def test_duplicate_step_ids() -> None:
    found = _graph("  - {id: a, type: delay, for: 1h}\n  - {id: a, type: exit}\n")
    assert found == [(5, 10, "duplicate-step-id")]


def test_every_kind_of_reference_is_checked() -> None:
    spec, doc = journey(
        HEAD
        + """versioning:
  migrate: {old: gone}
steps:
  - {id: w, type: wait_for, event: order.completed, timeout: 1d, on_event: e1, on_timeout: e2}
  - {id: b, type: branch, arms: [{when: {segment: vip}, next: e3}], else: e4}
  - {id: s, type: split, variants: [{name: a, weight: 1, next: e5}, {name: b, weight: 1}]}
  - {id: u, type: update, set: {a: 1}, next: e6}
  - {id: done, type: exit}
"""
    )
    found = [d for d in check_journey(spec, doc, "x") if d.code == "unknown-step"]
    assert sorted(d.message for d in found) == [
        'an arm in step "b" sends customers to "e3", but no step has that id',
        'step "b" sends customers to "e4", but no step has that id',
        'step "u" sends customers to "e6", but no step has that id',
        'step "w" sends customers to "e1", but no step has that id',
        'step "w" sends customers to "e2", but no step has that id',
        'variant "a" in step "s" sends customers to "e5", but no step has that id',
        'versioning.migrate moves customers waiting at "old" to "gone", but no step has that id',
    ]
    assert all(d.expected == "one of w, b, s, u, done" for d in found)


def test_a_misspelt_target_is_one_problem_not_two() -> None:
    found = _graph(
        """  - {id: w, type: wait_for, event: order.completed, timeout: 1d, on_timeout: ofer}
  - {id: done, type: exit}
  - {id: offer, type: update, set: {a: 1}}
"""
    )
    assert found == [(4, 78, "unknown-step")]


def test_unreachable_steps() -> None:
    found = _graph(
        """  - {id: a, type: update, set: {x: 1}, next: c}
  - {id: b, type: update, set: {x: 2}}
  - {id: c, type: exit}
  - {id: d, type: exit}
"""
    )
    assert found == [(5, 10, "unreachable-step"), (7, 10, "unreachable-step")]


def test_loops_need_a_wait_on_every_round() -> None:
    looping = """  - {id: count, type: update, set: {a: 1}}
  - {id: check, type: branch, arms: [{when: {attribute: a, lt: 3}, next: count}]}
  - {id: done, type: exit}
"""
    assert _graph(looping) == [(4, 10, "loop-without-wait")]
    waiting = """  - {id: count, type: update, set: {a: 1}}
  - {id: pause, type: delay, for: 1d}
  - {id: check, type: branch, arms: [{when: {attribute: a, lt: 3}, next: count}]}
  - {id: done, type: exit}
"""
    assert _graph(waiting) == []
    itself = "  - {id: spin, type: update, set: {a: 1}, next: spin}\n"
    spec, doc = journey(HEAD + "steps:\n" + itself)
    [problem] = check_journey(spec, doc, "x")
    assert problem.message == 'step "spin" goes back to itself with no delay or wait_for on the way'


def test_a_wait_on_one_way_round_does_not_excuse_another() -> None:
    found = _graph(
        """  - {id: check, type: branch, arms: [{when: {segment: v}, next: pause}], else: mark}
  - {id: pause, type: delay, for: 1d, next: check}
  - {id: mark, type: update, set: {a: 1}, next: check}
"""
    )
    assert found == [(4, 10, "loop-without-wait")]


def _references(text: str) -> list[tuple[int, int, str]]:
    spec, doc = journey(text)
    found = check_journey_references(
        spec,
        doc,
        segments={"vip", "reachable"},
        messages={"cart_reminder"},
        events=known_events([spec], ["wishlist.shared"]),
    )
    return codes(sorted(found))


def test_references_to_segments_messages_and_events() -> None:
    found = _references(
        """
        key: x
        trigger: {event: cart.abandoned}
        entry: {segment: vipp}
        goal: {event: order.complete, within: 7d}
        exit_when: [{event: wishlist.shared}, {event: Order.Completed}]
        steps:
          - {id: w, type: wait_for, event: cart.abandoned, timeout: 1d}
          - id: b
            type: branch
            arms:
              - when: {all: [{segment: reachable}, {not: {segment: vp}}]}
                next: s
              - when: {event: checkout.strated, within: 1d}
                next: s
          - {id: s, type: send, message: cart_remindr}
        """
    )
    assert found == [
        (3, 18, "unknown-segment"),
        (4, 15, "unknown-event"),
        (5, 47, "unknown-event"),
        (11, 60, "unknown-segment"),
        (13, 23, "unknown-event"),
        (15, 34, "unknown-message"),
    ]


def test_unknown_event_suggests_the_standard_name() -> None:
    spec, doc = journey(
        HEAD + "goal: {event: Order.Completed, within: 7d}\nsteps: [{id: e, type: exit}]\n"
    )
    [problem] = check_journey_references(
        spec, doc, segments=set(), messages=set(), events=known_events([spec])
    )
    assert problem.message == 'goal uses the event "Order.Completed", which nothing sends'
    assert problem.hint == (
        'did you mean "order.completed"? (if your shop sends "Order.Completed", list it in'
        " events.yaml)"
    )


def test_known_events() -> None:
    spec, _ = journey("key: x\ntrigger: {event: cart.abandoned}\nsteps: [{id: e, type: exit}]\n")
    assert known_events([spec], ["a.b"]) == STANDARD_EVENTS | {"cart.abandoned", "a.b"}
    assert "purchase_cycle.due" in STANDARD_EVENTS


def test_segment_references_and_cycles() -> None:
    a = segment("key: a\nmatch: {any: [{segment: b}, {event: product.viewd}]}\n", "segments/a.yaml")
    b = segment("key: b\nmatch: {all: [{segment: c}, {not: {segment: a}}]}\n", "segments/b.yaml")
    c = segment("key: c\nmatch: {segment: nowhere}\n", "segments/c.yaml")
    me = segment("key: me\nmatch: {segment: me}\n", "segments/me.yaml")
    d = segment("key: d\nmatch: {all: [{segment: c}, {segment: c}]}\n", "segments/d.yaml")
    refs = check_segment_references(*a, segments={"a", "b", "c"}, events=STANDARD_EVENTS)
    assert codes(refs) == [(2, 37, "unknown-event")]
    refs = check_segment_references(*c, segments={"a", "b", "c"}, events=STANDARD_EVENTS)
    assert codes(refs) == [(2, 18, "unknown-segment")]
    cycles = check_segment_cycles({"a": a, "b": b, "c": c, "me": me, "d": d})
    assert sorted((d.path, d.message) for d in cycles) == [
        ("segments/a.yaml", 'segment "a" includes itself by way of "b"'),
        ("segments/b.yaml", 'segment "b" includes itself by way of "a"'),
        ("segments/me.yaml", 'segment "me" includes itself'),
    ]


def test_settings_that_contradict_each_other() -> None:
    spec, doc = journey(
        HEAD
        + """quiet_hours: {start: "21:00", end: "21:00"}
send_window: {days: [], start: "09:00", end: "17:00"}
steps:
  - {id: ab, type: split, variants: [{name: a, weight: 1}, {name: a, weight: 1}]}
"""
    )
    found = sorted(check_journey(spec, doc, "x"))
    assert [(d.line, d.code, d.message) for d in found] == [
        (3, "invalid-value", "quiet_hours starts and ends at the same time"),
        (4, "invalid-value", "send_window has no days, so it would never open"),
        (6, "invalid-value", 'step "ab" has two variants named "a"'),
    ]
