"""Built-in templates: the variant a message gets on a channel it has no file for, and
the fallback layout for projects without ``templates/_partials/``.

A project's own ``_partials/base.html`` and ``_partials/brand.html`` take precedence
over the ones here (same names, the project folder is searched first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = [
    "BUILTIN_TEMPLATES",
    "DEFAULT_EMAIL",
    "DEFAULT_PUSH",
    "DEFAULT_SMS",
    "DEFAULT_WHATSAPP",
]

DEFAULT_EMAIL: Final = "_omni/email.html"
DEFAULT_SMS: Final = "_omni/sms.txt"

_BASE = """\
{% import "_partials/brand.html" as brand %}
<!DOCTYPE html>
<html lang="{{ customer.locale or 'en' }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{{ message.subject }}{% endblock %}</title>
<style>
body { margin: 0; padding: 0; background: #f4f4f5; color: #18181b;
       font-family: Helvetica, Arial, sans-serif; }
.wrapper { width: 100%; background: #f4f4f5; padding: 24px 0; }
.container { width: 100%; max-width: 600px; margin: 0 auto; background: #ffffff; }
.header { padding: 24px; font-size: 20px; font-weight: bold; }
.content { padding: 0 24px 24px 24px; font-size: 16px; line-height: 1.5; }
h1 { font-size: 24px; line-height: 1.25; margin: 0 0 16px 0; }
p { margin: 0 0 16px 0; }
.button { display: inline-block; background: #18181b; color: #ffffff; font-weight: bold;
          text-decoration: none; padding: 12px 24px; border-radius: 4px; }
.offer { border: 2px dashed #18181b; padding: 12px; margin: 0 0 16px 0; text-align: center; }
.footer { padding: 24px; font-size: 12px; color: #71717a; }
.footer a { color: #71717a; }
</style>
</head>
<body>
{% if message.preheader is defined %}
<div class="preheader" style="display: none; max-height: 0; overflow: hidden;">\
{{ message.preheader }}</div>
{% endif %}
<table role="presentation" class="wrapper" width="100%" cellpadding="0" cellspacing="0">
<tr><td>
<table role="presentation" class="container" cellpadding="0" cellspacing="0">
<tr><td class="header">{% block header %}{{ brand.logo() }}{% endblock %}</td></tr>
<tr><td class="content">
{% block content %}
<h1>{{ message.headline }}</h1>
{% if message.body is defined %}
{{ message.body | paragraphs }}
{% endif %}
{% if message.offer is defined %}
{{ brand.offer(message.offer) }}
{% endif %}
{% if message.cta is defined %}
{{ brand.button(message.cta.text, links.click(message.cta.url)) }}
{% endif %}
{% if recommendations %}
{{ brand.recommendations(recommendations, links) }}
{% endif %}
{% endblock %}
</td></tr>
<tr><td class="footer">{% block footer %}{{ brand.footer(links.unsubscribe, message) }}\
{% endblock %}</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"""

_BRAND = """\
{% set name = "omni-journey" %}
{% macro logo() %}<span class="brand">{{ name }}</span>{% endmacro %}
{% macro button(text, url) %}
<table role="presentation" cellpadding="0" cellspacing="0"><tr><td>\
<a class="button" href="{{ url }}">{{ text }}</a></td></tr></table>
{% endmacro %}
{% macro offer(offer) %}
<div class="offer">{% if offer is mapping %}{{ offer.text }}\
{% if offer.code is defined %}<br><strong>{{ offer.code }}</strong>{% endif %}\
{% else %}{{ offer }}{% endif %}</div>
{% endmacro %}
{% macro recommendations(items, links) %}
<p><strong>You might also like</strong></p>
{% for item in items %}
<p><a href="{{ links.click(item.url) }}">{{ item.name }}</a></p>
{% endfor %}
{% endmacro %}
{% macro footer(unsubscribe_url, message) %}
{% set because = "You receive this email because you are a customer of " ~ name ~ "." %}
<p>{{ message.footer | default(because) }}</p>
<p><a href="{{ unsubscribe_url }}">{{ message.unsubscribe_text | default("Unsubscribe") }}</a></p>
{% endmacro %}
"""

_SMS = """\
{{ message.headline }}{% if message.cta is defined %} {{ links.click(message.cta.url) }}{% endif +%}
{% set footer = message.sms_footer | default("Reply STOP to opt out") %}
{% if footer %}
{{ footer }}
{% endif %}
"""

BUILTIN_TEMPLATES: Final[Mapping[str, str]] = {
    "_partials/base.html": _BASE,
    "_partials/brand.html": _BRAND,
    DEFAULT_EMAIL: '{% extends "_partials/base.html" %}\n',
    DEFAULT_SMS: _SMS,
}

# The push and WhatsApp variants a message gets without push.yaml / whatsapp.yaml:
# the same shape as those files, rendered the same way.
DEFAULT_PUSH: Final[Mapping[str, str]] = {
    "title": "{{ message.headline }}",
    "body": (
        "{{ (message.body if message.body is defined else message.subject)"
        " | one_line | truncate(178, end='…') }}"
    ),
    "image": "{{ message.image if message.image is defined else '' }}",
    "deep_link": (
        "{% if message.deep_link is defined %}{{ message.deep_link }}"
        "{% elif message.cta is defined %}{{ links.click(message.cta.url) }}{% endif %}"
    ),
}
DEFAULT_WHATSAPP: Final[Mapping[str, str]] = {
    "body": (
        "*{{ message.headline }}*"
        "{% if message.body is defined +%}\n\n{{ message.body }}{% endif +%}"
        "{% if message.cta is defined +%}\n\n{{ message.cta.text }}: "
        "{{ links.click(message.cta.url) }}{% endif +%}"
    ),
}
