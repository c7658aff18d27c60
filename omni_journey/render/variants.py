"""The channel variants: what one render makes of a message on email, SMS, push and
WhatsApp, each from its variant file or the built-in one, checked before anyone could
send it (subject length, SMS parts, push size, the email's text part).

Each function takes a :class:`~omni_journey.render.job.RenderJob` whose ``message``
variable is already rendered, and returns the message with every problem found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import css_inline

from omni_journey.render.assess import (
    Where,
    assess_email,
    assess_push,
    assess_sms,
    assess_whatsapp,
)
from omni_journey.render.defaults import DEFAULT_EMAIL, DEFAULT_PUSH, DEFAULT_SMS, DEFAULT_WHATSAPP
from omni_journey.render.html_text import html_to_text
from omni_journey.render.job import RenderJob
from omni_journey.render.locate import Target
from omni_journey.render.options import RenderOptions
from omni_journey.render.rendered import (
    RenderedEmail,
    RenderedMessage,
    RenderedPush,
    RenderedSms,
    RenderedWhatsApp,
)
from omni_journey.render.shapes import PUSH_FIELDS, WHATSAPP_FIELDS, Field
from omni_journey.render.sms import measure_sms
from omni_journey.spec.diagnostics import Diagnostic
from omni_journey.spec.naming import YamlPath

__all__ = [
    "Variant",
    "render_email",
    "render_push",
    "render_sms",
    "render_whatsapp",
    "tidy_text",
]

Variant = tuple[RenderedMessage, list[Diagnostic]]
_BLANK_LINES = re.compile(r"\n{3,}")


def tidy_text(text: str) -> str:
    """Trailing spaces off every line, at most one blank line in a row, no blank edges."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def render_email(job: RenderJob, inliner: css_inline.CSSInliner, options: RenderOptions) -> Variant:
    """HTML with its CSS inlined, and the text part: ``email.txt`` when the message has
    one, else read from the HTML as the template wrote it (before CSS inlining)."""
    message = job.variables["message"]
    html_name = job.folder.find("email", job.locale)
    html = job.render_file(html_name, DEFAULT_EMAIL, "email layout")
    text_name = job.folder.find("email_text", job.locale)
    if text_name is None:
        text = html_to_text(html)
    else:
        text = tidy_text(job.render_file(text_name, DEFAULT_EMAIL, "email layout"))
    try:
        inlined = inliner.inline(html)
    except ValueError as error:  # css_inline.InlineError: CSS it cannot parse
        where = job.where(html_name, ())
        job.fail(job.library.diagnose(error, Target(where[0])))
    preheader = message.get("preheader")
    email = RenderedEmail(
        job.key,
        job.content.locale,
        subject=_one_line(str(message["subject"])),
        preheader=_one_line(str(preheader)) if preheader is not None else None,
        html=inlined,
        text=text,
        unsubscribe_url=job.links.unsubscribe,
    )
    subject_at = (job.content.origin(("subject",)), ("subject",))
    # where a missing text part points (its file is read only if it is missing)
    text_at = partial(job.where, text_name or html_name, ("body",))
    return email, assess_email(email, subject_at, text_at, options)


def render_sms(job: RenderJob, options: RenderOptions) -> Variant:
    name = job.folder.find("sms", job.locale)
    text = tidy_text(job.render_file(name, DEFAULT_SMS, "SMS"))
    info = measure_sms(text)
    sms = RenderedSms(
        job.key,
        job.content.locale,
        text=text,
        encoding=info.encoding,
        segments=info.segments,
        units=info.units,
        non_gsm=info.non_gsm,
    )
    where = job.where(name, ("headline",))
    sources = ([where[0]] if name else []) + list(job.content.documents)
    return sms, assess_sms(sms, where, sources, options)


def _yaml_variant(
    job: RenderJob,
    variant: str,
    fields: Mapping[str, Field],
    what: str,
    default: Mapping[str, str],
) -> tuple[Mapping[str, Any], Callable[[YamlPath], Target], Where]:
    """The spec of a YAML variant (file or built-in), how to locate its values, and
    where output problems point."""
    name = job.folder.find(variant, job.locale)
    if name is None:
        builtin = Target(job.content.default, label=what)
        return default, lambda _: builtin, (job.content.origin(("headline",)), ("headline",))
    doc, problems = job.library.variant(job.folder, name, fields, what)
    errors = [p for p in problems if p.is_error]
    if doc is None or errors:
        job.fail(errors[0])
    spec = doc.data if isinstance(doc.data, Mapping) else {}
    return spec, lambda path: Target(doc, yaml_path=path), (doc, ())


def render_push(job: RenderJob, options: RenderOptions) -> Variant:
    spec, target, where = _yaml_variant(job, "push", PUSH_FIELDS, "push notification", DEFAULT_PUSH)

    def field(name: str) -> str:
        value = spec.get(name)
        if value is None:
            return ""
        return job.render_string(str(value), target((name,))).strip()

    data: dict[str, str] = {"message": job.key}
    journey = job.variables["journey"]
    if journey.get("key") is not None:
        data["journey"] = str(journey["key"])
    if journey.get("step") is not None:
        data["step"] = str(journey["step"])
    deep_link = field("deep_link") or None
    if deep_link:
        data["deep_link"] = deep_link
    for key, value in (spec.get("data") or {}).items():
        data[str(key)] = job.render_string(str(value), target(("data", key)))
    push = RenderedPush(
        job.key,
        job.content.locale,
        title=_one_line(field("title")),
        body=tidy_text(field("body")),
        image=field("image") or None,
        deep_link=deep_link,
        data=data,
    )
    return push, assess_push(push, where, options)


def render_whatsapp(job: RenderJob) -> Variant:
    spec, target, where = _yaml_variant(
        job, "whatsapp", WHATSAPP_FIELDS, "WhatsApp message", DEFAULT_WHATSAPP
    )
    if spec.get("body") is not None:
        body = job.render_string(str(spec["body"]), target(("body",)))
    else:
        builtin = Target(job.content.default, label="WhatsApp message")
        body = job.render_string(DEFAULT_WHATSAPP["body"], builtin)
    template = spec.get("template")
    name = language = None
    params: tuple[str, ...] = ()
    if isinstance(template, Mapping):
        name = str(template["name"])
        file_name = job.folder.find("whatsapp", job.locale)
        file_locale = job.folder.locale_of(file_name) if file_name else None
        language = (file_locale or "en").replace("-", "_")
        if template.get("language") is not None:
            path: YamlPath = ("template", "language")
            language = job.render_string(str(template["language"]), target(path))
        params = tuple(
            job.render_string(str(p), target(("template", "parameters", i))).strip()
            for i, p in enumerate(template.get("parameters") or [])
        )
    message = RenderedWhatsApp(
        job.key,
        job.content.locale,
        body=tidy_text(body),
        template=name,
        language=language,
        params=params,
    )
    return message, assess_whatsapp(message, where)
