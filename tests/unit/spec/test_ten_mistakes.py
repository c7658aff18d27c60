"""One journey with ten different mistakes: all ten found at once, located and hinted."""

from __future__ import annotations

from omni_journey.spec.diagnostics import format_diagnostics
from tests.unit.spec.helpers import journey_problems

TEN_MISTAKES = """
key: cart_abandonment
enabled: yes
name: Cart abandonment
name: Cart reminder
trigger:
  event: product.added
holdout: 10
quiet_hours:
  start: "21:00"
  end: "8am"
entry:
  re_entry: after 2 weeks
steps:
  - id: settle
    type: delay
    for: 30 minutes
  - id: remind
    type: send
    message: cart_reminder
    chanel: email
  - id: bought
    type: wiat_for
    event: order.completed
    timeout: 1d
  - id: who
    type: branch
    arms:
      - when:
          segmnt: vip
        next: remind
  - id: test
    type: split
    variants:
      - name: a
        weight: 50
      - name: b
"""

EXPECTED = [
    (2, 10, "yaml-1.1-trap", 'write true if you mean true, or "yes" if you mean the word'),
    (4, 1, "duplicate-key", "keep one of them: other YAML tools silently keep only the last"),
    (7, 10, "invalid-percent", 'write "10%" in quotes'),
    (10, 8, "invalid-time", 'write "08:00"'),
    (12, 13, "invalid-value", 'write never, always, or after and a duration, like "after 14d"'),
    (16, 10, "invalid-duration", 'write "30m"'),
    (20, 5, "unknown-field", 'did you mean "channel"?'),
    (22, 11, "unknown-step-type", 'did you mean "wait_for"?'),
    (29, 11, "unknown-condition", 'did you mean "segment"?'),
    (36, 9, "missing-field", "add weight: 50"),
]


def test_ten_mistakes_give_ten_located_hinted_problems() -> None:
    found = journey_problems(TEN_MISTAKES)
    report = format_diagnostics(found)
    assert [(d.line, d.col, d.code, d.hint) for d in found] == EXPECTED, report
    lines = TEN_MISTAKES.lstrip("\n").splitlines()
    for problem in found:
        # each caret sits under the mistake in the line shown
        assert problem.source_line == lines[problem.line - 1]
        assert problem.length >= 1 and problem.expected
    assert report.count("error[") == 10
