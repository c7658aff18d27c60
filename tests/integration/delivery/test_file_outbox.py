"""The file outbox writes a batch with one flush, keeping the crash guarantees of one
fsync and rename per file: never a second file for an idempotency key, never a row
marked sent without its file. On a real SQLite store; ``os`` calls are wrapped (a fake
of the operating system) to count fsyncs and to kill the sending process mid-batch."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from omni_journey.delivery import dispatch
from omni_journey.delivery.file import FileProvider, outbox_file_name
from omni_journey.settings import Settings
from omni_journey.store.tables import Event
from tests.support.outbox import T0, add_customer, add_message, messages, simple_renderer

ROOT = Path(__file__).resolve().parents[3]
CHANNELS = ("email", "sms", "push")


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        # set, so that the flushes counted below are the outbox's alone (unset, the
        # first command under a home makes and fsyncs a key file: see links.py)
        secret_key=SecretStr("file-outbox-test-secret"),
        unsubscribe_url="https://shop.example.com/unsubscribe",
        rate_limits="",
        send_concurrency=1,
        dispatch_claim_seconds=300,
    )


def _seed(engine: Engine, count: int, start: int = 0) -> list[str]:
    """``count`` customers, each with one message on email, SMS or push in turn."""
    keys = []
    for i in range(start, start + count):
        add_customer(engine, f"c-{i}", email=f"c{i}@example.com", phone=f"+49151{i:08d}",
                     push_tokens=[f"tok-{i}"], attributes={"first_name": f"N{i}"})  # fmt: skip
        keys.append(f"k-{i}")
        add_message(engine, keys[-1], f"c-{i}", CHANNELS[i % len(CHANNELS)])
    return keys


def _dispatch(engine: Engine, settings: Settings, **kwargs: Any) -> Any:
    provider = FileProvider(settings.outbox_dir, sender=settings.email_from)
    providers = {channel: provider for channel in CHANNELS}
    return dispatch(engine, providers, simple_renderer, settings=settings, **kwargs)


def _outbox(settings: Settings) -> dict[str, list[str]]:
    """Every file under the outbox, hidden ones included, by channel directory."""
    return {
        d.name: sorted(p.name for p in d.iterdir())
        for d in sorted(settings.outbox_dir.iterdir())
        if d.is_dir()
    }


class FsyncLog:
    """``os.fsync``, recording what each call flushed (a directory or a file)."""

    def __init__(self) -> None:
        self.real = os.fsync
        self.lock = threading.Lock()
        self.directories: Counter[str] = Counter()
        self.files = 0
        self.inodes: dict[tuple[int, int], str] = {}

    def __call__(self, fd: int) -> None:
        info = os.fstat(fd)
        self.real(fd)
        with self.lock:
            if stat.S_ISDIR(info.st_mode):
                self.directories[self._name(info)] += 1
            else:
                self.files += 1

    def _name(self, info: os.stat_result) -> str:
        return self.inodes.get((info.st_dev, info.st_ino), "?")

    def watch(self, directories: dict[str, Path]) -> None:
        """Name these directories in ``directories`` (others count as ``"?"``)."""
        for name, path in directories.items():
            info = path.stat()
            self.inodes[(info.st_dev, info.st_ino)] = name


def test_a_batch_is_flushed_once_per_channel_directory(
    sqlite_store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    outbox = settings.outbox_dir
    keys = _seed(sqlite_store, 30)
    fsyncs = FsyncLog()
    outbox.mkdir(parents=True)
    for channel in CHANNELS:  # made before the pass, so their inodes can be told apart
        (outbox / channel).mkdir()
    fsyncs.watch({"outbox": outbox, **{channel: outbox / channel for channel in CHANNELS}})
    monkeypatch.setattr(os, "fsync", fsyncs)

    report = _dispatch(sqlite_store, settings, now=T0, worker_id="w1")

    assert (report.claimed, report.sent) == (30, 30)
    files = _outbox(settings)
    assert {channel: len(names) for channel, names in files.items()} == {
        "email": 10,
        "push": 10,
        "sms": 10,
    }
    assert not [n for names in files.values() for n in names if n.startswith(".")]
    assert fsyncs.files == 30  # each file's data, before its rename
    assert fsyncs.directories == {"email": 1, "sms": 1, "push": 1}  # once per batch each
    rows = messages(sqlite_store)
    assert {rows[k].status for k in keys} == {"sent"}


def test_directories_made_for_a_batch_are_flushed_in_their_parent_too(
    sqlite_store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    settings.outbox_dir.mkdir(parents=True)
    _seed(sqlite_store, 3)
    fsyncs = FsyncLog()
    fsyncs.watch({"outbox": settings.outbox_dir})
    monkeypatch.setattr(os, "fsync", fsyncs)

    assert _dispatch(sqlite_store, settings, now=T0, worker_id="w1").sent == 3

    # the three channel directories are new: each flushed once, and the outbox once
    assert fsyncs.directories == {"outbox": 1, "?": 3}
    assert fsyncs.files == 3


def test_a_file_that_cannot_be_renamed_fails_alone_and_is_resent(
    sqlite_store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    keys = _seed(sqlite_store, 6)
    real_replace = os.replace
    refused: list[str] = []

    def replace(source: Any, target: Any) -> None:
        if not refused:  # the first rename of the batch: disk says no
            refused.append(str(target))
            raise OSError(5, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    report = _dispatch(sqlite_store, settings, now=T0, worker_id="w1")

    assert (report.sent, report.retried) == (5, 1)
    assert report.errors == {"file:disk_error": 1}
    monkeypatch.setattr(os, "replace", real_replace)
    later = _dispatch(sqlite_store, settings, now=T0 + timedelta(hours=1), worker_id="w1")
    assert later.sent == 1
    files = _outbox(settings)
    assert sum(len(names) for names in files.values()) == 6
    assert not [n for names in files.values() for n in names if n.startswith(".")]
    assert {messages(sqlite_store)[k].status for k in keys} == {"sent"}


# --- a sender killed mid-batch ------------------------------------------------------------

_KILLED_SENDER = """
import os, signal, stat, sys
from pathlib import Path
from omni_journey.store import open_store
from tests.integration.delivery.test_file_outbox import T0, _dispatch, _settings

