"""The processes ``bench/latency.py`` measures through: a Prefect server, the
repository's deployments (``prefect deploy --all`` and a process worker, or the same
flows ``serve``d), the collector, and the Prefect-only peer flow.

    python -m bench.latency_stack serve     # (internal) the served variant's process
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POOL = "omni-journey"
PEER_EVENT = "bench.peer.event"
WRITE_KEY = "bench-write-key"

PEER_DEPLOYMENT = f"""
  - name: peer
    description: Prefect-only peer of bench/latency.py (one flow run per event).
    entrypoint: bench/latency_peer.py:peer
    parameters: {{}}
    work_pool:
      name: {POOL}
      work_queue_name: default
      job_variables: {{}}
    triggers:
      - type: "event"
        name: "bench: peer"
        enabled: true
        match:
          prefect.resource.id: "bench.peer.*"
        expect:
          - "{PEER_EVENT}"
        posture: "Reactive"
        threshold: 1
        within: 0
        parameters:
          key: "{{{{ event.resource.id }}}}"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(interval)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass
class Stack:
    """Everything started, stopped together (process groups) by :meth:`stop`."""

    tmp: Path
    mode: str  # "worker" or "serve"
    query_seconds: float
    within: int
    engine_command: bool = False  # job_variables.command: skip the workspace resolver
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[Any]] = field(default_factory=list)
    collector: str = ""

    @property
    def home(self) -> Path:
        return self.tmp / "omni"

    @property
    def peer_dir(self) -> Path:
        return self.tmp / "peer"

    def _start(self, args: list[str], name: str, **env: str) -> subprocess.Popen[Any]:
        log = (self.tmp / f"{name}.log").open("wb")
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.env, **env},
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def start(self) -> None:
        prefect_home = self.tmp / "prefect-home"
        for folder in (prefect_home, self.home, self.peer_dir):
            folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "PREFECT_"))},
            "PREFECT_HOME": str(prefect_home),
            "PREFECT_API_URL": api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "OMNI_HOME": str(self.home),
            "OMNI_PROJECT_DIR": str(self.tmp / "project"),
            "OMNI_DATABASE_URL": f"sqlite:///{self.home / 'omni.db'}",
            "OMNI_WRITE_KEYS": WRITE_KEY,
            "PYTHONPATH": str(ROOT),
            "BENCH_PEER_DIR": str(self.peer_dir),
        }
        # this process reads the store and talks to the same API (never an ephemeral one)
        os.environ.update(
            {k: v for k, v in self.env.items() if k.startswith(("PREFECT_", "OMNI_"))}
        )
        self._project()
        self._start(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            "server",
        )
        if not wait_until(lambda: _healthy(f"{api}/health"), timeout=120, interval=0.5):
            raise RuntimeError(f"the Prefect server did not start: see {self.tmp}/server.log")
        if self.mode == "worker":
            self._deploy_and_work()
        else:
            self._serve()
        collector_port = free_port()
        self._start(
            [str(BIN / "omni-journey"), "serve", "--port", str(collector_port),
             "--log-level", "warning"],
            "collector",
        )  # fmt: skip
        self.collector = f"http://127.0.0.1:{collector_port}"
        if not wait_until(lambda: _healthy(f"{self.collector}/health"), timeout=60):
            raise RuntimeError(f"the collector did not start: see {self.tmp}/collector.log")

    def _project(self) -> None:
        """The repository's journeys, segments and templates, with the trigger's
        ``within`` set; prefect.yaml as in the repository plus the peer deployment."""
        project = self.tmp / "project"
        for part in ("journeys", "segments", "templates"):
            shutil.copytree(ROOT / part, project / part)
        text = (ROOT / "prefect.yaml").read_text()
        text = text.replace("        within: 10\n", f"        within: {self.within}\n")
        text = text.rstrip("\n") + "\n" + PEER_DEPLOYMENT
        if self.engine_command:
            text = re.sub(
                r"^( *)job_variables: \{\}$",
                rf'\1job_variables:\n\1  command: "{sys.executable} -m prefect.engine"',
                text,
                flags=re.MULTILINE,
            )
        (self.tmp / "prefect.yaml").write_text(text)

    def _deploy_and_work(self) -> None:
        def prefect(*args: str) -> None:
            done = subprocess.run(
                [str(BIN / "prefect"), *args], cwd=ROOT, env=self.env, capture_output=True,
                text=True, timeout=300, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"prefect {' '.join(args)}: {done.stdout}{done.stderr}")

        prefect("work-pool", "create", POOL, "--type", "process")
        prefect("--no-prompt", "deploy", "--all", "--prefect-file", str(self.tmp / "prefect.yaml"))
        self._start(
            [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"],
            "worker",
            PREFECT_WORKER_QUERY_SECONDS=str(self.query_seconds),
            PREFECT_WORKER_PREFETCH_SECONDS=str(max(1, int(self.query_seconds))),
        )

    def _serve(self) -> None:
        self._start(
            [sys.executable, "-m", "bench.latency_stack", "serve", str(self.within)],
            "served",
            PREFECT_RUNNER_POLL_FREQUENCY=str(max(1, round(self.query_seconds))),
        )
        from prefect.client.orchestration import get_client

        def ready() -> bool:
            with get_client(sync_client=True) as client:
                return len(client.read_deployments()) >= 3

        if not wait_until(ready, timeout=120, interval=0.5):
            raise RuntimeError(f"the served deployments never appeared: see {self.tmp}")
        time.sleep(2)  # the runner's first poll

    def stop(self) -> None:
        for process in reversed(self.processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)


def serve_all(within: int) -> None:
    """The served variant: advance (schedule + generated triggers), dispatch (schedule)
    and the peer, in one runner process (each flow run still a subprocess)."""
    from prefect import serve
    from prefect.events import DeploymentEventTrigger, DeploymentTriggerTypes
    from pydantic import TypeAdapter

    from bench.latency_peer import peer
    from flows.advance import advance
    from flows.dispatch import dispatch_outbox
    from omni_journey.service.deploy import journey_triggers
    from omni_journey.spec.project import load_project

    project = load_project(Path(os.environ["OMNI_PROJECT_DIR"])).require_valid()
    adapter: TypeAdapter[DeploymentTriggerTypes] = TypeAdapter(DeploymentTriggerTypes)  # type: ignore[arg-type]
    triggers = [
        adapter.validate_python(t | {"within": within}) for t in journey_triggers(project.journeys)
    ]
    peer_trigger = DeploymentEventTrigger(
        expect={PEER_EVENT},
        match={"prefect.resource.id": "bench.peer.*"},
        within=0,
        parameters={"key": "{{ event.resource.id }}"},
    )
    serve(
        advance.to_deployment(name="advance", interval=60, triggers=triggers),  # type: ignore[arg-type]
        dispatch_outbox.to_deployment(name="dispatch", interval=60),  # type: ignore[arg-type]
        peer.to_deployment(name="peer", triggers=[peer_trigger]),  # type: ignore[arg-type]
        pause_on_shutdown=False,
        print_starting_message=False,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve_all(int(sys.argv[2]))
