"""``omni-journey demo`` as a newcomer meets it, with its own temporary Prefect server:
progress lines in a log, no traceback, the journey names whole, closing commands that
work as printed (each one is run here), and a clean stop within seconds on SIGTERM."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "omni-journey"
JOURNEYS = sorted(p.stem for p in (ROOT / "journeys").glob("*.yaml"))
TINY = ["--customers", "120", "--days", "2", "--history-days", "30"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "PREFECT_"))}
    return env | {"OMNI_HOME": str(home), "COLUMNS": "80"}


@dataclass(frozen=True)
class Demo:
    home: Path
    stdout: str
    stderr: str
    seconds: float


def _run_demo(home: Path) -> Demo:
    started = time.monotonic()
    result = subprocess.run(
        [str(BIN), "demo", *TINY],
        cwd=ROOT,  # the README's first command runs from the repository root
        env=_env(home),
        capture_output=True,  # not a terminal: the progress is a line a simulated day
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Demo(home, result.stdout, result.stderr, time.monotonic() - started)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return _run_demo(tmp_path_factory.mktemp("demo") / "home")


def _closing_commands(stdout: str) -> dict[str, str]:
    """label -> command, from the lines after "explore what it did"."""
    lines = stdout.split("explore what it did", 1)[1].splitlines()[1:]
    commands: dict[str, str] = {}
    label = None
    for line in lines:
        if re.match(r"^  \S.*:$", line):
            label = line.strip().removesuffix(":")
        elif label is not None and line.startswith("    ") and label not in commands:
            commands[label] = line.strip()
    return commands


def test_the_demo_log_shows_progress_whole_names_and_no_traceback(demo: Demo) -> None:
    assert "Traceback" not in demo.stdout + demo.stderr
    assert "database is locked" not in demo.stdout + demo.stderr
    assert demo.stderr.strip() == ""
    # a plain line a simulated day when the output is not a terminal
    assert len(re.findall(r"^pass \d+/16 ", demo.stdout, re.M)) >= 2
    # every journey's name whole on one line of the table, in an 80-column log
    for key in JOURNEYS:
        assert re.search(rf"^\s*{key}\s+\d", demo.stdout, re.M), key
    text = " ".join(demo.stdout.split())  # the log wraps at 80 columns
    assert re.search(r"16 journey passes, 3 Prefect flow runs, 0 failed", text)
    assert (demo.home / "demo" / "prefect" / "server.log").is_file()


def _shell(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env=_env(home.parent / "unused-default-home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_closing_commands_work_as_printed(demo: Demo) -> None:
    commands = _closing_commands(demo.stdout)
    assert set(commands) >= {
        "the messages, one file each",
        "one customer's timeline across channels",
        "why they got each message",
        "their last message, rendered again",
        "the report (the demo wrote it already; this writes it again)",
        "the console",
    }
    customer = re.search(
        r"customers show (c-\d+)", commands["one customer's timeline across channels"]
    )
    assert customer is not None
    for label, command in commands.items():
        if label == "the console":
            continue
        ran = _shell(command, demo.home)
        assert ran.returncode == 0, f"{command}\n{ran.stdout[-2000:]}{ran.stderr[-2000:]}"
        assert "Traceback" not in ran.stdout + ran.stderr
        if "customers show" in command:
            assert customer.group(1) in ran.stdout
        if command.startswith("ls "):
            assert ".eml" in ran.stdout
    # the commands read the demo's store: none made an empty store at the default place
    assert not (demo.home.parent / "unused-default-home").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_console_command_opens_the_console(demo: Demo) -> None:
    command = _closing_commands(demo.stdout)["the console"]
    token = re.search(r"OMNI_CONSOLE_TOKEN=(\S+)", command)
    assert token is not None
    port = _free_port()  # the printed command, on a free port (8765 may be taken here)
    server = subprocess.Popen(
        ["bash", "-c", f"{command} --port {port}"],
        cwd=ROOT,
        env=_env(demo.home.parent / "unused-default-home"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # bash and the server it starts, stopped together
    )
    try:
        auth = base64.b64encode(f"demo:{token.group(1)}".encode()).decode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/console/", headers={"Authorization": f"Basic {auth}"}
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    assert answer.status == 200
                    page = answer.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, "serve stopped"
                assert time.monotonic() < deadline, "the console did not answer"
                time.sleep(0.3)
        for key in JOURNEYS:
            assert key in page
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


def _servers_of(prefect_home: Path) -> list[int]:
    """Processes started with ``PREFECT_HOME=prefect_home`` (the demo's server)."""
    wanted = f"PREFECT_HOME={prefect_home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_sigterm_stops_the_demo_within_seconds_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    process = subprocess.Popen(
        [str(BIN), "demo"],  # the full demo: still running after 20 s
        cwd=ROOT,
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(20)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    stdout, stderr = process.communicate(timeout=30)
    took = time.monotonic() - signalled
    assert took < 10, f"stopped {took:.1f} s after SIGTERM"
    assert process.returncode == 143
    assert "Traceback" not in stdout + stderr, stdout[-2000:] + stderr[-3000:]
    assert "demo stopped" in stdout
    assert _servers_of((home / "demo" / "prefect").resolve()) == []


@pytest.mark.skipif(
    os.environ.get("OMNI_LONG_DEMO") != "1",
    reason="the demo twice (a minute): OMNI_LONG_DEMO=1",
)
def test_one_seed_gives_one_summary_twice_in_a_row(demo: Demo) -> None:
    again = _run_demo(demo.home)  # the same home: the second demo starts afresh

    def summary(stdout: str) -> str:
        table = stdout.split("what each journey did", 1)[1]
        return re.sub(r"in \d+ s\b", "in _ s", table.split("explore what it did", 1)[0])

    assert summary(again.stdout) == summary(demo.stdout)
