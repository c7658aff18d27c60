"""SMS encoding and segment counting (3GPP TS 23.038 / 23.040), written here and tested.

A message that only uses the GSM 03.38 default alphabet travels as GSM-7: 160 septets
in one SMS, 153 per part once it needs several (a 7-septet header joins the parts).
Characters of the extension table (``€ [ ] { } ^ ~ | \\`` and form feed) are an escape
plus a septet: they cost two and are never split across parts. One character outside
GSM-7 (``ç``, ``’``, an emoji) switches the whole message to UCS-2: 70 UTF-16 code
units in one SMS, 67 per part; characters beyond the BMP (most emoji) are a surrogate
pair, cost two units and are never split either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENDED",
    "GSM7_LOOKALIKES",
    "SmsEncoding",
    "SmsInfo",
    "is_gsm7",
    "measure_sms",
    "split_sms",
]

# The default alphabet, in code order (0x1B, the escape to the extension table, is left
# out: a literal ESC in a text is not a character a person can send).
GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED: Final = frozenset("\f^{}\\[~]|€")

# Characters that silently switch a message to UCS-2 although a GSM-7 twin exists.
GSM7_LOOKALIKES: Final = {
    "’": "'",
    "‘": "'",
    "“": '"',
    "”": '"',
    "–": "-",
    "—": "-",
    "…": "...",
    "\u00a0": " ",
}


class SmsEncoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class Limits:
    single: int
    per_part: int


_LIMITS: Final = {
    SmsEncoding.GSM7: Limits(single=160, per_part=153),
    SmsEncoding.UCS2: Limits(single=70, per_part=67),
}


@dataclass(frozen=True, slots=True)
class SmsInfo:
    """How a text travels: its encoding, its size in units and how many SMS it costs.

    ``units`` are septets for GSM-7 and UTF-16 code units for UCS-2. ``non_gsm`` lists
    (once each, in order) the characters that forced UCS-2.
    """

    encoding: SmsEncoding
    units: int
    segments: int
    characters: int
    non_gsm: tuple[str, ...] = ()

    @property
    def per_segment(self) -> int:
        """Units that fit in each SMS at this length (160/153 or 70/67)."""
        limits = _LIMITS[self.encoding]
        return limits.single if self.segments <= 1 else limits.per_part


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can travel as GSM-7 (basic and extension tables only)."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text)


def _encoding(text: str) -> SmsEncoding:
    return SmsEncoding.GSM7 if is_gsm7(text) else SmsEncoding.UCS2


def _cost(ch: str, encoding: SmsEncoding) -> int:
    if encoding is SmsEncoding.GSM7:
        return 2 if ch in GSM7_EXTENDED else 1
    return 2 if ord(ch) > 0xFFFF else 1


def split_sms(text: str) -> list[str]:
    """The parts ``text`` is sent as; ``"".join(parts) == text``. Empty text: no parts.

    A two-unit character (GSM-7 escape + septet, or a UTF-16 surrogate pair) that does
    not fit in what is left of a part starts the next one, so it is never split.
    """
    if not text:
        return []
    encoding = _encoding(text)
    limits = _LIMITS[encoding]
    costs = [_cost(ch, encoding) for ch in text]
    if sum(costs) <= limits.single:
        return [text]
    parts: list[str] = []
    start = 0
    used = 0
    for index, cost in enumerate(costs):
        if used + cost > limits.per_part:
            parts.append(text[start:index])
            start, used = index, 0
        used += cost
    parts.append(text[start:])
    return parts


def measure_sms(text: str) -> SmsInfo:
    """Encoding, units and segment count of ``text`` (an empty text is 0 segments)."""
    encoding = _encoding(text)
    units = sum(_cost(ch, encoding) for ch in text)
    non_gsm: tuple[str, ...] = ()
    if encoding is SmsEncoding.UCS2:
        non_gsm = tuple(
            dict.fromkeys(ch for ch in text if ch not in GSM7_BASIC and ch not in GSM7_EXTENDED)
        )
    return SmsInfo(
        encoding=encoding,
        units=units,
        segments=len(split_sms(text)),
        characters=len(text),
        non_gsm=non_gsm,
    )
