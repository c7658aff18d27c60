"""check_message / check_templates: every problem of a message, located and explained."""

from __future__ import annotations

from pathlib import Path

from omni_journey.render import RenderOptions, check_message, check_templates
from omni_journey.spec.diagnostics import Diagnostic
from tests.unit.render.conftest import CART, Write

CONTENT = "subject: Hello\nheadline: Hi\ncta:\n  text: Go\n  url: https://shop.example.com\n"


def _found(diagnostics: list[Diagnostic]) -> list[tuple[str, int, str, str]]:
    return [(Path(d.path).name, d.line, d.severity, d.code) for d in diagnostics]


def test_a_clean_message_has_no_problems(write_templates: Write) -> None:
    clean = CART.replace("{{ event.name }}", "{{ event.name | default('your item') }}")
    root = write_templates({"cart/message.yaml": clean})
    assert check_message(root, "cart") == []


def test_an_event_property_no_standard_event_requires_is_warned_about(
    write_templates: Write,
) -> None:
    root = write_templates({"cart/message.yaml": CART})
    found = check_message(root, "cart")
    assert _found(found) == [
        ("message.yaml", 3, "warning", "optional-event-property"),
        ("message.yaml", 7, "warning", "optional-event-property"),
    ]
    assert [(d.col, d.length) for d in found] == [(15, 10), (15, 10)]  # the carets
    assert '"name"' in found[0].message and "no standard event requires it" in found[0].message


def test_syntax_errors_point_at_file_and_line(write_templates: Write) -> None:
    root = write_templates(
        {
            "m/message.yaml": CONTENT,
            "m/email.html": (
                '{% extends "_partials/base.html" %}\n{% block extra %}\n<p>{{ x </p>\n'
            ),
            "m/sms.txt": "Hi {% if customer.tier is defined %}gold\n",
        }
    )
    found = check_message(root, "m")
    assert ("email.html", 3, "error", "template-syntax") in _found(found)
    assert ("sms.txt", 1, "error", "template-syntax") in _found(found)
    email = next(d for d in found if d.path.endswith("email.html"))
    assert email.source_line == "<p>{{ x </p>"
    assert "Jinja" in email.message and email.hint


def test_unknown_names_are_found_statically_with_a_suggestion(write_templates: Write) -> None:
    root = write_templates(
        {
            "m/message.yaml": CONTENT + "body: |\n  Line one\n  {{ evnt.name }}\n",
            "m/sms.txt": "{{ mesage.headline }} {{ links.unsubscribe }}\n",
            "m/push.yaml": 'title: "{{ message.headline }}"\nbody: "{{ custmer.id }}"\n',
        }
    )
    found = check_message(root, "m")
    unknown = [d for d in found if d.code == "unknown-variable"]
    assert _found(unknown) == [
        ("message.yaml", 8, "error", "unknown-variable"),
        ("push.yaml", 2, "error", "unknown-variable"),
        ("sms.txt", 1, "error", "unknown-variable"),
    ]
    assert [d.hint for d in unknown] == [
        'did you mean "event"?',
        'did you mean "customer"?',
        'did you mean "message"?',
    ]
    # the same problem is not reported a second time by the sample render
    assert not [d for d in found if d.code == "undefined-variable"]


def test_message_yaml_cannot_refer_to_message(write_templates: Write) -> None:
    root = write_templates({"m/message.yaml": "subject: '{{ message.headline }}'\nheadline: h\n"})
    assert _found(check_message(root, "m")) == [("message.yaml", 1, "error", "unknown-variable")]


def test_names_bound_in_the_template_are_known(write_templates: Write) -> None:
    root = write_templates(
        {
            "m/message.yaml": CONTENT,
            "m/email.html": (
                '{% extends "_partials/base.html" %}\n'
                '{% import "_partials/brand.html" as brand %}\n'
                '{% from "_partials/brand.html" import button as b %}\n'
                "{% set greeting = 'Hello' %}\n"
                "{% block extra %}{{ brand.logo() }}{{ b('x', 'https://a.example') }}"
                "{% for item in recommendations %}{{ loop.index }} {{ item.name }}{% endfor %}"
                "{{ greeting }}{% endblock %}\n"
            ),
        }
    )
    assert check_message(root, "m") == []


def test_all_problems_at_once_content_and_variants(write_templates: Write) -> None:
    root = write_templates(
        {
            "m/message.yaml": CONTENT + "body: '{{ customer.nickname }}'\n",
            "m/email.html": "<p>{{ ''.__class__ }}</p>",
        }
    )
    found = _found(check_message(root, "m"))
    # the broken content value does not hide the broken email variant
    assert ("message.yaml", 6, "error", "undefined-variable") in found
    assert ("email.html", 1, "error", "unsafe-template") in found


def test_runtime_skips_are_warned_about(write_templates: Write) -> None:
    root = write_templates(
        {
            "m/message.yaml": "subject: 'Hi {{ customer.first_name }}'\nheadline: h\n",
            "m/email.html": "<p>{{ recommendations[0].name }}</p>",
        }
    )
    found = check_message(root, "m")
    assert _found(found) == [
        ("email.html", 1, "warning", "empty-recommendations"),
        ("message.yaml", 1, "warning", "optional-attribute"),
    ]
    attribute = found[1]
    assert '"first_name"' in attribute.message
    assert attribute.hint == (
        'give it a default: {{ customer.first_name | default("...") }}, '
        "or test it: {% if customer.first_name is defined %}"
    )


