"""Message folders written for one test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from omni_journey.render import TemplateRenderer

CART = """\
subject: "{{ customer.first_name | default('Hi') }}, your cart is waiting"
preheader: Still thinking it over?
headline: "{{ event.name }} is still in your cart"
body: |
  Hi {{ customer.first_name | default("there") }},

  you left {{ event.name }} in your cart.
cta:
  text: Back to my cart
  url: https://shop.example.com/cart
"""

Write = Callable[[dict[str, str]], Path]


@pytest.fixture
def write_templates(tmp_path: Path) -> Write:
    """Writes ``{"cart/message.yaml": text, ...}`` under a templates folder, returns it."""

    def write(files: dict[str, str]) -> Path:
        root = tmp_path / "templates"
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        root.mkdir(exist_ok=True)
        return root

    return write


@pytest.fixture
def cart(write_templates: Write) -> TemplateRenderer:
    """A renderer over one message, ``cart``, with nothing but its shared content."""
    return TemplateRenderer(write_templates({"cart/message.yaml": CART}), secret_key="test-secret")
