"""Providers plug in through the entry-point group ``omni_journey.providers``.

The built-in providers are registered the same way (``pyproject.toml``), so a
third-party package adds one with::

    [project.entry-points."omni_journey.providers"]
    sendgrid = "my_package.sendgrid:create_provider"   # (settings) -> Provider

Nothing here imports boto3 or firebase-admin: a provider's module is imported only
when settings choose it.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points

from omni_journey.delivery.base import Provider
from omni_journey.errors import ConfigError
from omni_journey.settings import Settings

__all__ = ["ENTRY_POINT_GROUP", "available_providers", "chosen_provider_names", "load_providers"]

ENTRY_POINT_GROUP = "omni_journey.providers"


def available_providers() -> dict[str, EntryPoint]:
    """Every installed provider, by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def chosen_provider_names(settings: Settings) -> dict[str, str]:
    """{channel: provider name} as the settings choose them."""
    return {
        "email": settings.email_provider,
        "sms": settings.sms_provider,
        "push": settings.push_provider,
        "whatsapp": settings.whatsapp_provider,
        "webhook": settings.webhook_provider,
    }


def load_providers(
    settings: Settings, overrides: Mapping[str, str] | None = None
) -> dict[str, Provider]:
    """{channel: provider}, each provider created once (channels may share one).

    ``overrides`` ({channel: provider name}) replaces the settings' choice, for
    third-party providers the settings do not list. Raises :class:`ConfigError` naming
    the variable for an unknown provider or one that cannot start.
    """
    names = {**chosen_provider_names(settings), **(overrides or {})}
    installed = available_providers()
    created: dict[str, Provider] = {}
    providers: dict[str, Provider] = {}
    for channel, name in names.items():
        if name not in installed:
            raise ConfigError(
                f"OMNI_{channel.upper()}_PROVIDER",
                f"no provider named {name!r} is installed",
                "installed: "
                + ", ".join(sorted(installed))
                + f" (entry points {ENTRY_POINT_GROUP})",
            )
        if name not in created:
            factory = installed[name].load()
            provider = factory(settings)
            if not isinstance(provider, Provider):
                raise ConfigError(
                    f"OMNI_{channel.upper()}_PROVIDER",
                    f"entry point {name!r} did not return a provider (send_batch, name, max_batch)",
                )
            created[name] = provider
        providers[channel] = created[name]
    return providers
