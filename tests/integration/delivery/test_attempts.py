"""Attempts are counted before rendering: a message whose render kills the sending
process (the whole process, SIGKILL, as a runaway template or the OOM killer would)
reaches ``OMNI_DISPATCH_MAX_ATTEMPTS`` and is failed, instead of being claimed again
forever; the messages claimed with it are sent. Real SQLite and PostgreSQL stores, the
dispatcher in a subprocess killed from inside the renderer."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, select

from omni_journey.settings import Settings
from omni_journey.store.tables import Event
from tests.support.outbox import add_customer, add_message, messages

ROOT = Path(__file__).resolve().parents[3]
MAX_ATTEMPTS = 3


def _settings(tmp: Path) -> Settings:
    return Settings(
        home=tmp / "home",
        secret_key=SecretStr("attempts-test-secret"),
        unsubscribe_url="https://shop.example.com/unsubscribe",
        rate_limits="",
        send_concurrency=1,
        dispatch_claim_seconds=60,
        dispatch_max_attempts=MAX_ATTEMPTS,
    )


_SENDER = """
import os, signal, sys
from datetime import timedelta
from pathlib import Path
from omni_journey.delivery import dispatch
from omni_journey.delivery.file import FileProvider
from omni_journey.store import open_store
from tests.integration.delivery.test_attempts import _settings
from tests.support.outbox import T0, simple_renderer

url, tmp, minutes = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])

def renderer(message, customer):
    if customer.id == "c-poison":  # this template takes the whole process down
        os.kill(os.getpid(), signal.SIGKILL)
    return simple_renderer(message, customer)

settings = _settings(tmp)
provider = FileProvider(settings.outbox_dir, sender=settings.email_from)
report = dispatch(open_store(url), {"email": provider}, renderer, settings=settings,
                  now=T0 + timedelta(minutes=minutes), worker_id=f"run-{minutes}")
print(report.claimed, report.sent, report.failed)
"""


def test_a_render_that_kills_the_sender_ends_failed_after_max_attempts(
    store: Engine, tmp_path: Path
) -> None:
    add_customer(store, "c-poison", email="p@example.com")
    add_message(store, "k-poison", "c-poison", "email")
    for i in (1, 2):  # claimed in the same batch, after it
        add_customer(store, f"c-{i}", email=f"c{i}@example.com")
        add_message(store, f"k-{i}", f"c-{i}", "email")
    url = store.url.render_as_string(hide_password=False)
    store.dispose()

    killed = 0
    for run in range(2 * MAX_ATTEMPTS):  # bounded: today's code would loop forever
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_SENDER), url, str(tmp_path),
             str(2 * run)],  # each run after the last one's claim (60 s) expired
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        if done.returncode == -signal.SIGKILL:
            killed += 1
            continue
        assert done.returncode == 0, done.stderr
        break

    assert killed == MAX_ATTEMPTS  # one kill per attempt, then no more renders
    rows = messages(store)
    poison = rows["k-poison"]
    assert (poison.status, poison.attempts, poison.claimed_by) == ("failed", MAX_ATTEMPTS, None)
    assert poison.error.startswith("dispatch: max-attempts")
    # the first kill took its batch down with it; once taken over, each went on alone
    assert {(rows[k].status, rows[k].attempts) for k in ("k-1", "k-2")} == {("sent", 2)}
    with store.connect() as connection:
        failed = connection.execute(
            select(Event.__table__).where(Event.name == "message.failed")  # type: ignore[attr-defined, arg-type]
        ).all()
    assert [(e.properties["reason"], e.properties["exhausted"]) for e in failed] == [
        ("max-attempts", True)
    ]
    later = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SENDER), url, str(tmp_path), "600"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert later.stdout.split() == ["0", "0", "0"]  # nothing is claimed again


def test_messages_put_back_unsent_keep_their_attempts(store: Engine, tmp_path: Path) -> None:
    """Counted before rendering, taken back when a row goes back unsent (slow renders
    used half the claim): a put-back row has used no attempt."""
    from omni_journey.delivery import dispatch
    from tests.support.outbox import T0, RecordingProvider, simple_renderer

    for i in range(3):
        add_customer(store, f"c-{i}", email=f"c{i}@example.com")
        add_message(store, f"k-{i}", f"c-{i}", "email")
    clock = [0.0]

    def slow(message: Any, customer: Any) -> Any:
        clock[0] += 31.0  # more than half the claim (60 s)
        return simple_renderer(message, customer)

    provider = RecordingProvider()
    report = dispatch(store, {"email": provider}, slow, now=T0, settings=_settings(tmp_path),
                      worker_id="w1", clock=lambda: clock[0], sleep=lambda _s: None,
                      limit=3)  # fmt: skip

    assert (report.claimed, report.deferred, provider.calls) == (3, 3, 0)
    assert {(r.status, r.attempts) for r in messages(store).values()} == {("pending", 0)}
