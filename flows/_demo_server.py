"""The demo's own temporary Prefect API server (``omni-journey demo`` without
``PREFECT_API_URL``).

Prefect's ephemeral mode would start the same server (``uvicorn`` running
``prefect.server.api.server:create_app`` in a subprocess), but the demo needs three
things it does not give:

- **its output in a file**, not on the console: under load the server's SQLite logs
  ``database is locked`` retries with long tracebacks; they go to
  ``<demo home>/prefect/server.log``;
- **a start that overlaps the shop's generation**: the server needs 10-20 s to start on
  a 2-core machine; :meth:`DemoServer.start` returns at once and
  :meth:`DemoServer.wait_ready` waits only before the first flow run;
- **a stop in the right order**: Prefect's event and log workers flush to the server
  when the process exits; stopped first (Ctrl-C reaches the whole process group), the
  server left them retrying against a closed port for minutes with connection-refused
  tracebacks. This server runs in its own session (Ctrl-C on the terminal does not
  reach it) and :meth:`DemoServer.stop` flushes the workers, then stops it.

Its database is ``<demo home>/prefect/prefect.db``, apart from ``~/.prefect`` (where other
Prefect processes on the machine may write at the same time), kept from one demo to
the next: ``PREFECT_HOME=<demo home>/prefect prefect server start`` shows the runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import IO

import httpx

__all__ = ["DemoServer", "DemoServerError"]

STARTUP_SECONDS = 120.0
STOP_SECONDS = 5.0
FLUSH_SECONDS = 3.0


class DemoServerError(RuntimeError):
    """The demo's Prefect server did not start; the message says where its log is."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DemoServer:
    """A Prefect API server in a subprocess for the length of one demo."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.log_path = home / "server.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._ready = False

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        """Start the server; return at once (see :meth:`wait_ready`)."""
        self.home.mkdir(parents=True, exist_ok=True)  # Prefect needs its home first
        self.port = _free_port()
        self._log = self.log_path.open("ab")
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home.resolve()),
            "PREFECT_UI_ENABLED": "0",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            # what Prefect's own ephemeral server sets: its lighter set of services
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        env.pop("PREFECT_API_URL", None)
        env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
        env.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL", None)
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C on the terminal is for the demo, not for it
        )

    def wait_ready(self, timeout: float = STARTUP_SECONDS) -> None:
        """Wait until the server answers its health check."""
        if self._ready:
            return
        if self._process is None:
            raise DemoServerError("the demo's Prefect server was not started")
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise DemoServerError(
                        f"the demo's Prefect server stopped at start (exit code "
                        f"{self._process.returncode}): see {self.log_path}"
                    )
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        self._ready = True
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        raise DemoServerError(
            f"the demo's Prefect server did not start within {timeout:.0f} s: see {self.log_path}"
        )

    def stop(self) -> None:
        """Flush what Prefect's workers still hold to the server, then stop it."""
        if self._process is None:
            return
        if self._ready:
            _flush_prefect_workers()
        process, self._process = self._process, None
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        self._ready = False


def _flush_prefect_workers() -> None:
    """Send the queued events and logs now, while the server is up (at exit, with the
    server gone, they would be retried against a closed port)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (EventsWorker, APILogWorker):
        with suppress(Exception):  # a flush that fails loses what the UI shows, only
            worker.drain_all(timeout=FLUSH_SECONDS)
