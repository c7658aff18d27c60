"""The ``links`` object templates see; the signing itself is :mod:`omni_journey.links`
(one signer for rendering, the dispatcher and the collector).

Named ``message_links`` (not ``links``) so that one module name means one thing:
:mod:`omni_journey.links` signs and verifies, this module binds a signer to one message.
"""

from __future__ import annotations

from omni_journey.links import LinkSigner, is_web_url

__all__ = ["MessageLinks"]


class MessageLinks:
    """The ``links`` object templates see, bound to one customer, channel and message.

    ``{{ links.unsubscribe }}`` and ``{{ links.click("https://shop.example.com/p/1") }}``.
    """

    def __init__(self, signer: LinkSigner, customer_id: str, channel: str, message: str) -> None:
        self._signer = signer
        self._customer_id = customer_id
        self._channel = channel
        self._message = message
        # signing is deterministic: a link asked for twice in one render is signed once
        self._unsubscribe: str | None = None
        self._clicks: dict[str, str] = {}

    @property
    def unsubscribe(self) -> str:
        if self._unsubscribe is None:
            self._unsubscribe = self._signer.unsubscribe(
                self._customer_id, self._channel, self._message
            )
        return self._unsubscribe

    def click(self, url: object) -> str:
        if not isinstance(url, str) or not is_web_url(url):
            raise ValueError("links.click() takes an http(s) URL")
        link = self._clicks.get(url)
        if link is None:
            link = self._signer.click(url, self._customer_id, self._channel, self._message)
            self._clicks[url] = link
        return link
