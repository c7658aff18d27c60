"""Limits and the link base URL rendering works with."""

from __future__ import annotations

from dataclasses import dataclass

from omni_journey.settings import Settings

__all__ = ["FCM_MAX_PAYLOAD_BYTES", "RenderOptions"]

FCM_MAX_PAYLOAD_BYTES = 4096


@dataclass(frozen=True)
class RenderOptions:
    """``link_base_url``: where signed unsubscribe (``/u/...``) and click (``/c/...``)
    links point. ``subject_max_chars``: longer subjects get a warning (inboxes cut them).
    ``sms_max_segments``: an SMS needing more parts is an error. ``push_max_bytes``:
    FCM's payload limit."""

    link_base_url: str = "http://127.0.0.1:8765/l"
    subject_max_chars: int = 78
    sms_max_segments: int = 3
    push_max_bytes: int = FCM_MAX_PAYLOAD_BYTES

    def __post_init__(self) -> None:
        if not self.link_base_url.startswith(("https://", "http://")):
            raise ValueError("link_base_url must be an http(s) URL")
        if self.subject_max_chars < 1 or self.sms_max_segments < 1:
            raise ValueError("subject_max_chars and sms_max_segments must be at least 1")
        if not 0 < self.push_max_bytes <= FCM_MAX_PAYLOAD_BYTES:
            raise ValueError(f"push_max_bytes must be 1..{FCM_MAX_PAYLOAD_BYTES}")

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderOptions:
        """The options ``settings`` configure: ``OMNI_LINK_BASE_URL``,
        ``OMNI_SUBJECT_MAX_CHARS`` and ``OMNI_SMS_MAX_SEGMENTS`` where the settings have
        them, the defaults otherwise."""
        defaults = cls()
        return cls(
            link_base_url=getattr(settings, "link_base_url", None) or defaults.link_base_url,
            subject_max_chars=getattr(settings, "subject_max_chars", None)
            or defaults.subject_max_chars,
            sms_max_segments=getattr(settings, "sms_max_segments", None)
            or defaults.sms_max_segments,
        )
