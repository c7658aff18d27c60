"""No secret and no personal data in what the collector answers or logs, or in the
Prefect artifacts the flows build, or in a printed settings object.

The collector is fed requests that are wrong in every way a source gets them wrong
(a wrong write key, bad addresses and numbers, bad times, broken JSON quoting an
address, an identity that belongs to someone else, a tampered link, an unsigned SNS
message), once in-process with every log record captured at DEBUG, and once as the
real ``omni-journey serve --log-level debug`` process whose whole output is read. The
artifact builders of the flows are called on a store where messages failed and one is
in doubt, with Prefect's artifact calls recorded instead of sent.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from omni_journey.links import LinkSigner
from omni_journey.settings import Settings
from omni_journey.store import open_store
from tests.integration.test_collector import serving
from tests.reliability.test_security_leaks import (
    AWS_SECRET,
    BAD_EMAIL,
    BAD_PHONE,
    DB_PASSWORD,
    PEOPLE,
    PERSONAL,
    SECRET_KEY,
    WIRE_LOGGERS,
    WRITE_KEY,
)

WRONG_KEY = "wk-CANARY-wrong-guess-0042"
SECRETS = (SECRET_KEY, WRITE_KEY, WRONG_KEY, AWS_SECRET, DB_PASSWORD)
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _leaks(texts: dict[str, str], also: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{where}: {value!r}"
        for where, content in texts.items()
        for value in (*SECRETS, *PERSONAL, *also)
        if value in content
    ]


def _track(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": message_id, "event": "Product Viewed",
            "userId": "c-1", "timestamp": "2026-05-01T10:00:00Z", **fields}  # fmt: skip


def _bad_requests(base: str, signer: LinkSigner) -> dict[str, httpx.Response]:
    """Every kind of bad request, with the personal values and secrets inside them."""
    ana, otto = PEOPLE
    good = (WRITE_KEY, "")
    token = signer.click("https://shop.example/p?ref=1", "c-1", "email", "hello").rsplit("/", 1)[1]
    calls: dict[str, Callable[[httpx.Client], httpx.Response]] = {
        "wrong key": lambda h: h.post(f"{base}/v1/track", json=_track("m1"), auth=(WRONG_KEY, "")),
        "wrong body key": lambda h: h.post(
            f"{base}/v1/track", json=_track("m2", writeKey=WRONG_KEY)
        ),
        "bad email": lambda h: h.post(
            f"{base}/v1/identify",
            json={"userId": "c-5", "traits": {"email": BAD_EMAIL, "firstName": ana["first_name"]}},
            auth=good,
        ),
        "bad phone": lambda h: h.post(
            f"{base}/v1/identify", json={"userId": "c-6", "traits": {"phone": BAD_PHONE}}, auth=good
        ),
        "bad time": lambda h: h.post(
            f"{base}/v1/track",
            json=_track(
                "m3",
                timestamp=f"{ana['email']} yesterday",
                context={"traits": {"email": ana["email"]}},
            ),
            auth=good,
        ),
        "taken identity": lambda h: h.post(
            f"{base}/v1/identify",
            json={"userId": "c-2", "traits": {"email": ana["email"]}},
            auth=good,
        ),
        "batch": lambda h: h.post(
            f"{base}/v1/batch",
            json={
                "batch": [
                    {"type": "identify", "userId": "c-7", "traits": {"phone": BAD_PHONE}},
                    {"type": "identify", "anonymousId": "a-1", "traits": {"email": otto["email"]}},
                    {"type": "identify", "userId": "c-8", "traits": {"email": otto["phone"]}},
                    _track("m4", userId=None, context={"traits": {"email": otto["email"]}}),
                ]
            },
            auth=good,
        ),
        "broken json": lambda h: h.post(
            f"{base}/v1/track",
            content=f'{{"email": "{ana["email"]}", '.encode(),
            auth=good,
            headers={"content-type": "application/json"},
        ),
        "tampered unsubscribe": lambda h: h.post(f"{base}/l/u/{token[:-4]}AAAA"),
        "click": lambda h: h.get(f"{base}/l/c/{token}", follow_redirects=False),
        "unsigned sns": lambda h: h.post(
            f"{base}/feedback/ses",
            content=json.dumps(
                {
                    "Type": "Notification",
                    "Message": json.dumps({"mail": {"destination": [ana["email"]]}}),
                }
            ),
        ),
    }
    with httpx.Client(timeout=30) as http:
        return {name: call(http) for name, call in calls.items()}


def _seed(engine: Engine) -> None:
    from omni_journey.ingest.intake import ingest_profiles

    ingest_profiles(
        engine,
        [{"customer_id": p["customer_id"], "email": p["email"], "phone": p["phone"]}
         for p in PEOPLE],
        now=NOW,
        settings=Settings(),
    )  # fmt: skip


def test_collector_answers_and_logs_leak_nothing(
    sqlite_store: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    _seed(sqlite_store)
    settings = Settings(write_keys=WRITE_KEY, secret_key=SecretStr(SECRET_KEY))
    caplog.set_level(logging.DEBUG)
    with serving(sqlite_store, settings) as base:
        answers = _bad_requests(base, LinkSigner(SECRET_KEY, f"{base}/l"))
    assert answers["wrong key"].status_code == answers["wrong body key"].status_code == 401
    for name in ("bad email", "bad phone", "bad time", "taken identity", "broken json"):
        assert answers[name].status_code == 400, (name, answers[name].text)
    assert answers["batch"].status_code == 200
    assert len(answers["batch"].json()["rejected"]) == 3  # the anonymous one joins c-2
    assert answers["click"].status_code == 302
    assert answers["tampered unsubscribe"].status_code == 400
    texts = {f"answer to {name}": r.text + str(r.headers) for name, r in answers.items()
             if name != "click"}  # fmt: skip
    texts["logging"] = "\n".join(
        f"{r.name}: {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not (r.name.startswith(WIRE_LOGGERS) and r.levelno < logging.INFO)
    )
    assert _leaks(texts) == []


def test_the_serve_process_output_at_debug_leaks_nothing(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    home = tmp_path / "home"
    engine = open_store(f"sqlite:///{home / 'omni.db'}")
    _seed(engine)
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(OMNI_HOME=str(home), OMNI_WRITE_KEYS=WRITE_KEY, OMNI_SECRET_KEY=SECRET_KEY)
    command = [str(Path(sys.executable).parent / "omni-journey"), "serve", "--port", str(port),
               "--log-level", "debug"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/health")
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        token_signer = LinkSigner(SECRET_KEY, f"{base}/l")
        answers = _bad_requests(base, token_signer)
        click = token_signer.click("https://shop.example/p", "c-1", "email", "hello")
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert answers["click"].status_code == 302
    assert '"POST /v1/identify HTTP/1.1" 400' in output  # the access log is there
    token = click.rsplit("/", 1)[1]
    assert _leaks({"serve output": output}, also=(token, token.split(".")[0])) == []


def test_the_flows_artifacts_carry_counts_and_ids_only(
    sqlite_store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tables and markdown the dispatch and advance flows publish, recorded."""
    import flows._artifacts as artifacts
    from flows.advance import _publish as publish_advance
    from flows.dispatch import _in_doubt, _publish
    from omni_journey.delivery.dispatch_report import DispatchReport
    from tests.support.outbox import add_customer, add_message

    published: list[str] = []
    monkeypatch.setattr(artifacts, "create_table_artifact", lambda **kw: published.append(str(kw)))
    monkeypatch.setattr(
        artifacts, "create_markdown_artifact", lambda **kw: published.append(str(kw))
    )
    ana = PEOPLE[0]
    add_customer(sqlite_store, "c-1", email=ana["email"], phone=ana["phone"])
    doubtful = add_message(
        sqlite_store,
        "k-1",
        "c-1",
        "email",
        status="claimed",
        provider="ses",
        claimed_until=NOW,
        in_flight_since=NOW - timedelta(minutes=5),
    )  # fmt: skip (its sender died during the provider call)
    report = DispatchReport()
    report.claimed, report.failed = 3, 3
    report.by_provider["ses"].update(failed=2)
    report.errors.update({"ses:MessageRejected": 2, "sns:InvalidParameter": 1})
    settings = Settings(write_keys=WRITE_KEY, secret_key=SecretStr(SECRET_KEY))
    in_doubt = _in_doubt(sqlite_store, NOW + timedelta(hours=1), settings)
    _publish(report, ["batch 1: 3 failed"], 1, NOW, in_doubt)
    passes = [artifacts.JourneyPass("hello", {"entered": 2, "queued:email": 2})]
    publish_advance(passes, {"broken": "render: undefined-variable"}, NOW, "all")
    assert [item.id for item in in_doubt] == [doubtful]
    assert len(published) == 5 and "1 messages in doubt" in published[2]
    assert _leaks({"artifacts": "\n".join(published)}) == []


def test_a_printed_or_logged_settings_object_shows_no_secret() -> None:
    settings = Settings(
        write_keys=f"{WRITE_KEY},other-key-1234",
        secret_key=SecretStr(SECRET_KEY),
        previous_secret_keys=SecretStr(SECRET_KEY[::-1]),
        database_url=f"postgresql+psycopg://omni:{DB_PASSWORD}@db.example/omni",
    )
    shown = "\n".join([repr(settings), str(settings), f"{settings!r}", str(settings.__rich_repr__()
                       if hasattr(settings, "__rich_repr__") else "")])  # fmt: skip
    for secret in (WRITE_KEY, SECRET_KEY, SECRET_KEY[::-1], DB_PASSWORD):
        assert secret not in shown
    assert "home=" in shown  # the rest is still there to read
