"""The signing secret fails closed: never a value from the source, a key made once
per embedded home (mode 0600), required with a shared store, and keys rotate."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from omni_journey.errors import ConfigError
from omni_journey.links import InvalidLinkError, LinkSigner, signing_keys
from omni_journey.settings import Settings

OLD = "the-old-key-0123456789"
NEW = "the-new-key-9876543210"


def test_unset_on_the_embedded_store_makes_one_private_key_and_keeps_it(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    [key] = signing_keys(settings)
    path = tmp_path / "home" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 32 and key == path.read_text().strip()
    assert signing_keys(Settings(home=tmp_path / "home")) == (key,)  # the next process
    assert signing_keys(Settings(home=tmp_path / "other")) != (key,)  # random, per home
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret.key"]  # no drafts left


def _key_of(home: str) -> str:
    return signing_keys(Settings(home=Path(home)))[0]


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        keys = pool.map(_key_of, [home] * 8)
    assert len(set(keys)) == 1
    assert keys[0] == (tmp_path / "home" / "secret.key").read_text().strip()


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    signing_keys(Settings(home=tmp_path))
    os.chmod(tmp_path / "secret.key", 0o644)
    with pytest.raises(ConfigError, match=r"OMNI_SECRET_KEY: the key file .* other users"):
        signing_keys(Settings(home=tmp_path))


def test_unset_with_a_shared_store_fails_closed(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="postgresql+psycopg://u@db.invalid/omni")
    with pytest.raises(ConfigError, match="OMNI_SECRET_KEY: is not set") as raised:
        signing_keys(settings)
    assert raised.value.hint and "secrets.token_urlsafe" in raised.value.hint
    with pytest.raises(ConfigError):
        LinkSigner.from_settings(settings)
    assert not (tmp_path / "secret.key").exists()


@pytest.mark.parametrize("value", ["dev-insecure-secret", "short", "fifteen-chars!!"])
def test_a_published_or_short_secret_never_signs(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="OMNI_SECRET_KEY"):
        signing_keys(Settings(home=tmp_path, secret_key=SecretStr(value)))
    with pytest.raises(ConfigError, match="OMNI_PREVIOUS_SECRET_KEYS"):
        signing_keys(Settings(secret_key=SecretStr(NEW), previous_secret_keys=SecretStr(value)))


def test_rotation_the_new_key_signs_the_old_keys_still_verify(tmp_path: Path) -> None:
    before = LinkSigner.from_settings(Settings(secret_key=SecretStr(OLD)))
    old_link = before.unsubscribe("c-1", "email", "welcome")
    rotated = Settings(secret_key=SecretStr(NEW), previous_secret_keys=SecretStr(f" {OLD} ,"))
    assert signing_keys(rotated) == (NEW, OLD)
    signer = LinkSigner.from_settings(rotated)
    assert signer.verify(old_link).customer_id == "c-1"
    new_link = signer.unsubscribe("c-1", "email", "welcome")
    assert new_link != old_link
    with pytest.raises(InvalidLinkError, match="bad-signature"):
        before.verify(new_link)  # signed with the new key, not the old
    retired = LinkSigner.from_settings(Settings(secret_key=SecretStr(NEW)))
    assert retired.verify(new_link).customer_id == "c-1"
    with pytest.raises(InvalidLinkError, match="bad-signature"):
        retired.verify(old_link)  # the old key retired: its links stop working


def test_the_public_default_of_earlier_versions_forges_nothing(tmp_path: Path) -> None:
    forged = LinkSigner("dev-insecure-secret", "https://x.example").unsubscribe(
        "someone-else", "email", "m"
    )
    with pytest.raises(InvalidLinkError, match="bad-signature"):
        LinkSigner.from_settings(Settings(home=tmp_path)).verify(forged)
