"""The collector's signed-link endpoints: one-click unsubscribe and tracked clicks.

``GET /l/u/<token>`` shows a page with one button; ``POST /l/u/<token>`` (the button, or
a mail client doing RFC 8058 one-click with ``List-Unsubscribe=One-Click``) withdraws
consent on the link's channel, suppresses the customer's address there and writes a
``message.unsubscribed`` event, in one transaction, before answering. ``GET /l/c/<token>``
writes a ``message.clicked`` event and redirects (302) to the URL the link was signed
with. Tokens are checked with :class:`omni_journey.links.LinkSigner`; a bad one is 400
with no detail. Nothing here logs a customer id, an address or a token.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any, Final

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from omni_journey.errors import StoreError
from omni_journey.identity.changes import record_consent
from omni_journey.identity.survivors import survivor_of
from omni_journey.links import InvalidLinkError, LinkClaims, LinkKind, LinkSigner
from omni_journey.reach.suppressions import suppress
from omni_journey.settings import Settings
from omni_journey.store.events import append_events

__all__ = [
    "CLICK_PATH",
    "UNSUBSCRIBE_PATH",
    "UnsubscribeResult",
    "link_routes",
    "record_click",
    "redact_link_paths",
    "unsubscribe",
]

UNSUBSCRIBE_PATH: Final = "/l/u/{token}"
CLICK_PATH: Final = "/l/c/{token}"
CONSENT_SOURCE: Final = "unsubscribe"

_log = logging.getLogger("omni_journey.collector.app")
_ADDRESS_OF: Final = {"email": "email", "sms": "phone", "whatsapp": "phone"}
_NOUNS: Final = {
    "email": "emails",
    "sms": "text messages",
    "push": "push notifications",
    "whatsapp": "WhatsApp messages",
}
_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}
_PAGE_HEADERS: Final = {
    **_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
}

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class UnsubscribeResult:
    """``changed``: consent went from given (or unknown) to withdrawn by this call;
    ``suppressed``: an address was known for the channel (and is suppressed now)."""

    changed: bool
    suppressed: bool


def _live_customer(connection: Connection, customer_id: str) -> Any:
    """The customer row a (maybe merged) id stands for now; ``None`` if unknown."""
    return survivor_of(connection, customer_id)


def _event_id(name: str, token: str) -> str:
    return f"{name}:link:{hashlib.sha256(token.encode('ascii')).hexdigest()[:40]}"


def unsubscribe(
    engine: Engine, claims: LinkClaims, token: str, *, now: datetime
) -> UnsubscribeResult:
    """Apply a verified unsubscribe link, in one transaction; repeating it changes nothing.

    Consent on ``claims.channel`` becomes false (source ``unsubscribe``) for the customer
    the link names (following merges), the channel's address is suppressed (reason
    ``unsubscribe``) when the profile has one, and ``message.unsubscribed`` is written
    with an id derived from the token, so a second click stores nothing new.
    """
    channel = claims.channel
    with engine.begin() as connection:
        customer = _live_customer(connection, claims.customer_id)
        owner = str(customer.id) if customer is not None else claims.customer_id
        changed = record_consent(
            connection, owner, channel, granted=False, source=CONSENT_SOURCE, at=now,
            only_if_changed=True,
        )  # fmt: skip
        column = _ADDRESS_OF.get(channel)
        address = getattr(customer, column) if customer is not None and column else None
        if address:
            suppress(connection, [(channel, address, CONSENT_SOURCE)], now)
        append_events(connection, [
            {"event_id": _event_id("message.unsubscribed", token),
             "name": "message.unsubscribed", "customer_id": owner, "at": now, "received_at": now,
             "properties": {"channel": channel, "message": claims.message, "source": "link"}},
        ])  # fmt: skip
    return UnsubscribeResult(changed=changed, suppressed=bool(address))


def record_click(engine: Engine, claims: LinkClaims, *, now: datetime) -> None:
    """Write one ``message.clicked`` event (every click is one: ids are random)."""
    with engine.begin() as connection:
        customer = _live_customer(connection, claims.customer_id)
        owner = str(customer.id) if customer is not None else claims.customer_id
        append_events(connection, [
            {"event_id": f"message.clicked:link:{uuid.uuid4().hex}",
             "name": "message.clicked", "customer_id": owner, "at": now, "received_at": now,
             "properties": {"channel": claims.channel, "message": claims.message,
                            "url": claims.url, "source": "link"}},
        ])  # fmt: skip


# --- pages --------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f6;color:#222}"
    "main{max-width:28rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px}"
    "h1{font-size:1.4rem;margin-top:0}"
    "button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:4px;"
    "background:#222;color:#fff;cursor:pointer}"
)


def _page(title: str, body: str, status: int = 200, **headers: str) -> HTMLResponse:
    html = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head>\n<body><main><h1>{escape(title)}</h1>\n{body}\n"
        "</main></body></html>\n"
    )
    return HTMLResponse(html, status_code=status, headers={**_PAGE_HEADERS, **headers})


def _noun(channel: str) -> str:
    return escape(_NOUNS.get(channel, "messages"))


def _confirm_page(claims: LinkClaims) -> HTMLResponse:
    return _page(
        "Unsubscribe",
        f"<p>Stop receiving these {_noun(claims.channel)}?</p>\n"
        '<form method="post">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>',
    )


def _done_page(claims: LinkClaims) -> HTMLResponse:
    return _page(
        "You are unsubscribed",
        f"<p>You will not receive these {_noun(claims.channel)} from us any more.</p>",
    )


def _invalid_page() -> HTMLResponse:
    return _page("This link does not work", "<p>Please use the link from the message.</p>", 400)


def _unavailable_page() -> HTMLResponse:
    return _page(
        "Please try again",
        "<p>We could not record that just now. Please try again in a minute.</p>",
        503,
        **{"Retry-After": "60"},
    )


# --- endpoints ----------------------------------------------------------------------


def link_routes(engine: Engine, settings: Settings, clock: Clock) -> list[Route]:
    """The ``/l/u/<token>`` and ``/l/c/<token>`` routes (``OMNI_LINK_BASE_URL`` is the
    collector's public address followed by ``/l``)."""
    signer = LinkSigner.from_settings(settings)

    def claims_of(request: Request, kind: LinkKind) -> tuple[LinkClaims, str] | None:
        token = str(request.path_params["token"])
        try:
            return signer.verify_token(kind, token), token
        except InvalidLinkError as error:
            _log.info("refused %s link: %s", kind, error.reason)
            return None

    async def unsubscribe_endpoint(request: Request) -> Response:
        verified = claims_of(request, "unsubscribe")
        if verified is None:
            return _invalid_page()
        claims, token = verified
        if request.method != "POST":  # GET and HEAD only show the button: link scanners
            return _confirm_page(claims)  # and previews must never unsubscribe anyone
        try:
            result = await run_in_threadpool(unsubscribe, engine, claims, token, now=clock())
        except (SQLAlchemyError, StoreError) as error:
            _log.error("store unavailable for unsubscribe: %s", type(error).__name__)
            return _unavailable_page()
        _log.info(
            "unsubscribed via link: channel=%s message=%s changed=%s suppressed=%s",
            claims.channel,
            claims.message,
            result.changed,
            result.suppressed,
        )
        return _done_page(claims)

    async def click_endpoint(request: Request) -> Response:
        verified = claims_of(request, "click")
        if verified is None:
            return _invalid_page()
        claims, _token = verified
        if claims.url is None:  # verify_token already refuses this; never redirect blind
            return _invalid_page()
        if request.method == "GET":  # HEAD (link checkers) redirects without counting
            try:
                await run_in_threadpool(record_click, engine, claims, now=clock())
            except (SQLAlchemyError, StoreError) as error:
                # The customer still gets where they clicked; only the count is lost.
                _log.error("click not recorded, store unavailable: %s", type(error).__name__)
        return RedirectResponse(claims.url, status_code=302, headers=_HEADERS)

    return [
        Route(UNSUBSCRIBE_PATH, unsubscribe_endpoint, methods=["GET", "POST"]),
        Route(CLICK_PATH, click_endpoint, methods=["GET"]),
    ]


# --- access logs --------------------------------------------------------------------

_LINK_PATH = re.compile(r"(/l/[uc]/)[^\s?\"]+")


class _RedactLinkPaths(logging.Filter):
    """Blanks link tokens in uvicorn's access log: a token names a customer and works
    as a capability (anyone holding an unsubscribe token can use it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                _LINK_PATH.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = _LINK_PATH.sub(r"\1[redacted]", record.msg)
        return True


_REDACTOR: Final = _RedactLinkPaths()


def redact_link_paths(logger_name: str = "uvicorn.access") -> None:
    """Install the token redaction on ``logger_name`` (once; repeating is harmless)."""
    logging.getLogger(logger_name).addFilter(_REDACTOR)
