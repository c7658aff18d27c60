"""Why a message could not be rendered, located in the template file when we know where."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from omni_journey.errors import OmniJourneyError
from omni_journey.spec.diagnostics import Diagnostic

__all__ = ["TEMPLATE_CODES", "RenderError"]

# Codes of the problems templates can have, beside the YAML-level ones of
# ``omni_journey.spec.diagnostics.CODES`` (yaml-syntax, duplicate-key, unknown-field,
# invalid-value, missing-field, unknown-message). Stable: tests and docs rely on them.
TEMPLATE_CODES: Final[Mapping[str, str]] = {
    "template-syntax": "a template is not valid Jinja",
    "template-not-found": "a template includes, imports or extends a file that does not exist",
    "unknown-variable": "a template uses a name that is not in the render context",
    "undefined-variable": "a template reads a value the context does not have",
    "unsafe-template": "a template reaches for something the sandbox forbids",
    "render-failed": "a template failed while rendering",
    "render-timeout": "a message took longer to render than OMNI_RENDER_TIMEOUT_SECONDS",
    "render-too-large": "a message would be larger than OMNI_RENDER_MAX_CHARS characters",
    "missing-content": "message.yaml lacks content a channel needs",
    "optional-attribute": "a customer attribute used without a default: some customers lack it",
    "optional-event-property": "an event property used without a default: some events lack it",
    "empty-recommendations": "a template fails for customers with no recommendations",
    "unquoted-attribute": "an HTML attribute whose value is written without quotes",
    "unknown-template-file": "a file in a message folder that looks like a misspelt variant",
    "subject-too-long": "an email subject longer than inboxes show",
    "email-no-text": "an email without a plain-text part",
    "sms-empty": "an SMS with no text",
    "sms-too-many-segments": "an SMS that needs more parts than allowed",
    "sms-unicode": "an SMS sent as UCS-2 only because of look-alike characters",
    "push-too-large": "a push payload above FCM's 4096 bytes",
}


class RenderError(OmniJourneyError, ValueError):
    """A message could not be rendered for one customer on one channel.

    ``code`` is stable (see :data:`TEMPLATE_CODES`); ``diagnostic`` says where and why,
    with no customer data in it. At run time the customer is skipped with ``code`` as
    the reason; at validate time the diagnostic is reported.
    """

    def __init__(self, message_key: str, channel: str, diagnostic: Diagnostic) -> None:
        self.message_key = message_key
        self.channel = channel
        self.diagnostic = diagnostic
        self.code = diagnostic.code
        self.reason = diagnostic.message
        super().__init__(
            f"cannot render {message_key!r} for {channel}: "
            f"{diagnostic.path}:{diagnostic.line}:{diagnostic.col}: "
            f"[{diagnostic.code}] {diagnostic.message}"
            + (f" (hint: {diagnostic.hint})" if diagnostic.hint else "")
        )
