"""An erasure killed between its steps (SIGKILL, in a real subprocess) is finished by the
next run: nothing personal is left, the report adds up, one erasure is recorded."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from omni_journey.delivery.file import outbox_file_name
from omni_journey.privacy import erase_customer
from omni_journey.store.core import ERASURES, MESSAGES
from tests.integration.engine.conftest import Shop
from tests.integration.privacy.story import (
    EMAIL,
    LATER,
    PHONE,
    found_in_files,
    found_in_store,
    report,
    tell,
)

ROOT = Path(__file__).resolve().parents[3]
NOW = LATER + timedelta(minutes=5)

_KILLED_AFTER = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime
    from omni_journey.privacy import erase_customer
    from omni_journey.settings import Settings
    from omni_journey.store import open_store

    url, home, step, now = sys.argv[1:]

    def hook(done):
        if done == step:
            os.kill(os.getpid(), signal.SIGKILL)

    engine = open_store(url)
    erase_customer(engine, Settings(home=home), "{key}", now=datetime.fromisoformat(now),
                   after_step=hook)
    raise SystemExit("the hook did not kill the erasure")
    """
)


def _erase_and_die(shop: Shop, step: str) -> None:
    url = shop.engine.url.render_as_string(hide_password=False)
    program = _KILLED_AFTER.replace("{key}", PHONE)
    result = subprocess.run(
        [sys.executable, "-c", program, url, str(shop.settings.home), step, NOW.isoformat()],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == -signal.SIGKILL, result.stderr


@pytest.mark.parametrize("step", ["files", "store"])
def test_a_rerun_finishes_an_erasure_killed_after_a_step(shop: Shop, step: str) -> None:
    tell(shop)
    before = report(shop.engine)
    with shop.engine.connect() as connection:
        [(channel, key)] = connection.execute(
            select(MESSAGES.c.channel, MESSAGES.c.idempotency_key).where(
                MESSAGES.c.customer_id == "ana-crm-7"
            )
        ).all()
    _erase_and_die(shop, step)

    with shop.engine.connect() as connection:
        recorded = connection.execute(select(ERASURES)).all()
    assert found_in_files(shop.settings.home) == []
    if step == "files":  # the store still knows her; the files are gone already
        assert recorded == [] and found_in_store(shop.engine)
    else:  # the store forgot her; the sweep did not run
        [record] = recorded
        assert record.finished_at is None and found_in_store(shop.engine) == []
        # a dispatcher that had her message in hand wrote its file after step 1
        late = shop.settings.outbox_dir / channel / outbox_file_name(key, ".eml")
        late.write_text(f"To: {EMAIL}\n\nHello\n")

    again = erase_customer(shop.engine, shop.settings, PHONE, now=NOW + timedelta(minutes=1))

    assert again.erased is (step == "files")
    assert again.finished == (1 if step == "store" else 0)
    assert found_in_store(shop.engine) == []
    assert found_in_files(shop.settings.home) == []
    assert report(shop.engine) == before
    with shop.engine.connect() as connection:
        [record] = connection.execute(select(ERASURES)).all()
    assert record.finished_at is not None
