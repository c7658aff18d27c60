"""A small shop for the console: a project folder with one journey that has a send, a
split, a wait_for and a branch; customers taken through it by real passes on a real
store; one customer whose values are HTML and script."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from omni_journey.runner.passes import JourneyRunner
from omni_journey.settings import Settings
from omni_journey.spec.project import load_project
from tests.integration.engine.conftest import T0, Shop, event, profile

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "console-token-for-tests-0123456789"
SCRIPT = "<script>document.title='pwned'</script>"
IMAGE = '"><img src=x onerror="document.title=\'pwned\'">'
EVIL = "evil<script>x</script>"  # a customer id that is markup too

JOURNEY = """\
key: console_demo
name: Cart follow-up (console demo)
trigger:
  event: product.added
entry:
  re_entry: never
goal:
  event: order.completed
  within: 3d
steps:
  - id: remind
    type: send
    message: cart_reminder
    channel: email
  - id: test
    type: split
    variants:
      - {name: text, weight: 50, next: text}
      - {name: quiet, weight: 50, next: bought}
  - id: text
    type: send
    message: cart_reminder
    channel: sms
  - id: bought
    type: wait_for
    event: order.completed
    timeout: 1d
    on_event: done
    on_timeout: checked_out
  - id: checked_out
    type: branch
    arms:
      - when: {event: checkout.started, within: 2d}
        next: done
    else: last_chance
  - id: last_chance
    type: send
    message: cart_last_chance
    channel: email
  - id: done
    type: exit
"""

CUSTOMERS = ["c-1", "c-2", "c-3", "c-4", "c-5", "c-6", EVIL]


@dataclass(frozen=True)
class ConsoleShop:
    shop: Shop
    settings: Settings  # the console's: project folder, token
    project: Path

    @property
    def engine(self) -> Engine:
        return self.shop.engine


def make_project(folder: Path) -> Path:
    (folder / "journeys").mkdir(parents=True)
    (folder / "journeys" / "console_demo.yaml").write_text(JOURNEY)
    shutil.copy(ROOT / "journeys" / "welcome_series.yaml", folder / "journeys")
    shutil.copytree(ROOT / "templates", folder / "templates")
    return folder


def console_story(shop: Shop, project: Path) -> None:
    """Seven customers add to cart; c-2 has no email consent (skipped), c-3 orders
    (converted), c-4 starts a checkout (branch arm), the rest time out to the last
    chance. ``EVIL`` carries script and markup in every value it can."""
    records = [profile(c) for c in CUSTOMERS if c != "c-2"]
    records.append(profile("c-2", consent={"email": False, "sms": False, "push": False}))
    records[-2] = profile(
        EVIL,
        email="evil@example.com",
        phone="+4915112345678",
        attributes={"first_name": SCRIPT, "note": IMAGE},
    )
    shop.profiles(records)
    shop.events(
        [
            event(f"add-{i}", "product.added", c, T0, sku=f"S-{i}", title=SCRIPT)
            for i, c in enumerate(CUSTOMERS)
        ]
    )
    journeys = dict(load_project(project).require_valid().journeys)
    runner = JourneyRunner(shop.engine, journeys, {})
    runner.run(T0 + timedelta(minutes=1))
    later = T0 + timedelta(hours=2)
    shop.events(
        [
            event("o-3", "order.completed", "c-3", later, total=12.5, note=IMAGE),
            event("ck-4", "checkout.started", "c-4", later),
        ],
        now=later,
    )
    runner.run(later + timedelta(minutes=1))
    runner.run(T0 + timedelta(days=1, hours=1))


def console_settings(shop: Shop, project: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "home": shop.settings.home,
        "project_dir": project,
        "database_url": shop.engine.url.render_as_string(hide_password=False),
        "default_region": "DE",
        "console_token": SecretStr(TOKEN),
        "secret_key": SecretStr("link-signing-secret-for-tests-0123"),
        **extra,
    }
    return Settings(**values)


def build_console_shop(engine: Engine, folder: Path) -> ConsoleShop:
    shop = Shop(engine, Settings(home=folder / "home"))
    project = make_project(folder / "project")
    console_story(shop, project)
    return ConsoleShop(shop, console_settings(shop, project), project)


@pytest.fixture
def console_shop(sqlite_store: Engine, tmp_path: Path) -> ConsoleShop:
    """The story on a real SQLite file (one test runs it on PostgreSQL too)."""
    return build_console_shop(sqlite_store, tmp_path)