def test_output_checks_subject_sms_and_push(write_templates: Write) -> None:
    root = write_templates(
        {
            "m/message.yaml": f"subject: {'Long subject ' * 7}\nheadline: h\n",
            "m/sms.txt": "It’s here: {{ 'x' * 500 }}\n",
            "m/push.yaml": "title: t\nbody: \"{{ 'y' * 5000 }}\"\n",
        }
    )
    found = check_message(root, "m")
    assert _found(found) == [
        ("message.yaml", 1, "warning", "subject-too-long"),
        ("push.yaml", 1, "error", "push-too-large"),
        ("sms.txt", 1, "error", "sms-too-many-segments"),
        ("sms.txt", 1, "warning", "sms-unicode"),
    ]
    sms_unicode = found[-1]
    assert sms_unicode.col == 3  # the ’
    assert sms_unicode.hint == "replace '’' with \"'\""
    assert "8 parts" in found[2].message  # 511 UCS-2 units, 67 a part
    relaxed = check_message(
        root, "m", options=RenderOptions(subject_max_chars=100, sms_max_segments=9)
    )
    assert "subject-too-long" not in [d.code for d in relaxed]
    assert "sms-too-many-segments" not in [d.code for d in relaxed]


def test_the_shape_of_content_and_yaml_variants(write_templates: Write) -> None:
    root = write_templates(
        {
            "m/message.yaml": "headline: [not, text]\ncta: {text: Go, url: shop.example.com}\n",
            "m/push.yaml": "title: t\nbdy: x\ndata:\n  google.x: z\n",
            "m/whatsapp.yaml": "template:\n  name: Cart Reminder\n  parameters: [[a]]\n",
        }
    )
    found = _found(check_message(root, "m"))
    assert found == [
        ("message.yaml", 1, "error", "missing-content"),  # no subject
        ("message.yaml", 1, "error", "invalid-value"),  # headline is a list
        ("message.yaml", 2, "error", "invalid-value"),  # cta.url is not a URL
        ("push.yaml", 1, "error", "missing-field"),
        ("push.yaml", 2, "error", "unknown-field"),
        ("push.yaml", 4, "error", "invalid-value"),
        ("whatsapp.yaml", 2, "error", "invalid-value"),
        ("whatsapp.yaml", 3, "error", "invalid-value"),
    ]


def test_yaml_problems_come_from_the_spec_loader(write_templates: Write) -> None:
    root = write_templates(
        {"m/message.yaml": "subject: a\nsubject: b\nheadline: no\n", "m/push.yaml": "title: [\n"}
    )
    found = _found(check_message(root, "m"))
    assert ("message.yaml", 2, "error", "duplicate-key") in found
    assert ("message.yaml", 3, "error", "yaml-1.1-trap") in found
    assert next(f for f in found if f[0] == "push.yaml")[3] == "yaml-syntax"


def test_misspelt_files_and_missing_folders(write_templates: Write) -> None:
    root = write_templates({"m/message.yaml": CONTENT, "m/emial.html": "x", "m/notes.md": "x"})
    found = check_message(root, "m")
    assert _found(found) == [("emial.html", 1, "warning", "unknown-template-file")]
    assert found[0].hint == 'did you mean "email.html"?'
    assert _found(check_message(root, "nope")) == [("nope", 1, "error", "unknown-message")]


def test_every_locale_is_checked(write_templates: Write) -> None:
    root = write_templates(
        {"m/message.yaml": CONTENT, "m/message.de.yaml": "subject: '{{ customer.vorname }}'\n"}
    )
    found = _found(check_message(root, "m"))
    assert ("message.de.yaml", 1, "error", "undefined-variable") in found


def test_check_templates_covers_partials_and_the_given_messages(write_templates: Write) -> None:
    root = write_templates(
        {
            "_partials/extra.html": "{% macro x() %}{{ nope }}{% endmacro %}",
            "a/message.yaml": CONTENT,
            "b/message.yaml": "subject: '{{ oops }}'\nheadline: h\n",
        }
    )
    everything = _found(check_templates(root))
    assert everything == [
        ("extra.html", 1, "error", "unknown-variable"),
        ("message.yaml", 1, "error", "unknown-variable"),
    ]
    only_a = check_templates(root, ["a", "missing"])  # no folder: the journey reports it
    assert _found(only_a) == [("extra.html", 1, "error", "unknown-variable")]


def test_paths_print_as_asked(write_templates: Write) -> None:
    root = write_templates({"b/message.yaml": "subject: '{{ oops }}'\nheadline: h\n"})
    (found,) = check_templates(root, shown_dir="templates")
    assert found.path == "templates/b/message.yaml"
    assert found.format().startswith(
        'templates/b/message.yaml:1:14: error[unknown-variable] "oops" is not'
    )
    assert (found.col, found.length) == (14, 4)  # the caret on the name, not the value
