"""Which reads of customer and event values some customers or events lack: every
unguarded one, and none that a default or an ``is defined`` test protects."""

from __future__ import annotations

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from omni_journey.render.variables import optional_reads, read_column

ENVIRONMENT = ImmutableSandboxedEnvironment()


def _reads(source: str) -> list[tuple[str, int]]:
    return [(r.text, r.line) for r in optional_reads(ENVIRONMENT.parse(source))]


@pytest.mark.parametrize(
    "source",
    [
        '{{ customer.tier | default("none") }}',
        "{{ customer.tier | d('none') }}",
        "{% if customer.tier is defined %}{{ customer.tier }}{% endif %}",
        "{% if customer.tier is defined and customer.tier == 'gold' %}x{% endif %}",
        "{{ customer.tier if customer.tier is defined else 'none' }}",
        "{{ customer.id }} {{ customer.locale }} {{ customer.timezone }}",
        "{{ event.sku }} {{ event.order_id }}",  # required by a standard event
        "{{ customer.get('tier', 'none') }}",
        "{% for item in recommendations %}{{ item.name }}{% endfor %}",
    ],
)
def test_guarded_and_always_there_values_are_not_reported(source: str) -> None:
    assert _reads(source) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ event.old_price }}", [("event.old_price", 1)]),
        ('{% if customer.tier == "gold" %}x{% endif %}', [("customer.tier", 1)]),
        ("{% if customer.vip %}x{% endif %}", [("customer.vip", 1)]),  # truth needs a value
        ('{{ customer["city"] }}', [("customer.city", 1)]),
        ("{{ 'x' | default(customer.tier) }}", [("customer.tier", 1)]),  # an argument
        (
            "{% if event.x is defined %}{{ event.x }}{% else %}{{ event.x }}{% endif %}",
            [("event.x", 1)],  # the else branch is not protected
        ),
        (
            "{{ customer.first_name }}\n{{ customer.first_name }} {{ event.coupon.code }}",
            [("customer.first_name", 1), ("customer.first_name", 2), ("event.coupon", 2)],
        ),
    ],
)
def test_every_unguarded_read_is_reported_once_per_line(
    source: str, expected: list[tuple[str, int]]
) -> None:
    assert _reads(source) == expected


def test_the_column_is_the_unguarded_occurrence() -> None:
    line = "{{ event.x | default(1) }} and {{ event.x }}"
    (read,) = optional_reads(ENVIRONMENT.parse(line))
    start, end = read_column(line, read) or (0, 0)
    assert line[start:end] == "event.x" and start == line.rindex("event.x")