url, tmp, point, nth = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
calls = []

def killing(real, when):
    def call(*args):
        calls.append(args)
        if when == "before" and len(calls) == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        real(*args)
        if when == "after" and len(calls) == nth:
            os.kill(os.getpid(), signal.SIGKILL)
    return call

if point == "rename":  # some files in place, the others still under temporary names
    os.replace = killing(os.replace, "before")
else:  # every file in place, a directory flushed, no row marked sent yet
    real_fsync = os.fsync
    def fsync(fd):
        real_fsync(fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.kill(os.getpid(), signal.SIGKILL)
    os.fsync = fsync
_dispatch(open_store(url), _settings(tmp), now=T0, worker_id="crashed")
sys.exit(3)  # not killed: the test is wrong
"""


@pytest.mark.parametrize(
    ("point", "nth", "in_place"),
    [("rename", 1, 0), ("rename", 7, 6), ("directory", 1, 12)],
)
def test_a_sender_killed_between_writing_and_marking_leaves_one_file_per_key(
    sqlite_store: Engine, tmp_path: Path, point: str, nth: int, in_place: int
) -> None:
    settings = _settings(tmp_path)
    keys = _seed(sqlite_store, 12)
    url = sqlite_store.url.render_as_string(hide_password=False)
    sqlite_store.dispose()

    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED_SENDER), url, str(tmp_path), point,
         str(nth)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = [name for listing in _outbox(settings).values() for name in listing]
    staged = [name for name in left if name.startswith(".tmp-")]
    assert (len(left) - len(staged), len(staged)) == (in_place, 12 - in_place)
    rows = messages(sqlite_store)
    assert {rows[k].status for k in keys} == {"claimed"}  # in flight, none marked sent
    assert all(rows[k].in_flight_since is not None for k in keys)

    report = _dispatch(sqlite_store, settings, now=T0 + timedelta(minutes=6), worker_id="w2")

    assert (report.claimed, report.in_doubt, report.sent) == (12, 12, 12)  # none lost
    rows = messages(sqlite_store)
    expected: dict[str, list[str]] = {}
    for key in keys:
        suffix = ".eml" if rows[key].channel == "email" else ".json"
        expected.setdefault(rows[key].channel, []).append(outbox_file_name(key, suffix))
    # one file per key, no temporary left over
    assert _outbox(settings) == {channel: sorted(names) for channel, names in expected.items()}
    for email in (settings.outbox_dir / "email").iterdir():  # complete, readable files
        parsed = BytesParser(policy=policy.default).parsebytes(email.read_bytes())
        assert parsed.get_body(("plain",)).get_content().startswith("Hello N")
    rows = messages(sqlite_store)
    assert {rows[k].status for k in keys} == {"sent"}
    with sqlite_store.connect() as connection:
        sent = connection.execute(
            select(Event.event_id).where(Event.name == "message.sent")  # type: ignore[arg-type]
        ).all()
    assert len(sent) == 12
