"""Signed links across a key rotation, through the real collector.

The unit tests pin the signer (tests/unit/test_signing_keys.py: the new key signs, old
keys verify, a retired key's links stop working, short and published keys refused) and
tests/integration/test_links.py the pages. Here the three stages of a rotation run on a
real uvicorn server over a real store, as an operator goes through them: links mailed
under the old key, then the new key with the old one in ``OMNI_PREVIOUS_SECRET_KEYS``,
then the old key retired. A link signed for one kind never works as the other, and a
click link never redirects anywhere but where it was signed to go.
"""

from __future__ import annotations

import httpx
from pydantic import SecretStr
from sqlalchemy import Engine

from omni_journey.links import LinkSigner
from omni_journey.settings import Settings
from tests.integration.test_collector import serving
from tests.support.outbox import add_customer

OLD = "rotation-old-key-0123456789abcdef"
NEW = "rotation-new-key-fedcba9876543210"
TARGET = "https://shop.example/p/serum?utm_campaign=rotation"


def _answers(engine: Engine, settings: Settings, links: dict[str, str]) -> dict[str, int]:
    """The status each link gets from a collector running with ``settings``."""
    with serving(engine, settings) as url, httpx.Client(timeout=30) as http:
        answers = {}
        for name, link in links.items():
            path = link.split("/l/", 1)[1]
            if name.startswith("click"):
                response = http.get(f"{url}/l/{path}", follow_redirects=False)
                if response.status_code == 302:
                    assert response.headers["location"] == TARGET
            else:
                response = http.post(f"{url}/l/{path}")
            answers[name] = response.status_code
    return answers


def test_a_rotation_keeps_old_links_working_until_the_old_key_is_retired(
    sqlite_store: Engine,
) -> None:
    add_customer(sqlite_store, "c-1", email="ana@example.com")
    old, new = LinkSigner(OLD, "https://x.example/l"), LinkSigner(NEW, "https://x.example/l")
    links = {
        "unsubscribe (old key)": old.unsubscribe("c-1", "email", "welcome"),
        "click (old key)": old.click(TARGET, "c-1", "email", "welcome"),
        "unsubscribe (new key)": new.unsubscribe("c-1", "email", "welcome"),
        "click (new key)": new.click(TARGET, "c-1", "email", "welcome"),
    }
    # an unsubscribe token presented as a click and the other way round
    swapped = {
        "click (unsubscribe token)": links["unsubscribe (new key)"].replace("/l/u/", "/l/c/"),
        "unsubscribe (click token)": links["click (new key)"].replace("/l/c/", "/l/u/"),
    }
    before = _answers(sqlite_store, Settings(secret_key=SecretStr(OLD)), links)
    during = _answers(
        sqlite_store,
        Settings(secret_key=SecretStr(NEW), previous_secret_keys=SecretStr(OLD)),
        {**links, **swapped},
    )
    after = _answers(sqlite_store, Settings(secret_key=SecretStr(NEW)), links)
    assert before == {
        "unsubscribe (old key)": 200, "click (old key)": 302,
        "unsubscribe (new key)": 400, "click (new key)": 400,
    }  # fmt: skip
    assert during == {
        "unsubscribe (old key)": 200, "click (old key)": 302,
        "unsubscribe (new key)": 200, "click (new key)": 302,
        "click (unsubscribe token)": 400, "unsubscribe (click token)": 400,
    }  # fmt: skip
    assert after == {
        "unsubscribe (old key)": 400, "click (old key)": 400,
        "unsubscribe (new key)": 200, "click (new key)": 302,
    }  # fmt: skip
    # and what signs during the rotation is the new key
    rotated = LinkSigner.from_settings(
        Settings(
            secret_key=SecretStr(NEW),
            previous_secret_keys=SecretStr(OLD),
            link_base_url="https://x.example/l",
        )
    )
    assert rotated.unsubscribe("c-1", "email", "welcome") == new.unsubscribe(
        "c-1", "email", "welcome"
    )
