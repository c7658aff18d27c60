"""Shared fixtures: a real SQLite file and a real PostgreSQL server, one store each."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from omni_journey.store import open_store
from tests.support.postgres import postgres_server

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _omni_home_outside_the_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Settings made without a home, and commands started with ``os.environ``, keep
    their files (the generated secret key, a default SQLite file) in a temporary
    folder, never in the working tree."""
    patch = pytest.MonkeyPatch()
    patch.setenv("OMNI_HOME", str(tmp_path_factory.mktemp("omni-home")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a real PostgreSQL server's maintenance database."""
    existing = os.environ.get("OMNI_TEST_DATABASE_URL")
    if existing:
        yield existing
        return
    with postgres_server() as url:
        yield url


def _fresh_postgres_database(server_url: str) -> str:
    name = f"omni_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty store: a real SQLite file, then a real PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'omni.db'}"
    else:
        url = _fresh_postgres_database(request.getfixturevalue("postgres_url"))
    engine = open_store(url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Engine]:
    engine = open_store(f"sqlite:///{tmp_path / 'omni.db'}")
    yield engine
    engine.dispose()
