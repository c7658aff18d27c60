"""Who may open the console, and the headers every console answer carries.

Closed unless ``OMNI_CONSOLE_TOKEN`` is set: without it every ``/console`` address
answers 404, as if there were no console. With it, a request needs HTTP Basic
credentials whose password is the token (the user name is free: it names the person
in their browser, nothing checks it), compared in constant time; anything else gets
401 and the browser's login prompt. Only ``GET`` and ``HEAD``: the console reads.

Console addresses name customers (``/console/customers/<id>``, ``?q=<email>``), so
:func:`redact_console_paths` blanks them in uvicorn's access log.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from typing import Final

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from omni_journey.console.html import CSP

__all__ = ["SECURITY_HEADERS", "redact_console_paths", "refusal", "secure"]

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
_CHALLENGE: Final = 'Basic realm="omni-journey console", charset="UTF-8"'


def secure(response: Response) -> Response:
    """``response`` with the console's security headers."""
    response.headers.update(SECURITY_HEADERS)
    return response


def _password(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon else None


def refusal(request: Request, token: SecretStr | None) -> Response | None:
    """The answer that refuses ``request``, or None when it may see the console.

    No token configured: 404 for everything. No credentials, or a wrong password: 401
    with a Basic challenge. Then a method other than GET or HEAD: 405.
    """
    if token is None or not token.get_secret_value():
        return secure(PlainTextResponse("Not Found", status_code=404))
    given = _password(request)
    expected = token.get_secret_value().encode("utf-8")
    if given is None or not hmac.compare_digest(given.encode("utf-8"), expected):
        return secure(
            PlainTextResponse(
                "The console needs the console token (OMNI_CONSOLE_TOKEN) as the password.",
                status_code=401,
                headers={"WWW-Authenticate": _CHALLENGE},
            )
        )
    if request.method not in ("GET", "HEAD"):
        return secure(
            PlainTextResponse("Method Not Allowed", status_code=405, headers={"Allow": "GET, HEAD"})
        )
    return None


# --- access logs --------------------------------------------------------------------

_CONSOLE_PATH: Final = re.compile(
    r"(/console/(?:customers|journeys/[^/\s?\"]+/customers)/?)"
    r"[^\s\"]*|(/console/?)\?[^\s\"]*"
)


def _redact(text: str) -> str:
    return _CONSOLE_PATH.sub(lambda m: (m.group(1) or m.group(2)) + "[redacted]", text)


class _RedactConsolePaths(logging.Filter):
    """Blanks customer ids and searches in console addresses in an access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = _redact(record.msg)
        return True


_REDACTOR: Final = _RedactConsolePaths()


def redact_console_paths(logger_name: str = "uvicorn.access") -> None:
    """Install the redaction on ``logger_name`` (once; repeating is harmless)."""
    logging.getLogger(logger_name).addFilter(_REDACTOR)
