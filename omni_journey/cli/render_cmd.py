"""``omni-journey preview``: one message rendered for one real customer from the store."""

from __future__ import annotations

import hashlib
import json
import re
import webbrowser
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from omni_journey.cli.reading import open_store_for_reading
from omni_journey.delivery.base import Content, OutgoingMessage
from omni_journey.delivery.mime import build_email
from omni_journey.render import (
    CHANNELS,
    RenderedEmail,
    RenderedMessage,
    RenderedPush,
    RenderedSms,
    RenderedWhatsApp,
    RenderError,
    TemplateRenderer,
)
from omni_journey.render.options import FCM_MAX_PAYLOAD_BYTES
from omni_journey.render.preview import PreviewError, load_preview_subject
from omni_journey.settings import Settings, get_settings

commands = typer.Typer()


class ChannelName(StrEnum):
    email = "email"
    sms = "sms"
    push = "push"
    whatsapp = "whatsapp"


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _preview_files(
    settings: Settings, message: str, customer_id: str, locale: str | None
) -> tuple[Path, Path]:
    """``<OMNI_HOME>/previews/<message>-<customer digest>[-<locale>].html`` and ``.eml``;
    the customer id is hashed, so no address ends up in a file name."""
    digest = hashlib.sha256(customer_id.encode()).hexdigest()[:10]
    stem = f"{message}-{digest}" + (f"-{_UNSAFE.sub('_', locale)}" if locale else "")
    folder = settings.home / "previews"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # rendered for a real customer
    return folder / f"{stem}.html", folder / f"{stem}.eml"


def _show_email(
    email: RenderedEmail, settings: Settings, customer_id: str, to: str | None, locale: str | None
) -> Path:
    html_file, eml_file = _preview_files(settings, email.message_key, customer_id, locale)
    html_file.write_text(email.html, encoding="utf-8")
    outgoing = OutgoingMessage(
        id=0,
        idempotency_key=f"preview:{email.message_key}",
        channel="email",
        customer_id=customer_id,
        to=to or "customer@example.invalid",
        content=Content.of(email),
        at=datetime.now(UTC),
        message_key=email.message_key,
        unsubscribe_url=email.unsubscribe_url,
    )
    eml_file.write_bytes(build_email(outgoing, sender=settings.email_from).as_bytes())
    typer.echo(f"subject:   {email.subject}")
    if email.preheader:
        typer.echo(f"preheader: {email.preheader}")
    typer.echo(f"html:      {html_file}")
    typer.echo(f"eml:       {eml_file}")
    typer.echo("text part:")
    typer.echo(_indent(email.text))
    return html_file


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" if line else "" for line in text.split("\n"))


def _show(rendered: RenderedMessage) -> None:
    if isinstance(rendered, RenderedSms):
        typer.echo(
            f"{rendered.encoding}, {rendered.segments} segment(s), {rendered.units} "
            f"{'septets' if rendered.encoding == 'GSM-7' else 'UTF-16 units'}, "
            f"{len(rendered.text)} characters"
        )
        typer.echo(_indent(rendered.text))
    elif isinstance(rendered, RenderedPush):
        typer.echo(f"FCM payload: {rendered.size} bytes (limit {FCM_MAX_PAYLOAD_BYTES})")
        typer.echo(_indent(json.dumps(rendered.fcm_message, indent=2, ensure_ascii=False)))
    elif isinstance(rendered, RenderedWhatsApp):
        typer.echo("inside the 24-hour service window (free text):")
        typer.echo(_indent(rendered.body))
        if rendered.template:
            typer.echo(
                f"outside it: template {rendered.template} ({rendered.language}) with "
                f"parameters {json.dumps(list(rendered.params), ensure_ascii=False)}"
            )
        else:
            typer.echo("outside it: no template (whatsapp.yaml has none): not sent")


@commands.command()
def preview(
    message: Annotated[str, typer.Argument(help="The message: a folder name in templates/.")],
    customer: Annotated[str, typer.Option("--customer", help="The customer id to render for.")],
    channel: Annotated[
        list[ChannelName] | None,
        typer.Option("--channel", help="Channel(s) to render (default: all four)."),
    ] = None,
    locale: Annotated[
        str | None, typer.Option(help="Render in this locale instead of the customer's.")
    ] = None,
    event_id: Annotated[
        str | None,
        typer.Option("--event-id", help="A stored event of the customer to use as the trigger."),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the email preview in a web browser.")
    ] = False,
) -> None:
    """Render MESSAGE for a real customer: the email as an .html (and .eml) file under
    OMNI_HOME/previews/, the SMS with its encoding and segments, the push payload with
    its size, the WhatsApp text and template. Exit 1 if anything fails to render."""
    settings = get_settings()
    engine = open_store_for_reading(settings)
    try:
        subject = load_preview_subject(engine, customer, event_id=event_id, locale=locale)
    except PreviewError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    renderer = TemplateRenderer.from_settings(settings.project_dir / "templates", settings)
    try:
        renderer.folder(message)
    except RenderError as error:
        typer.echo(f"error: {error.diagnostic.message}", err=True)
        if error.diagnostic.hint:
            typer.echo(f"  hint: {error.diagnostic.hint}", err=True)
        raise typer.Exit(1) from None
    if subject.merged_from:
        typer.echo(f"customer {customer} was merged into {subject.context.customer_id}")
    failed = False
    html_file: Path | None = None
    channels = [c.value for c in channel] if channel else list(CHANNELS)
    for name in channels:
        typer.echo(f"== {name}")
        try:
            rendered = renderer.render(message, name, subject.context)
        except RenderError as error:
            typer.echo(error.diagnostic.format(), err=True)
            failed = True
            continue
        if isinstance(rendered, RenderedEmail):
            html_file = _show_email(
                rendered, settings, subject.context.customer_id, subject.email, locale
            )
        else:
            _show(rendered)
        for warning in rendered.warnings:
            typer.echo(warning.format(), err=True)
    if open_browser and html_file is not None:
        webbrowser.open(html_file.resolve().as_uri())
    raise typer.Exit(1 if failed else 0)
