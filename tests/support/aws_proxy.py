"""A small stand-in in front of moto (server mode) for what moto lacks.

- Fault injection: :meth:`AwsProxy.fail` answers the next N calls of a service with an
  error in that service's real wire format (rest-json ``x-amzn-ErrorType``, json
  ``__type``, query XML ``ErrorResponse``), so botocore's own parsing and retries run;
  ``match`` limits a fault to the calls whose body holds those bytes (one recipient; a
  WhatsApp call's base64 message is searched decoded).
  :meth:`AwsProxy.slow` holds the next N calls for a while, then handles them as usual:
  a client that timed out meanwhile never hears that its message was delivered.
  :attr:`AwsProxy.on_call`, when set, runs before each call is handled (a test breaks
  something else at that moment: the database, the disk).
- ``pinpoint-sms-voice-v2`` ``SendTextMessage`` and ``socialmessaging``
  ``SendWhatsAppMessage``, minimally (moto implements neither): requests are recorded
  in :attr:`AwsProxy.sms` / :attr:`AwsProxy.whatsapp`.
- Everything else is forwarded to moto unchanged.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

# signing name -> wire protocol
PROTOCOLS = {
    "ses": "rest-json",
    "sns": "query",
    "sms-voice": "json",
    "social-messaging": "rest-json",
}


@dataclass
class Fault:
    service: str
    status: int  # 0: no error, only the delay
    code: str
    message: str
    times: int
    delay: float = 0.0
    match: bytes | None = None


class AwsProxy:
    def __init__(self, moto_url: str) -> None:
        self.moto = moto_url.removeprefix("http://")
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, str]] = []  # (service, path)
        self.sms: list[dict[str, Any]] = []
        self.whatsapp: list[dict[str, Any]] = []
        self.forwarded: list[tuple[str, bytes]] = []  # (service, body) moto accepted
        self.on_call: Callable[[str], None] | None = None  # (service) before each call
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(
        self,
        service: str,
        status: int,
        code: str,
        message: str = "",
        times: int = 1,
        match: bytes | None = None,
    ) -> None:
        """Answer the next ``times`` calls to ``service`` (signing name) with this error
        (with ``match``: the next calls whose body holds those bytes)."""
        with self.lock:
            self.faults.append(Fault(service, status, code, message or code, times, 0.0, match))

    def slow(
        self, service: str, seconds: float, times: int = 1, match: bytes | None = None
    ) -> None:
        """Hold the next ``times`` calls to ``service`` for ``seconds``, then handle them."""
        with self.lock:
            self.faults.append(Fault(service, 0, "", "", times, seconds, match))

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.calls.clear()
            self.sms.clear()
            self.whatsapp.clear()
            self.forwarded.clear()
            self.on_call = None

    def _take_fault(self, service: str, body: bytes = b"") -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.match is not None and fault.match not in body:
                    continue
                if fault.service == service and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up waiting (slow)

            def _error(self, fault: Fault) -> None:
                protocol = PROTOCOLS.get(fault.service, "rest-json")
                if protocol == "query":
                    kind = "Receiver" if fault.status >= 500 else "Sender"
                    body = (
                        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
                        f"<Error><Type>{kind}</Type><Code>{fault.code}</Code>"
                        f"<Message>{fault.message}</Message></Error>"
                        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
                    ).encode()
                    self._reply(fault.status, body, {"Content-Type": "text/xml"})
                elif protocol == "json":
                    body = json.dumps({"__type": fault.code, "message": fault.message}).encode()
                    self._reply(fault.status, body, {"Content-Type": "application/x-amz-json-1.0"})
                else:
                    body = json.dumps({"message": fault.message}).encode()
                    self._reply(
                        fault.status,
                        body,
                        {"Content-Type": "application/json", "x-amzn-ErrorType": fault.code},
                    )

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                scope = _SCOPE.search(self.headers.get("Authorization", ""))
                service = scope.group(1) if scope else ""
                with proxy.lock:
                    proxy.calls.append((service, self.path))
                if proxy.on_call is not None:
                    proxy.on_call(service)
                searched = body
                if service == "social-messaging":
                    with suppress(ValueError, KeyError, TypeError):
                        searched += base64.b64decode(json.loads(body)["message"])
                fault = proxy._take_fault(service, searched)
                if fault is not None and fault.delay:
                    time.sleep(fault.delay)
                if fault is not None and fault.status:
                    self._error(fault)
                elif service == "sms-voice":
                    self._sms_voice(body)
                elif service == "social-messaging":
                    self._whatsapp(body)
                else:
                    self._forward(service, body)

            def _sms_voice(self, body: bytes) -> None:
                target = self.headers.get("X-Amz-Target", "")
                request = json.loads(body or b"{}")
                if target != "PinpointSMSVoiceV2.SendTextMessage":
                    self._error(Fault("sms-voice", 400, "UnknownOperationException", target, 1))
                    return
                if not _E164.match(str(request.get("DestinationPhoneNumber", ""))):
                    body = json.dumps(
                        {
                            "__type": "ValidationException",
                            "message": "Invalid destination phone number",
                            "Reason": "CANNOT_PARSE",
                            "Fields": [{"Name": "DestinationPhoneNumber", "Message": "invalid"}],
                        }
                    ).encode()
                    self._reply(400, body, {"Content-Type": "application/x-amz-json-1.0"})
                    return
                message_id = str(uuid.uuid4())
                with proxy.lock:
                    proxy.sms.append({**request, "MessageId": message_id})
                self._reply(
                    200,
                    json.dumps({"MessageId": message_id}).encode(),
                    {"Content-Type": "application/x-amz-json-1.0"},
                )

            def _whatsapp(self, body: bytes) -> None:
                if self.path != "/v1/whatsapp/send":
                    self._error(Fault("social-messaging", 404, "ResourceNotFoundException", "", 1))
                    return
                request = json.loads(body or b"{}")
                message = json.loads(base64.b64decode(request["message"]))
                message_id = f"wamid.{uuid.uuid4().hex}"
                with proxy.lock:
                    proxy.whatsapp.append({**request, "message": message, "messageId": message_id})
                self._reply(
                    200,
                    json.dumps({"messageId": message_id}).encode(),
                    {"Content-Type": "application/json"},
                )

            def _forward(self, service: str, body: bytes) -> None:
                connection = http.client.HTTPConnection(proxy.moto, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                keep = {
                    k: v
                    for k, v in response.getheaders()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                         "server", "date")
                }  # fmt: skip
                connection.close()
                if response.status < 300:
                    with proxy.lock:
                        proxy.forwarded.append((service, body))
                self._reply(response.status, data, keep)

            do_GET = _handle
            do_POST = _handle
            do_PUT = _handle
            do_DELETE = _handle

        return Handler

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def aws_proxy(moto_url: str) -> Iterator[AwsProxy]:
    proxy = AwsProxy(moto_url)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
