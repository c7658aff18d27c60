"""Store and disk faults, through the real ``omni-journey`` command: the database going
away in the middle of a dispatch (PostgreSQL refusing connections and dropping the
dispatcher's; SQLite locked by another process for longer than the busy timeout), and
the file outbox's disk filling up.

Each must stop cleanly (one error line, a documented exit code, no traceback) or go on
without the broken part, and a later run without the fault must finish the work: every
message sent exactly once or failed with its reason, nothing left claimed or in flight.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import Engine, create_engine, text

from omni_journey.service.pipeline import dispatch_due
from omni_journey.settings import Settings
from omni_journey.store import open_store
from tests.conftest import _fresh_postgres_database
from tests.integration.delivery.conftest import REGION, SENDER, _proxy, moto_url
from tests.reliability.faults import (
    ONE_EMAIL,
    SECRET,
    SHORT_BUSY_TIMEOUT,
    Project,
    clean_stop,
    delivered_files,
    settle,
    statuses,
)
from tests.support.aws_proxy import AwsProxy

__all__ = ["_proxy", "moto_url"]  # the moto fixtures, shared with the delivery tests

SIGNED_UP = "2026-05-04T10:00:00Z"
PASS = "2026-05-04T10:05:00Z"


@pytest.fixture
def proxy(_proxy: AwsProxy, moto_url: str) -> AwsProxy:
    with urllib.request.urlopen(
        urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    ):
        pass
    _proxy.reset()
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    session.client("ses", endpoint_url=_proxy.url).verify_email_identity(EmailAddress=SENDER)
    return _proxy


def _ses_env(proxy: AwsProxy) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": proxy.url, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "OMNI_EMAIL_PROVIDER": "ses", "OMNI_EMAIL_FROM": SENDER,
        "OMNI_UNSUBSCRIBE_URL": "https://shop.example.com/unsubscribe",
        "OMNI_SEND_CONCURRENCY": "1", "OMNI_RATE_LIMITS": "",
    }  # fmt: skip


def _settings(project: Project, **values: Any) -> Settings:
    return Settings(
        home=project.home, project_dir=project.root, database_url=project.database_url,
        secret_key=SECRET, rate_limits="", **values,
    )  # fmt: skip


def _ses_sends(proxy: AwsProxy) -> dict[str, int]:
    """customer -> SES sends moto accepted (one message per customer here)."""
    found: dict[str, int] = {}
    for service, body in proxy.forwarded:
        if service == "ses" and body.startswith(b"{"):  # not the sender's verification
            customer = json.loads(body)["Destination"]["ToAddresses"][0].split("@")[0]
            found[customer] = found.get(customer, 0) + 1
    return found


def _by_key(engine: Engine, by_customer: dict[str, int]) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT customer_id, idempotency_key FROM messages"))
        key_of = {customer: key for customer, key in rows}
    return {key_of[customer]: n for customer, n in by_customer.items()}


def _lock_sqlite(path: Path, seconds: float) -> Callable[[], None]:
    """Another process's write lock on the file for ``seconds``; returns a join."""
    ready = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        ready.set()
        threading.Event().wait(seconds)
        connection.execute("ROLLBACK")
        connection.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    ready.wait(5)
    return lambda: thread.join(30)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
    else:
        yield _fresh_postgres_database(request.getfixturevalue("postgres_url"))


def test_the_database_going_away_mid_dispatch_stops_cleanly_and_a_later_run_finishes(
    store_url: str | None, tmp_path: Path, proxy: AwsProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = Project.create(tmp_path, {"onboard": ONE_EMAIL}, store_url)
    customers = project.customers(12)
    project.events("account.created", customers, SIGNED_UP)
    project.ok("run", "--now", PASS, "--no-dispatch")
    engine = open_store(project.database_url)
    restore: list[Callable[[], None]] = []
    calls: list[str] = []

    def break_the_database(service: str) -> None:
        calls.append(service)
        if service != "ses" or len([c for c in calls if c == "ses"]) != 5:
            return
        if store_url is None:  # SQLite: locked by another process past the busy timeout
            restore.append(_lock_sqlite(project.home / "omni.db", 3.0))
            return
        name = store_url.rsplit("/", 1)[1]
        admin = create_engine(
            store_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})  # fmt: skip

        def allow() -> None:
            with admin.connect() as connection:
                connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            admin.dispose()

        restore.append(allow)

    proxy.on_call = break_the_database
    done = project.command("dispatch", env=_ses_env(proxy), python=SHORT_BUSY_TIMEOUT)
    error = clean_stop(done, 3, "the database is unavailable", "running it again")
    assert ("locked" in error) if store_url is None else ("connect" in error or "terminat" in error)
    proxy.on_call = None
    for undo in restore:
        undo()
    sent_before = sum(_ses_sends(proxy).values())
    assert sent_before == 5  # four recorded, one in flight when the database went

    for name, value in _ses_env(proxy).items():
        monkeypatch.setenv(name, value)
    settings = _settings(
        project, email_provider="ses", email_from=SENDER, send_concurrency=1,
        unsubscribe_url="https://shop.example.com/unsubscribe",
    )  # fmt: skip
    # later: the dead dispatcher's claims have lapsed (OMNI_DISPATCH_CLAIM_SECONDS)
    later = datetime.now(UTC) + timedelta(seconds=settings.dispatch_claim_seconds + 1)
    report = dispatch_due(engine, settings, now=later)
    assert report.in_doubt == 1 and report.sent == len(customers) - 5
    figures = settle(engine, _by_key(engine, _ses_sends(proxy)))
    assert (figures.sent, figures.failed) == (len(customers) - 1, {"in_doubt": 1})
    engine.dispose()
    print(f"\nfaults database gone ({(store_url and 'postgresql') or 'sqlite'}): {figures}")


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


