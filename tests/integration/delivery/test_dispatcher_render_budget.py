"""A template that only some customer's data makes endless or huge fails that message,
with its code, and the rest of the batch is sent: the dispatcher on a real store
(SQLite file and PostgreSQL), the production renderer, the file outbox."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from omni_journey.delivery import dispatch
from omni_journey.delivery.file import FileProvider
from omni_journey.service.pipeline import project_renderer
from omni_journey.settings import Settings
from omni_journey.store.tables import Event
from tests.support.outbox import (
    T0,
    RecordingProvider,
    add_customer,
    add_message,
    messages,
    simple_renderer,
)

# the template: fine for the sample customer, endless for one customer's data
ENDLESS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
HUGE = "{{ 'a' * 300000000 }}"
BATCH = 30
BOMB = 7  # the customer whose first name sets the bomb off


def _project(tmp_path: Path, bomb: str) -> Path:
    welcome = tmp_path / "project" / "templates" / "welcome"
    welcome.mkdir(parents=True)
    (welcome / "message.yaml").write_text(
        'subject: "Hi {{ customer.first_name }}"\nheadline: Hello\nbody: Welcome.\n'
    )
    (welcome / "email.html").write_text(
        "<p>Hello {{ customer.first_name }}</p>\n"
        '{% if customer.first_name == "Bomb" %}\n' + bomb + "\n{% endif %}\n"
    )
    return tmp_path / "project"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("bomb", "limits", "code"),
    [
        (
            ENDLESS,
            {"render_timeout_seconds": 0.3, "render_max_chars": 100_000_000},
            "render-timeout",
        ),
        (HUGE, {}, "render-too-large"),
    ],
    ids=["endless-loop", "huge-string"],
)
def test_one_message_past_its_render_budget_fails_alone_and_the_batch_is_sent(
    store: Engine, tmp_path: Path, bomb: str, limits: dict[str, Any], code: str
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        project_dir=_project(tmp_path, bomb),
        rate_limits="",
        send_concurrency=1,
        dispatch_max_attempts=6,
        **limits,
    )
    for i in range(BATCH):
        name = "Bomb" if i == BOMB else f"Ana{i}"
        add_customer(store, f"c-{i}", email=f"c{i}@example.com", attributes={"first_name": name})
        add_message(store, f"k-{i}", f"c-{i}", "email")
    provider = FileProvider(settings.outbox_dir, sender=settings.email_from)

    started = time.monotonic()
    report = dispatch(
        store,
        {"email": provider},
        project_renderer(settings),
        now=T0,
        settings=settings,
        worker_id="w1",
    )
    elapsed = time.monotonic() - started

    assert elapsed < 20  # seconds, not forever: the bomb costs at most its budget
    assert (report.claimed, report.sent, report.failed, report.retried) == (BATCH, BATCH - 1, 1, 0)
    assert report.errors == {f"render:{code}": 1}
    rows = messages(store)
    bomb_row = rows.pop(f"k-{BOMB}")
    assert (bomb_row.status, bomb_row.attempts) == ("failed", 1)
    assert bomb_row.error.startswith(f"render: {code}: ")
    assert {(r.status, r.attempts) for r in rows.values()} == {("sent", 1)}
    assert len(list((settings.outbox_dir / "email").iterdir())) == BATCH - 1
    with store.connect() as connection:
        failed = connection.execute(
            select(Event.__table__).where(Event.__table__.c.name == "message.failed")  # type: ignore[attr-defined]
        ).all()
    assert [(f.customer_id, f.properties["reason"], f.properties["transient"]) for f in failed] == [
        (f"c-{BOMB}", code, False)
    ]
    # nothing is left claimed or due: a later pass has nothing to do
    again = dispatch(
        store, {"email": provider}, project_renderer(settings), now=T0, settings=settings,
        worker_id="w2",
    )  # fmt: skip
    assert again.claimed == 0


class _Clock:
    """The pass's clock, moved by the renderer: a render takes what the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class _TimedOut(Exception):
    """What a renderer raises past its budget, as far as delivery can tell."""

    permanent = True
    code = "render-timeout"


def test_renders_that_use_half_the_claim_put_the_rest_back_unrendered(
    store: Engine, tmp_path: Path
) -> None:
    """Slow renders (each within its budget) must not outlast the claim: once half of it
    is gone, the rows not yet rendered go back, counting no attempt, and the next claim
    of the same pass sends them, each rendered once."""
    settings = Settings(home=tmp_path / "home", rate_limits="", dispatch_claim_seconds=300)
    for i in range(4):
        add_customer(store, f"c-{i}", email=f"c{i}@example.com", attributes={"first_name": "A"})
        add_message(store, f"k-{i}", f"c-{i}", "email")
    clock = _Clock()
    rendered: list[str] = []

    def renderer(message: Any, customer: Any) -> Any:
        rendered.append(customer.id)
        if customer.id == "c-0":
            clock.now += 200  # more than half the claim, as a timed-out render could
            raise _TimedOut("rendering took longer than its budget")
        return simple_renderer(message, customer)

    provider = RecordingProvider()
    report = dispatch(store, {"email": provider}, renderer, now=T0, settings=settings,
                      worker_id="w1", clock=clock, sleep=clock.sleep)  # fmt: skip

    assert (report.sent, report.failed, report.deferred) == (3, 1, 3)
    assert sorted(rendered) == ["c-0", "c-1", "c-2", "c-3"]  # none rendered twice
    rows = messages(store)
    assert (rows["k-0"].status, rows["k-0"].attempts) == ("failed", 1)
    assert {(rows[f"k-{i}"].status, rows[f"k-{i}"].attempts) for i in (1, 2, 3)} == {("sent", 1)}
