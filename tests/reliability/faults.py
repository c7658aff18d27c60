"""What the fault suite shares: a webhook receiver with faults, firebase-admin pointed at
the FCM stand-in, the AWS environment for the moto stand-in, a small project run through
the real ``omni-journey`` command, and the ledger every fault test ends with.

The ledger (:func:`settle`) is the suite's promise, checked message by message after the
fault is gone and the work has been run again: every outbox row is final (nothing
pending, claimed or in flight), a row ``sent`` was delivered exactly once, a row
``failed`` carries its reason and was delivered never (or, when it failed ``in_doubt``
because no answer came, at most once), and nothing was delivered twice.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import firebase_admin
import firebase_admin._http_client
import google.auth.credentials
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from firebase_admin import messaging
from sqlalchemy import Engine, select

from omni_journey.store.tables import Message
from tests.support.fcm_standin import FcmStandIn

ROOT = Path(__file__).resolve().parents[2]
COMMAND = str(Path(sys.executable).parent / "omni-journey")
FINAL = frozenset({"sent", "failed", "suppressed", "skipped"})
SECRET = "reliability-harness-secret"


# --- the ledger ----------------------------------------------------------------------------


@dataclass
class Figures:
    """What one fault test saw, for docs/reliability.md."""

    messages: int = 0
    sent: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # reason -> count
    duplicates: int = 0
    lost: int = 0


def settle(engine: Engine, delivered: Mapping[str, int]) -> Figures:
    """Check the ledger (see the module) against ``delivered`` (idempotency key -> times
    the provider stand-in received it) and return the figures."""
    with engine.connect() as connection:
        rows = connection.execute(select(Message.__table__)).all()  # type: ignore[attr-defined]
    figures = Figures(messages=len(rows))
    for row in rows:
        times = delivered.get(row.idempotency_key, 0)
        if row.status not in FINAL:  # pending, claimed or in flight after the work ran
            figures.lost += 1
            continue
        if row.status == "sent":
            figures.sent += 1
            assert times == 1, f"{row.idempotency_key} sent, delivered {times} times"
        elif row.status == "failed":
            assert row.error, f"{row.idempotency_key} failed without a reason"
            reason = row.error.split(":")[1].strip() if ":" in row.error else row.error
            figures.failed[reason] = figures.failed.get(reason, 0) + 1
            limit = 1 if "in_doubt" in row.error else 0
            assert times <= limit, f"{row.idempotency_key} failed ({row.error}), delivered {times}"
        figures.duplicates += max(0, times - 1)
    known = {row.idempotency_key for row in rows}
    assert set(delivered) <= known, f"delivered without a row: {set(delivered) - known}"
    assert figures.lost == 0, f"{figures.lost} messages never finished"
    assert figures.duplicates == 0
    return figures


def statuses(engine: Engine) -> dict[str, tuple[str, str | None]]:
    """idempotency key -> (status, error)."""
    with engine.connect() as connection:
        rows = connection.execute(select(Message.__table__)).all()  # type: ignore[attr-defined]
    return {row.idempotency_key: (row.status, row.error) for row in rows}


# --- a webhook receiver --------------------------------------------------------------------


@dataclass
class _HookFault:
    status: int  # 0: only the delay
    times: int
    match: str
    delay: float = 0.0


class WebhookReceiver:
    """Records each POST by its ``Idempotency-Key``; answers 200 unless a fault says
    otherwise (:meth:`fail`: a status for the next N requests whose path holds
    ``match``; :meth:`slow`: hold them, then record and answer)."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.faults: list[_HookFault] = []
        self.on_request: Callable[[], None] | None = None
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.on_request is not None:
                    receiver.on_request()
                fault = receiver._take(self.path)
                if fault is not None and fault.delay:
                    time.sleep(fault.delay)
                status = fault.status if fault is not None and fault.status else 200
                if status == 200:
                    with receiver.lock:
                        receiver.received[self.headers.get("Idempotency-Key", "")] += 1
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(self, status: int, times: int = 1, match: str = "") -> None:
        with self.lock:
            self.faults.append(_HookFault(status, times, match))

    def slow(self, seconds: float, times: int = 1, match: str = "") -> None:
        with self.lock:
            self.faults.append(_HookFault(0, times, match, seconds))

    def _take(self, path: str) -> _HookFault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.match in path:
                    fault.times -= 1
                    return fault
        return None


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


# --- firebase-admin against the FCM stand-in -----------------------------------------------


