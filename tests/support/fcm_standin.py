"""A local stand-in for FCM HTTP v1 and Google's OAuth token endpoint.

``POST /token`` answers an access token (point a service-account JSON's ``token_uri``
here); ``POST /v1/projects/{id}/messages:send`` answers like FCM, choosing by the
token's prefix: ``unregistered-`` 404 UNREGISTERED, ``invalid-`` 400 INVALID_ARGUMENT
(about the token), ``quota-`` 429 QUOTA_EXCEEDED (no Retry-After, so firebase-admin
does not sleep), ``unavailable-`` 503 UNAVAILABLE; anything else is sent. Errors are
in Google's JSON error format with the FcmError detail firebase-admin reads.

For a while only: :meth:`FcmStandIn.fail` answers the next N sends (to a token holding
``match``) with an error of :data:`ERRORS`; :meth:`FcmStandIn.slow` holds the next N sends
for a while and then sends them, so a client that timed out never hears of it.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCESS_TOKEN = "stand-in-access-token"
_SEND = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
_ERRORS = {
    "unregistered-": (404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
    "invalid-": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                 "The registration token is not a valid FCM registration token"),
    "quota-": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded."),
    "unavailable-": (503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
}  # fmt: skip
#: The errors :meth:`FcmStandIn.fail` can answer, by name.
ERRORS = {
    "unregistered": _ERRORS["unregistered-"],
    "invalid": _ERRORS["invalid-"],
    "quota": _ERRORS["quota-"],
    "unavailable": _ERRORS["unavailable-"],
    "internal": (500, "INTERNAL", "INTERNAL", "Internal error encountered."),
}


@dataclass
class _Fault:
    error: str  # a key of ERRORS; "" for a delay only
    times: int
    match: str
    delay: float = 0.0


class FcmStandIn:
    def __init__(self) -> None:
        self.faults: list[_Fault] = []
        self.sent: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, str]] = []  # (path, token, authorization)
        self.token_requests = 0
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(self, error: str, times: int = 1, match: str = "") -> None:
        """Answer the next ``times`` sends to a token holding ``match`` with ``ERRORS[error]``."""
        with self.lock:
            self.faults.append(_Fault(error, times, match))

    def slow(self, seconds: float, times: int = 1, match: str = "") -> None:
        """Hold the next ``times`` sends to a token holding ``match``, then send them."""
        with self.lock:
            self.faults.append(_Fault("", times, match, seconds))

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.sent.clear()
            self.requests.clear()

    def _take_fault(self, token: str) -> _Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.match in token:
                    fault.times -= 1
                    return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up waiting (slow)

            def _error(self, status: int, canonical: str, fcm_code: str, text: str) -> None:
                self._json(status, {"error": {
                    "code": status, "message": text, "status": canonical,
                    "details": [{
                        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                        "errorCode": fcm_code,
                    }],
                }})  # fmt: skip

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path == "/token":
                    with standin.lock:
                        standin.token_requests += 1
                    self._json(200, {"access_token": ACCESS_TOKEN, "expires_in": 3600,
                                     "token_type": "Bearer"})  # fmt: skip
                    return
                match = _SEND.match(self.path)
                if not match:
                    self._json(404, {"error": {"code": 404, "message": "no such path",
                                               "status": "NOT_FOUND"}})  # fmt: skip
                    return
                message = json.loads(body)["message"]
                token = str(message.get("token", ""))
                with standin.lock:
                    standin.requests.append(
                        (self.path, token, self.headers.get("Authorization", ""))
                    )
                fault = standin._take_fault(token)
                if fault is not None and fault.delay:
                    time.sleep(fault.delay)
                if fault is not None and fault.error:
                    self._error(*ERRORS[fault.error])
                    return
                for prefix, error in _ERRORS.items():
                    if token.startswith(prefix):
                        self._error(*error)
                        return
                name = f"projects/{match.group(1)}/messages/{next(standin._ids)}"
                with standin.lock:
                    standin.sent.append({**message, "name": name})
                self._json(200, {"name": name})

        return Handler

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def fcm_standin() -> Iterator[FcmStandIn]:
    standin = FcmStandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()
