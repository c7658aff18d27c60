"""Provider rate limits shared by every dispatcher on one PostgreSQL store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import Engine, text

from omni_journey.delivery.ratelimit import SharedTokenBucket, TokenBucket, bucket_for

# one process of a dispatcher's rate limit: 10 batches of 5 messages at 1 message a
# second, its waits recorded instead of slept (tests never sleep)
TAKER = """
import json, sys
from omni_journey.delivery.ratelimit import SharedTokenBucket
from omni_journey.store import open_store
engine = open_store(sys.argv[1])
waits = []
bucket = SharedTokenBucket(engine, "ses", 1.0, burst=1.0, sleep=waits.append)
for _ in range(10):
    bucket.acquire(5)
engine.dispose()
print(json.dumps(waits))
"""


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_two_dispatcher_processes_share_one_rate_limit(store: Engine) -> None:
    url = store.url.render_as_string(hide_password=False)
    processes = [
        subprocess.Popen([sys.executable, "-c", TAKER, url], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    waits = [json.loads(process.communicate(timeout=120)[0]) for process in processes]
    assert all(process.returncode == 0 for process in processes)
    # 100 messages at 1 a second (1 saved up): whoever takes the last batch owes about
    # 99 s, less the few seconds the two processes ran. Two buckets of their own would
    # have let each owe at most 49 s.
    assert 75 < max(max(w) for w in waits) <= 99
    with store.connect() as connection:
        left = connection.execute(
            text("SELECT tokens FROM provider_rate_limits WHERE provider = 'ses'")
        ).scalar_one()
    assert -99 <= left < -75


def test_the_rate_limit_is_shared_on_postgresql_and_in_process_on_sqlite(store: Engine) -> None:
    shared = store.dialect.name == "postgresql"
    assert isinstance(bucket_for(store, "ses", 14.0), SharedTokenBucket if shared else TokenBucket)
    assert isinstance(bucket_for(store, "file", None), TokenBucket)  # no limit: no trip


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_the_in_process_part_takes_a_lease_for_the_next_acquisitions(store: Engine) -> None:
    waits: list[float] = []
    bucket = SharedTokenBucket(store, "fcm", 1000.0, lease=0.05, sleep=waits.append)
    for _ in range(50):  # 50 messages, one at a time: one trip to the store
        bucket.acquire(1)
    with store.connect() as connection:
        left = connection.execute(
            text("SELECT tokens FROM provider_rate_limits WHERE provider = 'fcm'")
        ).scalar_one()
    assert left == pytest.approx(1000 - 50, abs=1)  # taken once: a lease of 50
    assert waits == []
