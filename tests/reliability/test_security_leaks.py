"""No secret and no personal data in logs, artifacts, error messages or side files.

The product runs as an operator runs it, with known secrets (``OMNI_SECRET_KEY``, an
older key, a write key, AWS credentials) and customers whose addresses, numbers, names
and push tokens are distinctive: ``customers import`` and ``events import`` with bad
lines among the good ones, ``track``, ``validate`` and ``preview`` of broken templates,
``run``, ``dispatch`` through providers that fail (SES, SNS and WhatsApp through the moto
stand-in answering errors that quote the recipient, as AWS does; a webhook receiver
answering 500), ``messages in-doubt``, the collector answering bad requests, and the
Prefect artifacts the flows build. Everything an operator or a log pipeline sees is
captured: stdout and stderr, every Python log record at DEBUG (message and traceback),
the artifacts' tables and markdown, HTTP error bodies, ``messages.error``, and every
file written under ``OMNI_HOME`` besides the store, the outbox and the previews (rejects
files hold the rejected lines, personal data: they must be 0600 in a 0700 folder).
None of the secrets and none of the personal values may appear in any of it.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import text
from typer.testing import CliRunner

from omni_journey.cli import app
from omni_journey.store import open_store
from tests.support.aws_proxy import AwsProxy, aws_proxy

SECRET_KEY = "sk-CANARY-current-8f3a1c5e9b7d2468"
PREVIOUS_KEY = "sk-CANARY-previous-2b4d6f8a0c1e3579"
WRITE_KEY = "wk-CANARY-write-key-7719"
AWS_KEY_ID = "AKIACANARY0000000001"
AWS_SECRET = "awsCANARYsecret0123456789abcdefXYZ"
DB_PASSWORD = "pgCANARYpassword4242"
SECRETS = (SECRET_KEY, PREVIOUS_KEY, WRITE_KEY, AWS_SECRET, DB_PASSWORD)

PEOPLE = [
    {"customer_id": "c-1", "email": "quentinius.canary@leak-test.example",
     "phone": "+4915123456701", "first_name": "Quentinius", "last_name": "Canarywood",
     "push": "fcm-CANARY-token-aaaa0001"},
    {"customer_id": "c-2", "email": "ottoline.finch@leak-test.example",
     "phone": "+4915123456702", "first_name": "Ottoline", "last_name": "Finchbury",
     "push": "fcm-CANARY-token-bbbb0002"},
]  # fmt: skip
# values in lines that are rejected: they must not come back in the reasons either
BAD_EMAIL = "zephyrine.broken-at-leak-test.example"
BAD_PHONE = "+0 4242 99 31337"
BAD_NAME = "Bartholomaeus"
PERSONAL = (
    *(v for p in PEOPLE for k, v in p.items() if k != "customer_id"),
    *(BAD_EMAIL, BAD_PHONE, BAD_NAME, "15123456701", "15123456702"),
)

JOURNEY = """\
key: hello
trigger: {event: account.created}
entry: {re_entry: never}
steps:
  - {id: mail, type: send, message: hello, channel: email}
  - {id: text, type: send, message: hello, channel: sms}
  - {id: chat, type: send, message: hello, channel: whatsapp}
  - {id: tell, type: webhook, url: "WEBHOOK_URL", body: {event: hello}}
"""
TEMPLATES = {
    "message.yaml": 'subject: "Hello {{ customer.first_name }} {{ customer.last_name }}"\n'
    "headline: Hello\n"
    "body: |\n  Hi {{ customer.first_name }}, your name is {{ customer.last_name }}.\n",
    "sms.txt": "Hi {{ customer.first_name }} {{ links.unsubscribe }}\n",
    "whatsapp.yaml": 'body: "Hi {{ customer.first_name }}"\n'
    'template: {name: hello_v1, language: en, parameters: ["{{ customer.first_name }}"]}\n',
}
# a template that fails at render time, for preview's error path
BROKEN = {"message.yaml": 'subject: "{{ customer.first_name | int(customer.email) }}"\n'
          "headline: Broken\n"
          'body: "{{ customer.first_name ~ customer.nothing_here }}"\n'}  # fmt: skip


@dataclass
class Seen:
    """Everything an operator, a log pipeline or a Prefect UI user got to see."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, where: str, value: object) -> None:
        self.texts[where] = self.texts.get(where, "") + "\n" + str(value)

    def leaks(self) -> list[str]:
        found = []
        for where, content in self.texts.items():
            for value in (*SECRETS, *PERSONAL):
                if value in content:
                    found.append(f"{where}: {value!r}")
        return found


