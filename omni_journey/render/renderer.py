"""Render one message for one customer on one channel.

The shared content (``message.yaml`` and its locale files) is rendered first, each
value a template of its own; the channel variant then sees it as ``message``. A channel
without a variant file gets the built-in one, filled from the shared content, so every
message works on every channel. What comes out is checked (subject length, SMS parts,
push size, the email's text part) before anyone could send it.

A :class:`Renderer` caches what it reads and compiles: make one per batch or command.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import css_inline
from jinja2 import Template
from pydantic import SecretStr

from omni_journey.render.assess import (
    Where,
    assess_email,
    assess_push,
    assess_sms,
    assess_whatsapp,
)
from omni_journey.render.context import RenderContext
from omni_journey.render.defaults import DEFAULT_EMAIL, DEFAULT_PUSH, DEFAULT_SMS, DEFAULT_WHATSAPP
from omni_journey.render.environment import build_environment
from omni_journey.render.errors import RenderError
from omni_journey.render.html_text import html_to_text
from omni_journey.render.links import LinkSigner, MessageLinks
from omni_journey.render.locate import Target, diagnose, file_document
from omni_journey.render.options import RenderOptions
from omni_journey.render.rendered import (
    CHANNELS,
    RenderedEmail,
    RenderedMessage,
    RenderedPush,
    RenderedSms,
    RenderedWhatsApp,
)
from omni_journey.render.shapes import PUSH_FIELDS, WHATSAPP_FIELDS, Field, content_problems
from omni_journey.render.shapes import variant_problems as shape_problems
from omni_journey.render.sms import measure_sms
from omni_journey.render.source import (
    MESSAGE_KEY,
    Content,
    MessageFolder,
    load_content,
    normalize_locale,
)
from omni_journey.settings import Settings
from omni_journey.spec.diagnostics import Diagnostic, did_you_mean, one_of, quoted
from omni_journey.spec.loader import Document, load_yaml
from omni_journey.spec.naming import YamlPath

__all__ = ["Renderer", "tidy_text"]

_BLANK_LINES = re.compile(r"\n{3,}")


def tidy_text(text: str) -> str:
    """Trailing spaces off every line, at most one blank line in a row, no blank edges."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class _Job:
    """One render: which message, channel and locale, with what."""

    key: str
    channel: str
    folder: MessageFolder
    locale: str | None
    content: Content
    variables: dict[str, Any]
    links: MessageLinks
    # validate's mode: content problems are collected here (and the raw value kept) so
    # the channel variant is still checked; ``None`` stops at the first problem.
    collected: list[Diagnostic] | None = None

    def fail(self, diagnostic: Diagnostic) -> NoReturn:
        raise RenderError(self.key, self.channel, diagnostic)


