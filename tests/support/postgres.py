"""A real, throw-away PostgreSQL 15 server for the test session.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as
the ``postgres`` system user (or ``nobody``) through ``runuser``. Set
``OMNI_TEST_DATABASE_URL`` to use a server you already have instead.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/local/bin"), Path("/usr/bin")]


def _pg_bin(name: str) -> str:
    for directory in PG_BIN_DIRS:
        candidate = directory / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL binary {name!r} not found in {PG_BIN_DIRS} or PATH")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user(argv: list[str]) -> tuple[list[str], str | None]:
    if os.geteuid() != 0:
        return argv, None
    for user in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            return ["runuser", "-u", user, "--", *argv], user
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) exists")


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server on 127.0.0.1; yield a ``postgresql+psycopg://`` URL; stop it."""
    root = Path(tempfile.mkdtemp(prefix="omni-pg-"))
    data = root / "data"
    port = _free_port()
    _, user = _as_user([])
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    root.chmod(0o700)
    run = subprocess.run
    cmd, _ = _as_user(
        [_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "omni", "--no-sync"]
    )
    run(cmd, check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -F -c max_connections=200"
    cmd, _ = _as_user(
        [_pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]
    )
    run(cmd, check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"postgresql+psycopg://omni@127.0.0.1:{port}/postgres"
    finally:
        cmd, _ = _as_user([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        run(cmd, check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