class _Receiver(BaseHTTPRequestHandler):
    """A webhook receiver that fails, quoting what it got (as careless servers do)."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        answer = b"cannot take " + body + b" from " + PEOPLE[0]["email"].encode()
        self.send_response(500)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture(scope="module")
def proxy() -> Iterator[AwsProxy]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with aws_proxy(f"http://{host}:{port}") as stand_in:
        yield stand_in
    server.stop()


@pytest.fixture
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def _project(root: Path, webhook_url: str) -> None:
    (root / "journeys").mkdir(parents=True)
    (root / "journeys" / "hello.yaml").write_text(JOURNEY.replace("WEBHOOK_URL", webhook_url))
    for name, files in (("hello", TEMPLATES), ("broken", BROKEN)):
        folder = root / "templates" / name
        folder.mkdir(parents=True)
        for file, content in files.items():
            (folder / file).write_text(content)


def _customers(path: Path) -> None:
    lines = [
        {"customer_id": p["customer_id"], "email": p["email"], "phone": p["phone"],
         "push_tokens": [p["push"]], "timezone": "Europe/Berlin",
         "consent": {"email": True, "sms": True, "push": True, "whatsapp": True},
         "attributes": {"first_name": p["first_name"], "last_name": p["last_name"]}}
        for p in PEOPLE
    ]  # fmt: skip
    bad = [
        {"customer_id": "c-bad-1", "email": BAD_EMAIL, "attributes": {"first_name": BAD_NAME}},
        {"customer_id": "c-bad-2", "phone": BAD_PHONE},
    ]
    rows = [json.dumps(line) for line in lines + bad] + ['{"customer_id": "c-3", "email": ']
    path.write_text("\n".join(rows) + "\n")


def _events(path: Path) -> None:
    good = [
        {"id": f"e-{p['customer_id']}", "name": "account.created",
         "customer_id": p["customer_id"], "at": "2026-05-01T09:00:00Z"}
        for p in PEOPLE
    ]  # fmt: skip
    bad = [
        {"id": "e-bad-1", "name": "account.created", "at": "2026-05-01T09:00:00Z",
         "identities": {"email": BAD_EMAIL}},
        {"id": "e-bad-2", "name": "account.created", "at": "yesterday",
         "customer_id": "c-9", "identities": {"phone": BAD_PHONE}},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(line) for line in good + bad) + "\n")


@pytest.fixture
def operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proxy: AwsProxy, receiver: str
) -> Iterator[tuple[Path, Seen]]:
    """An operator's shell: the environment set, a project, and what they saw."""
    for name in [n for n in os.environ if n.startswith("OMNI_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    _project(tmp_path / "project", receiver)
    environment = {
        "OMNI_HOME": str(home),
        "OMNI_PROJECT_DIR": str(tmp_path / "project"),
        "OMNI_SECRET_KEY": SECRET_KEY,
        "OMNI_PREVIOUS_SECRET_KEYS": PREVIOUS_KEY,
        "OMNI_WRITE_KEYS": WRITE_KEY,
        "OMNI_EMAIL_PROVIDER": "ses",
        "OMNI_SMS_PROVIDER": "sns",
        "OMNI_WHATSAPP_PROVIDER": "socialmessaging",
        "OMNI_WHATSAPP_PHONE_NUMBER_ID": "phone-number-id-1",
        "OMNI_WEBHOOK_PROVIDER": "webhook",
        "OMNI_UNSUBSCRIBE_URL": "https://shop.example/unsubscribe",
        "OMNI_AWS_MAX_ATTEMPTS": "1",
        "OMNI_DISPATCH_MAX_ATTEMPTS": "1",
        "AWS_ENDPOINT_URL": proxy.url,
        "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    proxy.reset()
    yield tmp_path, Seen()


def _cli(seen: Seen, *args: str) -> int:
    result = CliRunner().invoke(app, list(args))
    where = "omni-journey " + " ".join(args[:2])
    seen.add(where, result.stdout)
    seen.add(where, result.stderr)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        seen.add(where + " (traceback)", "".join(traceback.format_exception(*result.exc_info)))
    return result.exit_code


# Libraries whose DEBUG logs are request and response bodies by design (a message's
# recipient and content): their DEBUG stays off in production (docs/reliability.md).
# Everything else is read at DEBUG; these from INFO up.
WIRE_LOGGERS = ("botocore", "boto3", "urllib3", "httpx", "httpcore", "hpack")


def _log_text(records: list[logging.LogRecord]) -> str:
    lines = []
    for record in records:
        if record.name.startswith(WIRE_LOGGERS) and record.levelno < logging.INFO:
            continue
        lines.append(f"{record.name}: {record.getMessage()}")
        if record.exc_info:
            lines.append("".join(traceback.format_exception(*record.exc_info)))
    return "\n".join(lines)


def _side_files(home: Path, seen: Seen) -> list[Path]:
    """Files under OMNI_HOME other than the store, the outbox and previews; rejects are
    checked for their mode (they hold the rejected lines as read) and not read."""
    rejects = []
    for path in sorted(home.rglob("*")):
        relative = path.relative_to(home)
        if relative.parts[0] in ("outbox", "previews") or relative.name.startswith("omni.db"):
            continue
        if path.is_file() and relative.parts[0] == "rejects":
            rejects.append(path)
        elif path.is_file() and relative.name != "secret.key":
            seen.add(f"file {relative}", path.read_text(errors="replace"))
    return rejects


def test_commands_logs_errors_and_files_leak_no_secret_and_no_personal_data(
    operator: tuple[Path, Seen], proxy: AwsProxy, caplog: pytest.LogCaptureFixture
) -> None:
    work, seen = operator
    home = work / "home"
    caplog.set_level(logging.DEBUG)
    _customers(work / "customers.jsonl")
    _events(work / "events.jsonl")
    assert _cli(seen, "customers", "import", str(work / "customers.jsonl")) == 0
    assert _cli(seen, "events", "import", str(work / "events.jsonl")) == 0
    _cli(seen, "track", "account.created", "--customer", "c-9",
         "--prop", f"email={BAD_EMAIL}", "--at", "not a time")  # fmt: skip
    assert _cli(seen, "validate") == 1  # the broken template
    assert _cli(seen, "preview", "broken", "--customer", "c-1") == 1
    assert _cli(seen, "preview", "hello", "--customer", PEOPLE[0]["email"]) in (0, 1)
    # the providers fail, quoting the recipient as AWS's own messages do
    for person in PEOPLE:
        email, phone = person["email"], person["phone"]
        proxy.fail("ses", 400, "MessageRejected", f"Email address is not verified: {email}")
        proxy.fail("sns", 400, "InvalidParameter", f"Invalid parameter: PhoneNumber {phone}")
        proxy.fail("social-messaging", 400, "ValidationException", f"{phone} is not on WhatsApp")
    assert _cli(seen, "run", "--now", "2026-05-01T10:00:00Z") in (0, 1)
    assert _cli(seen, "dispatch") in (0, 1)
    assert _cli(seen, "messages", "in-doubt") == 0
    # a preview shows a real customer's message: that is what it is for, so its output
    # is not searched, but its files are for their owner only
    assert CliRunner().invoke(app, ["preview", "hello", "--customer", "c-1"]).exit_code == 0
    assert stat.S_IMODE((home / "previews").stat().st_mode) == 0o700

    engine = open_store(f"sqlite:///{home / 'omni.db'}")
    try:
        with engine.connect() as connection:
            messages = connection.execute(text("SELECT channel, status, error FROM messages"))
            rows = list(messages)
            log = connection.execute(text("SELECT reason FROM journey_log")).scalars().all()
    finally:
        engine.dispose()
    assert {(channel, status) for channel, status, _ in rows} >= {
        ("email", "failed"),
        ("sms", "failed"),
        ("whatsapp", "failed"),
    }, rows
    seen.add("messages.error", "\n".join(str(error) for *_, error in rows))
    seen.add("journey_log.reason", "\n".join(str(reason) for reason in log))
    seen.add("logging", _log_text(caplog.records))
    rejects = _side_files(home, seen)
    assert rejects, "the bad lines were written to a rejects file"
    assert stat.S_IMODE((home / "rejects").stat().st_mode) == 0o700
    for path in rejects:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert any(BAD_EMAIL in path.read_text() for path in rejects)  # they are where they belong
    # the store holds everyone's personal data: its file (and SQLite's -wal and -shm,
    # which take its mode) is its owner's only
    store_files = sorted(home.glob("omni.db*"))
    assert len(store_files) >= 1
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in store_files} == {
        path.name: 0o600 for path in store_files
    }
    assert seen.leaks() == []


def test_a_store_error_quotes_no_row_values(store: Any) -> None:
    """SQLAlchemy puts a failed statement's parameters (a batch's emails, phones, names)
    into its error message, which ends in tracebacks, Prefect task states and logs; the
    store's engine hides them. (A database server's own DETAIL text is its own.)"""
    person = PEOPLE[0]
    with pytest.raises(Exception) as failed, store.begin() as connection:
        connection.execute(
            text("INSERT INTO no_such_table (email, phone) VALUES (:email, :phone)"),
            [{"email": p["email"], "phone": p["phone"]} for p in PEOPLE],
        )
    shown = "".join(traceback.format_exception(failed.value))
    assert "no_such_table" in shown
    assert person["email"] not in shown and person["phone"] not in shown
