"""The signing secret fails closed through the real commands: with PostgreSQL and no
``OMNI_SECRET_KEY``, ``serve`` and ``dispatch`` refuse to start with one clear line; on
the embedded SQLite store they make a private key once and the collector refuses links
forged with the public value of earlier versions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from omni_journey.links import LinkSigner, signing_keys
from omni_journey.settings import Settings
from omni_journey.store.tables import Consent
from tests.integration.test_collector import serving
from tests.support.outbox import add_customer

COMMAND = str(Path(sys.executable).parent / "omni-journey")
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
@pytest.mark.parametrize("command", [["dispatch"], ["serve", "--port", "9"]])
def test_postgres_without_a_secret_refuses_to_start(
    command: list[str], store: Engine, tmp_path: Path
) -> None:
    assert store.dialect.name == "postgresql"
    env = {**os.environ, "OMNI_HOME": str(tmp_path / "home"), "OMNI_WRITE_KEYS": "wk"}
    env["OMNI_DATABASE_URL"] = store.url.render_as_string(hide_password=False)
    env.pop("OMNI_SECRET_KEY", None)
    result = _run(command, env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error: OMNI_SECRET_KEY: is not set" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr  # the hint says how to make one
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "home" / "secret.key").exists()


def test_a_short_secret_is_refused_by_the_command(tmp_path: Path) -> None:
    env = {**os.environ, "OMNI_HOME": str(tmp_path / "home"), "OMNI_SECRET_KEY": "secret"}
    env.pop("OMNI_DATABASE_URL", None)
    result = _run(["dispatch"], env)
    assert result.returncode == 2
    assert "error: OMNI_SECRET_KEY: is shorter than 16 characters" in result.stderr


def test_the_embedded_collector_refuses_links_forged_with_the_old_public_secret(
    sqlite_store: Engine, tmp_path: Path
) -> None:
    add_customer(sqlite_store, "c-victim", email="victim@example.com")
    settings = Settings(home=tmp_path / "home", write_keys="wk")  # no OMNI_SECRET_KEY
    public = LinkSigner(SecretStr("dev-insecure-secret"), "https://x")
    genuine = LinkSigner.from_settings(settings)
    with serving(sqlite_store, settings) as url, httpx.Client(timeout=30) as http:
        unsubscribe = public.unsubscribe("c-victim", "email", "m").rsplit("/", 1)[1]
        refused = http.post(f"{url}/l/u/{unsubscribe}", data=ONE_CLICK)
        click = public.click("https://evil.example.net/", "c-victim", "email", "m")
        redirected = http.get(f"{url}/l/c/{click.rsplit('/', 1)[1]}")
        table = Consent.__table__  # type: ignore[attr-defined]
        with sqlite_store.connect() as connection:
            granted = connection.execute(
                select(table.c.granted).where(table.c.customer_id == "c-victim")
            ).scalars()
            assert set(granted) == {True}
        mine = genuine.unsubscribe("c-victim", "email", "m").rsplit("/", 1)[1]
        accepted = http.post(f"{url}/l/u/{mine}", data=ONE_CLICK)
    assert refused.status_code == 400
    assert redirected.status_code == 400 and "location" not in redirected.headers
    assert accepted.status_code == 200  # the key made under OMNI_HOME signs and verifies
    assert signing_keys(settings) == ((tmp_path / "home" / "secret.key").read_text().strip(),)