class Renderer:
    """Renders and checks the messages of one templates folder."""

    def __init__(
        self,
        templates_dir: Path,
        *,
        secret_key: SecretStr | str,
        options: RenderOptions | None = None,
        shown_dir: str | None = None,
    ) -> None:
        self.templates_dir = Path(templates_dir)
        # how paths print in diagnostics (default: the templates folder as given)
        self.shown_dir = shown_dir or self.templates_dir.as_posix()
        self.options = options or RenderOptions()
        self.signer = LinkSigner(secret_key, self.options.link_base_url)
        self.environment = build_environment(self.templates_dir)
        self._inliner = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)
        self._strings: dict[str, Template] = {}
        self._folders: dict[str, MessageFolder | None] = {}
        self._contents: dict[tuple[str, str | None], tuple[Content | None, list[Diagnostic]]] = {}
        self._variants: dict[tuple[str, str], tuple[Document | None, list[Diagnostic]]] = {}

    @classmethod
    def from_settings(
        cls,
        templates_dir: Path,
        settings: Settings,
        options: RenderOptions | None = None,
        shown_dir: str | None = None,
    ) -> Renderer:
        """A renderer signing links with ``OMNI_SECRET_KEY``, limits from ``settings``."""
        return cls(
            templates_dir,
            secret_key=settings.secret_key,
            options=options or RenderOptions.from_settings(settings),
            shown_dir=shown_dir,
        )

    def diagnose(self, error: BaseException, target: Target) -> Diagnostic:
        return diagnose(error, target, self.templates_dir, self.shown_dir)

    # --- reading the folder (cached) ---------------------------------------------

    def message_keys(self) -> list[str]:
        """Every message folder under the templates folder (``_partials`` is not one)."""
        if not self.templates_dir.is_dir():
            return []
        return sorted(
            path.name
            for path in self.templates_dir.iterdir()
            if path.is_dir() and MESSAGE_KEY.fullmatch(path.name)
        )

    def folder(self, key: str, channel: str = "*") -> MessageFolder:
        """The folder of message ``key``; :class:`RenderError` ``unknown-message`` if none."""
        if key not in self._folders:
            self._folders[key] = MessageFolder.open(self.templates_dir, key, self.shown_dir)
        folder = self._folders[key]
        if folder is None:
            close = did_you_mean(key, self.message_keys())
            raise RenderError(
                key,
                channel,
                Diagnostic(
                    path=f"{self.shown_dir}/{key}",
                    line=1,
                    col=1,
                    code="unknown-message",
                    message=f"there is no message {quoted(key)}: no folder "
                    f"{self.shown_dir}/{key}/ with a message.yaml",
                    hint=f'did you mean "{close}"?' if close else None,
                ),
            )
        return folder

    def content(
        self, folder: MessageFolder, locale: str | None
    ) -> tuple[Content | None, list[Diagnostic]]:
        """The shared content for ``locale`` and every problem with it."""
        cache_key = (folder.key, locale)
        if cache_key not in self._contents:
            content = load_content(folder, locale)
            if content is None:
                problem = Diagnostic(
                    path=folder.show("message.yaml"),
                    line=1,
                    col=1,
                    code="missing-content",
                    message=f"message {quoted(folder.key)} has no message.yaml",
                    expected="subject, headline and the rest of the shared content",
                    hint="create message.yaml in the message folder",
                )
                self._contents[cache_key] = (None, [problem])
            else:
                problems = [*content.diagnostics, *content_problems(content)]
                self._contents[cache_key] = (content, problems)
        return self._contents[cache_key]

    def variant(
        self, folder: MessageFolder, name: str, fields: Mapping[str, Field], what: str
    ) -> tuple[Document | None, list[Diagnostic]]:
        """A YAML variant (``push.yaml``, ``whatsapp.yaml``) and its problems."""
        cache_key = (folder.key, name)
        if cache_key not in self._variants:
            loaded = load_yaml(folder.directory / name, folder.show(name), noun=what)
            problems = list(loaded.diagnostics)
            if loaded.document is not None:
                problems += shape_problems(loaded.document, fields, what)
            self._variants[cache_key] = (loaded.document, problems)
        return self._variants[cache_key]

    # --- rendering -----------------------------------------------------------------

    def render(self, message_key: str, channel: str, context: RenderContext) -> RenderedMessage:
        """Render ``message_key`` on ``channel`` for the customer in ``context``.

        Raises :class:`RenderError` with a stable code and the file and line at fault.
        """
        rendered, _ = self._run(message_key, channel, context, collect=False)
        assert rendered is not None  # without collecting, a problem raises
        return rendered

    def problems(
        self, message_key: str, channel: str, context: RenderContext
    ) -> tuple[RenderedMessage | None, list[Diagnostic]]:
        """Render as :meth:`render` does, but collect every problem instead of stopping
        at the first: a value of the shared content that fails is reported and used
        unrendered, so the variant is checked too. (What ``validate`` uses.)"""
        try:
            return self._run(message_key, channel, context, collect=True)
        except RenderError as error:
            return None, [error.diagnostic]

    def _run(
        self, message_key: str, channel: str, context: RenderContext, *, collect: bool
    ) -> tuple[RenderedMessage | None, list[Diagnostic]]:
        if channel not in CHANNELS:
            raise RenderError(
                message_key,
                channel,
                Diagnostic(
                    path=f"{self.shown_dir}/{message_key}",
                    line=1,
                    col=1,
                    code="invalid-value",
                    message=f"there is no channel {quoted(channel)}",
                    expected=one_of(CHANNELS),
                ),
            )
        folder = self.folder(message_key, channel)
        locale = normalize_locale(context.locale)
        content, problems = self.content(folder, locale)
        errors = [p for p in problems if p.is_error]
        if content is None or errors:
            raise RenderError(message_key, channel, errors[0])
        links = MessageLinks(self.signer, context.customer_id, channel, message_key)
        variables: dict[str, Any] = {**context.variables(), "links": links}
        collected: list[Diagnostic] | None = [] if collect else None
        job = _Job(message_key, channel, folder, locale, content, variables, links, collected)
        variables["message"] = self._render_content(job, content.data, ())
        render_channel: Callable[[_Job], tuple[RenderedMessage, list[Diagnostic]]] = {
            "email": self._email,
            "sms": self._sms,
            "push": self._push,
            "whatsapp": self._whatsapp,
        }[channel]
        try:
            rendered, found = render_channel(job)
        except RenderError as error:
            if collected is None:
                raise
            return None, [*collected, error.diagnostic]
        if collected is not None:
            return replace(rendered, warnings=tuple(found)), [*collected, *found]
        for problem in found:
            if problem.is_error:
                job.fail(problem)
        return replace(rendered, warnings=tuple(found)), found

    def _render_content(self, job: _Job, value: Any, path: YamlPath) -> Any:
        if isinstance(value, str):
            target = Target(job.content.origin(path), yaml_path=path)
            if job.collected is None:
                return self._render_string(job, value, target)
            try:
                return self._render_string(job, value, target)
            except RenderError as error:
                job.collected.append(error.diagnostic)
                return value
        if isinstance(value, Mapping):
            return {k: self._render_content(job, v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._render_content(job, v, (*path, i)) for i, v in enumerate(value)]
        return value

    def _render_string(self, job: _Job, source: str, target: Target) -> str:
        try:
            template = self._strings.get(source)
            if template is None:
                template = self._strings[source] = self.environment.from_string(source)
            return template.render(job.variables)
        except Exception as error:
            job.fail(self.diagnose(error, target))

    def _render_file(self, job: _Job, name: str | None, default: str, label: str) -> str:
        """The variant file ``name`` of the message, or the built-in ``default``."""
        if name is None:
            template_name, target = default, Target(job.content.default, label=label)
        else:
            template_name = f"{job.key}/{name}"
            target = Target(file_document(job.folder.directory / name, job.folder.show(name)))
        try:
            return self.environment.get_template(template_name).render(job.variables)
        except Exception as error:
            job.fail(self.diagnose(error, target))

    def _where(self, job: _Job, name: str | None, fallback: YamlPath) -> Where:
        """Where problems with a variant's output point: its file, or the shared content."""
        if name is None:
            return job.content.origin(fallback), fallback
        return file_document(job.folder.directory / name, job.folder.show(name)), ()

    # --- channels ------------------------------------------------------------------

    def _email(self, job: _Job) -> tuple[RenderedMessage, list[Diagnostic]]:
        message = job.variables["message"]
        html_name = job.folder.find("email", job.locale)
        html = self._render_file(job, html_name, DEFAULT_EMAIL, "email layout")
        text_name = job.folder.find("email_text", job.locale)
        if text_name is None:
            text = html_to_text(html)
        else:
            text = tidy_text(self._render_file(job, text_name, DEFAULT_EMAIL, "email layout"))
        try:
            inlined = self._inliner.inline(html)
        except ValueError as error:  # css_inline.InlineError: CSS it cannot parse
            where = self._where(job, html_name, ())
            job.fail(self.diagnose(error, Target(where[0])))
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
        text_at = self._where(job, text_name or html_name, ("body",))
        return email, assess_email(email, subject_at, text_at, self.options)

    def _sms(self, job: _Job) -> tuple[RenderedMessage, list[Diagnostic]]:
        name = job.folder.find("sms", job.locale)
        text = tidy_text(self._render_file(job, name, DEFAULT_SMS, "SMS"))
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
        where = self._where(job, name, ("headline",))
        sources = ([where[0]] if name else []) + list(job.content.documents)
        return sms, assess_sms(sms, where, sources, self.options)

    def _yaml_variant(
        self,
        job: _Job,
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
        doc, problems = self.variant(job.folder, name, fields, what)
        errors = [p for p in problems if p.is_error]
        if doc is None or errors:
            job.fail(errors[0])
        spec = doc.data if isinstance(doc.data, Mapping) else {}
        return spec, lambda path: Target(doc, yaml_path=path), (doc, ())

    def _push(self, job: _Job) -> tuple[RenderedMessage, list[Diagnostic]]:
        spec, target, where = self._yaml_variant(
            job, "push", PUSH_FIELDS, "push notification", DEFAULT_PUSH
        )

        def field(name: str) -> str:
            value = spec.get(name)
            if value is None:
                return ""
            return self._render_string(job, str(value), target((name,))).strip()

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
            data[str(key)] = self._render_string(job, str(value), target(("data", key)))
        push = RenderedPush(
            job.key,
            job.content.locale,
            title=_one_line(field("title")),
            body=tidy_text(field("body")),
            image=field("image") or None,
            deep_link=deep_link,
            data=data,
        )
        return push, assess_push(push, where, self.options)

    def _whatsapp(self, job: _Job) -> tuple[RenderedMessage, list[Diagnostic]]:
        spec, target, where = self._yaml_variant(
            job, "whatsapp", WHATSAPP_FIELDS, "WhatsApp message", DEFAULT_WHATSAPP
        )
        if spec.get("body") is not None:
            body = self._render_string(job, str(spec["body"]), target(("body",)))
        else:
            builtin = Target(job.content.default, label="WhatsApp message")
            body = self._render_string(job, DEFAULT_WHATSAPP["body"], builtin)
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
                language = self._render_string(job, str(template["language"]), target(path))
            params = tuple(
                self._render_string(job, str(p), target(("template", "parameters", i))).strip()
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
