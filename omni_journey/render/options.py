"""Limits and the link base URL rendering works with."""

from __future__ import annotations

from dataclasses import dataclass

from omni_journey.render.budget import DEFAULT_MAX_CHARS, DEFAULT_TIMEOUT_SECONDS, RenderBudget
from omni_journey.settings import Settings

__all__ = ["FCM_MAX_PAYLOAD_BYTES", "RenderOptions"]

FCM_MAX_PAYLOAD_BYTES = 4096


@dataclass(frozen=True)
class RenderOptions:
    """``link_base_url``: where signed unsubscribe (``/u/...``) and click (``/c/...``)
    links point. ``subject_max_chars``: longer subjects get a warning (inboxes cut them).
    ``sms_max_segments``: an SMS needing more parts is an error. ``push_max_bytes``:
    FCM's payload limit. ``render_timeout_seconds`` and ``render_max_chars``: the budget
    of one message (all its templates together), see :mod:`omni_journey.render.budget`."""

    link_base_url: str = "http://127.0.0.1:8765/l"
    subject_max_chars: int = 78
    sms_max_segments: int = 3
    push_max_bytes: int = FCM_MAX_PAYLOAD_BYTES
    render_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    render_max_chars: int = DEFAULT_MAX_CHARS

    def __post_init__(self) -> None:
        if not self.link_base_url.startswith(("https://", "http://")):
            raise ValueError("link_base_url must be an http(s) URL")
        if self.subject_max_chars < 1 or self.sms_max_segments < 1:
            raise ValueError("subject_max_chars and sms_max_segments must be at least 1")
        if not 0 < self.push_max_bytes <= FCM_MAX_PAYLOAD_BYTES:
            raise ValueError(f"push_max_bytes must be 1..{FCM_MAX_PAYLOAD_BYTES}")
        RenderBudget(self.render_timeout_seconds, self.render_max_chars)  # checks them

    @property
    def budget(self) -> RenderBudget:
        """The render budget of one message."""
        return RenderBudget(self.render_timeout_seconds, self.render_max_chars)

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderOptions:
        """The options ``settings`` configure: ``OMNI_LINK_BASE_URL``,
        ``OMNI_SUBJECT_MAX_CHARS``, ``OMNI_SMS_MAX_SEGMENTS``,
        ``OMNI_RENDER_TIMEOUT_SECONDS`` and ``OMNI_RENDER_MAX_CHARS`` where the settings
        have them, the defaults otherwise."""
        defaults = cls()
        return cls(
            link_base_url=getattr(settings, "link_base_url", None) or defaults.link_base_url,
            subject_max_chars=getattr(settings, "subject_max_chars", None)
            or defaults.subject_max_chars,
            sms_max_segments=getattr(settings, "sms_max_segments", None)
            or defaults.sms_max_segments,
            render_timeout_seconds=getattr(settings, "render_timeout_seconds", None)
            or defaults.render_timeout_seconds,
            render_max_chars=getattr(settings, "render_max_chars", None)
            or defaults.render_max_chars,
        )