def test_a_full_disk_pauses_the_file_outbox_without_using_attempts_then_finishes(
    tmp_path: Path,
) -> None:
    project = Project.create(tmp_path, {"onboard": ONE_EMAIL})
    outbox = project.home / "outbox"
    if not _mount_tmpfs(outbox, "64k"):
        pytest.skip("a small tmpfs cannot be mounted here (needs root and mount)")
    try:
        customers = project.customers(60)
        project.events("account.created", customers, SIGNED_UP)
        project.ok("run", "--now", PASS, "--no-dispatch")
        report = json.loads(project.ok("dispatch", "--json").strip().splitlines()[-1])
        assert report["paused"] == {"file": "disk_full"}
        assert 0 < report["sent"] < len(customers)  # what fitted went out
        engine = open_store(project.database_url)
        waiting = {k: v for k, v in statuses(engine).items() if v[0] != "sent"}
        assert {status for status, _ in waiting.values()} == {"pending"}
        with engine.connect() as connection:
            attempts = connection.execute(
                text("SELECT max(attempts) FROM messages WHERE status = 'pending'")
            ).scalar_one()
        assert attempts == 0  # a full disk is no fault of the messages: nothing used up
        assert delivered_files(project, engine)  # no temporary file left behind

        subprocess.run(["mount", "-o", "remount,size=8m", str(outbox)], check=True)
        later = datetime.now(UTC) + timedelta(minutes=2)  # after the pause
        assert dispatch_due(engine, _settings(project), now=later).sent == len(waiting)
        figures = settle(engine, delivered_files(project, engine))
        assert figures.sent == len(customers)
        engine.dispose()
        print(f"\nfaults full disk: {figures}, sent before the disk filled: {report['sent']}")
    finally:
        subprocess.run(["umount", "-l", str(outbox)], check=False)


def test_a_disk_that_fills_mid_write_leaves_no_partial_file_and_uses_no_attempt(
    sqlite_store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where no small file system can be mounted: the disk fills at the ``os.write`` of
    the file outbox (ENOSPC after 8 files), the same path a real full disk takes."""
    import errno
    import os

    from omni_journey.delivery import dispatch
    from omni_journey.delivery import file_batch as file_batch_module
    from omni_journey.delivery.file import FileProvider
    from tests.support.outbox import T0, add_customer, add_message, simple_renderer

    for n in range(20):
        add_customer(sqlite_store, f"c-{n:02d}", email=f"c{n}@example.com")
        add_message(sqlite_store, f"k-{n:02d}", f"c-{n:02d}", "email")
    real_write, written = os.write, []

    def write(fd: int, data: Any) -> int:
        if len(written) >= 8:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(fd)
        return real_write(fd, data)

    monkeypatch.setattr(file_batch_module.os, "write", write)
    outbox = tmp_path / "outbox"
    providers = {"email": FileProvider(outbox, sender=SENDER)}
    settings = Settings(home=tmp_path, rate_limits="")

    def run(at: datetime) -> Any:
        return dispatch(sqlite_store, providers, simple_renderer, now=at, settings=settings,
                        worker_id="w1", clock=lambda: 0.0, sleep=lambda _s: None)  # fmt: skip

    first = run(T0)
    assert (first.sent, first.paused) == (8, {"file": "disk_full"})
    assert sorted(p.name[:1] for p in outbox.rglob("*") if p.is_file()) == ["k"] * 8
    waiting = [s for s in statuses(sqlite_store).values() if s[0] != "sent"]
    assert len(waiting) == 12 and all("disk_full" in (error or "") for _, error in waiting)
    with sqlite_store.connect() as connection:
        assert connection.execute(text("SELECT max(attempts) FROM messages WHERE "
                                       "status = 'pending'")).scalar_one() == 0  # fmt: skip
    monkeypatch.setattr(file_batch_module.os, "write", real_write)  # room again
    assert run(T0 + timedelta(minutes=2)).sent == 12
    names = Counter(p.name for p in outbox.rglob("*") if p.is_file())
    from omni_journey.delivery.file import outbox_file_name

    delivered = {f"k-{n:02d}": names[outbox_file_name(f"k-{n:02d}", ".eml")] for n in range(20)}
    assert settle(sqlite_store, delivered).sent == 20