def fcm_account(standin: FcmStandIn, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A service-account file whose token endpoint is the stand-in's, FCM's URL pointed
    at the stand-in, no background IAM lookup, firebase-admin's 5xx retries without
    their sleep."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    account = folder / "service-account.json"
    account.write_text(json.dumps({
        "type": "service_account", "project_id": "omni-test", "private_key_id": "key-1",
        "private_key": pem, "client_email": "omni@omni-test.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": f"{standin.url}/token",
    }))  # fmt: skip
    monkeypatch.setattr(
        messaging._MessagingService, "FCM_URL", standin.url + "/v1/projects/{0}/messages:send"
    )
    monkeypatch.setattr(
        google.auth.credentials.CredentialsWithRegionalAccessBoundary,
        "_is_regional_access_boundary_lookup_required",
        lambda self: False,
    )
    monkeypatch.setattr(firebase_admin._http_client.DEFAULT_RETRY_CONFIG, "backoff_factor", 0)
    return account


# --- the real command on a small project ---------------------------------------------------


@dataclass
class Project:
    """A project folder (journeys, segments, the repository's templates), a home, and
    the environment ``omni-journey`` runs in."""

    root: Path
    home: Path
    env: dict[str, str]

    @classmethod
    def create(
        cls, work: Path, journeys: Mapping[str, str], database_url: str | None = None
    ) -> Project:
        root, home = work / "project", work / "home"
        (root / "journeys").mkdir(parents=True)
        (root / "segments").mkdir()
        shutil.copytree(ROOT / "templates", root / "templates")
        home.mkdir()
        project = cls(root, home, {})
        for key, text in journeys.items():
            project.journey(key, text)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "PREFECT_"))}
        env.update(
            OMNI_HOME=str(home),
            OMNI_PROJECT_DIR=str(root),
            OMNI_DATABASE_URL=database_url or f"sqlite:///{home / 'omni.db'}",
            OMNI_SECRET_KEY=SECRET,
            COLUMNS="200",
        )
        project.env = env
        return project

    @property
    def database_url(self) -> str:
        return self.env["OMNI_DATABASE_URL"]

    def journey(self, key: str, text: str) -> None:
        (self.root / "journeys" / f"{key}.yaml").write_text(text)

    def customers(self, count: int, prefix: str = "c") -> list[str]:
        ids = [f"{prefix}-{n:03d}" for n in range(count)]
        path = self.home.parent / f"customers-{prefix}.jsonl"
        path.write_text("".join(
            json.dumps({"customer_id": c, "email": f"{c}@example.com",
                        "consent": {"email": True}}) + "\n"
            for c in ids
        ))  # fmt: skip
        self.ok("customers", "import", str(path))
        return ids

    def events(self, name: str, customers: list[str], at: str) -> None:
        path = self.home.parent / f"events-{name}-{at[:13]}.jsonl"
        path.write_text("".join(
            json.dumps({"id": f"{name}-{c}-{at}", "name": name, "customer_id": c, "at": at})
            + "\n"
            for c in customers
        ))  # fmt: skip
        self.ok("events", "import", str(path))

    def command(
        self, *args: str, env: Mapping[str, str] | None = None, python: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``omni-journey ARGS`` (or ``python -c PYTHON ARGS``: the command with something
        of the test's changed in the process first)."""
        argv = [COMMAND, *args] if python is None else [sys.executable, "-c", python, *args]
        return subprocess.run(
            argv,
            env={**self.env, **(env or {})},
            cwd=self.home.parent,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def ok(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        done = self.command(*args, env=env)
        assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stderr}"
        return done.stdout

    def outbox_files(self) -> Counter[str]:
        """Outbox file name -> 1 (a name holds a message's key and its digest)."""
        outbox = self.home / "outbox"
        return (
            Counter(p.name for p in outbox.rglob("*") if p.is_file())
            if outbox.exists()
            else Counter()
        )


def clean_stop(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The command stopped with exit ``code`` and one clear error holding ``words``: no
    traceback. Returns the error text."""
    assert done.returncode == code, f"exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    for word in words:
        assert word in done.stderr, f"{word!r} not in:\n{done.stderr}"
    return done.stderr


def delivered_files(project: Project, engine: Engine) -> dict[str, int]:
    """idempotency key -> outbox files holding it (the file outbox's delivery count)."""
    from omni_journey.delivery.file import outbox_file_name

    names = project.outbox_files()
    assert not [n for n in names if n.startswith(".")], "temporary files left in the outbox"
    found: dict[str, int] = {}
    with engine.connect() as connection:
        rows = connection.execute(select(Message.__table__)).all()  # type: ignore[attr-defined]
    for row in rows:
        suffix = ".eml" if row.channel == "email" else ".json"
        count = names.get(outbox_file_name(row.idempotency_key, suffix), 0)
        if count:
            found[row.idempotency_key] = count
    assert sum(found.values()) == sum(names.values()), "outbox files without a message"
    return found


#: ``omni-journey`` with SQLite's busy timeout at 0.3 s instead of 30 s (``python -c``),
#: so a test can hold the database locked for longer than the command waits.
SHORT_BUSY_TIMEOUT = """
import sys
import omni_journey.store.db as db
real = db._sqlite_pragmas
def pragmas(dbapi_connection, record):
    real(dbapi_connection, record)
    dbapi_connection.execute("PRAGMA busy_timeout=300")
db._sqlite_pragmas = pragmas
from omni_journey.cli import main
sys.argv[0] = "omni-journey"
main()
"""

ONE_EMAIL = """\
key: onboard
trigger:
  event: account.created
entry:
  re_entry: never
steps:
  - id: hello
    type: send
    message: welcome
    channel: email
"""
