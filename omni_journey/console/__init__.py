"""The read-only console: customer search, one customer's timeline and decisions, and
each journey's diagram with live per-step counts, served by ``omni-journey serve``
under ``/console`` when ``OMNI_CONSOLE_TOKEN`` is set."""

from __future__ import annotations

from omni_journey.console.app import create_console

__all__ = ["create_console"]
