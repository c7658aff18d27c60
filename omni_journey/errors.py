"""The exception tree. Every error omni-journey raises on purpose derives from
:class:`OmniJourneyError` and from the nearest builtin, so callers may catch either.

Errors carry structured fields and format their own message; none of them ever
includes an email address, phone number, token or secret.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "IngestError",
    "OmniJourneyError",
    "PermanentDeliveryError",
    "SpecError",
    "StoreError",
    "TransientDeliveryError",
]


class OmniJourneyError(Exception):
    """Root of every error omni-journey raises on purpose."""


class ConfigError(OmniJourneyError, ValueError):
    """A setting is missing or invalid. Names the variable it looked for."""

    def __init__(self, variable: str, problem: str, hint: str | None = None) -> None:
        self.variable = variable
        self.problem = problem
        self.hint = hint
        message = f"{variable}: {problem}"
        if hint:
            message += f" (hint: {hint})"
        super().__init__(message)


class SpecError(OmniJourneyError, ValueError):
    """A journey, segment or template file is invalid.

    ``diagnostics`` holds every problem found (all at once, sorted).
    """

    def __init__(self, diagnostics: list[object]) -> None:
        self.diagnostics = diagnostics
        lines = [str(d) for d in diagnostics]
        super().__init__("\n".join(lines) if lines else "invalid spec")


class IngestError(OmniJourneyError, ValueError):
    """One record could not be ingested. ``reason`` is a stable, PII-free code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class StoreError(OmniJourneyError, RuntimeError):
    """The store is unreachable or not at the expected schema version."""


class DeliveryError(OmniJourneyError, RuntimeError):
    """A provider refused or failed a send."""

    transient: bool = False

    def __init__(self, provider: str, code: str, detail: str = "") -> None:
        self.provider = provider
        self.code = code
        self.detail = detail
        super().__init__(f"{provider}: {code}" + (f": {detail}" if detail else ""))


class TransientDeliveryError(DeliveryError):
    """Retry with backoff: throttling, 5xx, timeouts."""

    transient = True


class PermanentDeliveryError(DeliveryError):
    """Never retry: suppress the address or prune the token."""
