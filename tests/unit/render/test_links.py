"""Signed unsubscribe and click links: they verify, and any tampering fails."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from omni_journey.render import InvalidLinkError, LinkClaims, LinkSigner, verify_link
from omni_journey.render.message_links import MessageLinks
from omni_journey.settings import Settings

SIGNER = LinkSigner(SecretStr("s3cret"), "https://l.example.com/t/")


def test_unsubscribe_link_verifies_to_its_claims() -> None:
    link = SIGNER.unsubscribe("c-42", "email", "cart_reminder")
    assert link.startswith("https://l.example.com/t/u/")
    assert SIGNER.verify(link) == LinkClaims("unsubscribe", "c-42", "email", "cart_reminder")


def test_click_link_carries_the_destination() -> None:
    url = "https://shop.example.com/cart?utm_campaign=x&a=ü"
    link = SIGNER.click(url, "c-42", "sms", "cart_reminder")
    assert link.startswith("https://l.example.com/t/c/")
    assert SIGNER.verify(link) == LinkClaims("click", "c-42", "sms", "cart_reminder", url)


def test_links_name_the_customer_by_id_never_by_address() -> None:
    link = SIGNER.unsubscribe("c-42", "email", "welcome")
    payload = link.rsplit("/", 1)[1].split(".")[0]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert decoded == [1, "c-42", "email", "welcome", None]


def test_verification_does_not_depend_on_the_base_url() -> None:
    link = SIGNER.unsubscribe("c-1", "email", "m")
    moved = link.replace("https://l.example.com/t", "http://localhost:8765/l")
    assert SIGNER.verify(moved).customer_id == "c-1"


def _tamper_payload(link: str, fields: list[object]) -> str:
    head, token = link.rsplit("/", 1)
    signature = token.split(".")[1]
    payload = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    return f"{head}/{payload}.{signature}"


def test_a_changed_customer_channel_or_message_fails() -> None:
    link = SIGNER.unsubscribe("c-42", "email", "cart_reminder")
    for fields in (
        [1, "c-43", "email", "cart_reminder", None],
        [1, "c-42", "sms", "cart_reminder", None],
        [1, "c-42", "email", "welcome", None],
    ):
        with pytest.raises(InvalidLinkError) as error:
            SIGNER.verify(_tamper_payload(link, fields))
        assert error.value.reason == "bad-signature"


def test_a_changed_destination_fails() -> None:
    link = SIGNER.click("https://shop.example.com/", "c-1", "email", "m")
    evil = [1, "c-1", "email", "m", "https://evil.example.net/"]
    with pytest.raises(InvalidLinkError):
        SIGNER.verify(_tamper_payload(link, evil))


def test_an_unsubscribe_token_is_not_a_click_token() -> None:
    link = SIGNER.unsubscribe("c-1", "email", "m")
    with pytest.raises(InvalidLinkError, match="bad-signature"):
        SIGNER.verify(link.replace("/u/", "/c/"))


def test_another_secret_fails() -> None:
    link = SIGNER.unsubscribe("c-1", "email", "m")
    with pytest.raises(InvalidLinkError, match="bad-signature"):
        LinkSigner("other", "https://l.example.com").verify(link)


@pytest.mark.parametrize(
    "link",
    [
        "https://l.example.com/",
        "https://l.example.com/x/abc.def",
        "https://l.example.com/u/abcdef",
        "https://l.example.com/u/.sig",
        "https://l.example.com/u/payload.",
    ],
)
def test_malformed_links_fail(link: str) -> None:
    with pytest.raises(InvalidLinkError) as error:
        SIGNER.verify(link)
    assert error.value.reason in ("malformed", "bad-signature")
    assert isinstance(error.value, ValueError)


@given(st.text(min_size=1, max_size=40), st.text(max_size=40), st.integers(0, 200))
def test_flipping_any_character_of_the_token_fails(customer: str, message: str, at: int) -> None:
    link = SIGNER.unsubscribe(customer, "email", message)
    head, token = link.rsplit("/", 1)
    index = at % len(token)
    flipped = "A" if token[index] != "A" else "B"
    tampered = token[:index] + flipped + token[index + 1 :]
    with pytest.raises(InvalidLinkError):
        SIGNER.verify(f"{head}/{tampered}")


def test_verify_link_uses_the_secret_from_settings() -> None:
    settings = Settings(secret_key=SecretStr("from-settings-0123456789"))
    link = LinkSigner("from-settings-0123456789", "https://x.example").click(
        "https://a.example", "c", "sms", "m"
    )
    assert verify_link(link, settings=settings).url == "https://a.example"
    with pytest.raises(InvalidLinkError):
        verify_link(link, settings=Settings(secret_key=SecretStr("another-secret-0123456789")))


def test_template_links_only_wrap_web_urls() -> None:
    links = MessageLinks(SIGNER, "c-1", "push", "m")
    assert SIGNER.verify(links.click("https://a.example")).channel == "push"
    assert SIGNER.verify(links.unsubscribe).kind == "unsubscribe"
    for bad in ("javascript:alert(1)", "exampleshop://cart", 42):
        with pytest.raises(ValueError, match="http"):
            links.click(bad)


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="OMNI_SECRET_KEY"):
        LinkSigner("", "https://x.example")
