"""The SMS segment counter: GSM-7 and UCS-2, single and concatenated, extended characters
and surrogate pairs at part boundaries."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omni_journey.render.sms import (
    GSM7_BASIC,
    GSM7_EXTENDED,
    SmsEncoding,
    is_gsm7,
    measure_sms,
    split_sms,
)

BASIC = sorted(GSM7_BASIC)
EXTENDED = sorted(GSM7_EXTENDED)
basic_text = st.text(alphabet=BASIC)
gsm_text = st.text(alphabet=BASIC + EXTENDED)
non_gsm_char = st.characters(codec="utf-8").filter(
    lambda c: c not in GSM7_BASIC and c not in GSM7_EXTENDED and not 0xD800 <= ord(c) <= 0xDFFF
)


def test_the_alphabets_have_the_sizes_of_the_standard() -> None:
    # 128 code points in the default alphabet, minus the escape to the extension table
    assert len(GSM7_BASIC) == 127
    assert "\x1b" not in GSM7_BASIC
    assert frozenset("\f^{}\\[~]|€") == GSM7_EXTENDED
    assert not GSM7_BASIC & GSM7_EXTENDED


@pytest.mark.parametrize(
    ("length", "segments"),
    [(0, 0), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_lengths_at_the_limits(length: int, segments: int) -> None:
    info = measure_sms("a" * length)
    assert info.encoding is SmsEncoding.GSM7
    assert (info.units, info.segments) == (length, segments)


def test_extended_characters_cost_two_septets() -> None:
    info = measure_sms("€" * 80)
    assert (info.encoding, info.units, info.segments, info.characters) == (
        SmsEncoding.GSM7,
        160,
        1,
        80,
    )
    assert measure_sms("a" * 159 + "€").segments == 2  # 161 septets


@pytest.mark.parametrize("char", EXTENDED)
def test_every_extended_character_counts_twice(char: str) -> None:
    assert measure_sms(char).units == 2
    assert measure_sms("x" + char).encoding is SmsEncoding.GSM7


def test_an_extended_character_is_never_split_across_parts() -> None:
    # 152 septets leave one in the first part: "€" needs two, so it opens the second.
    text = "a" * 152 + "€" + "b" * 152
    parts = split_sms(text)
    assert [len(p) for p in parts] == [152, 152, 1]
    assert parts[1].startswith("€")
    # a naive count of septets / 153 would say 2
    assert math.ceil(measure_sms(text).units / 153) == 2
    assert measure_sms(text).segments == 3


def test_an_extended_character_that_fits_exactly_stays() -> None:
    parts = split_sms("a" * 151 + "€" + "b" * 10)
    assert [len(p) for p in parts] == [152, 10]


def test_one_character_outside_gsm7_switches_everything_to_ucs2() -> None:
    info = measure_sms("a" * 100 + "ç")
    assert info.encoding is SmsEncoding.UCS2
    assert (info.units, info.segments, info.non_gsm) == (101, 2, ("ç",))


@pytest.mark.parametrize(
    ("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_ucs2_lengths_at_the_limits(length: int, segments: int) -> None:
    info = measure_sms("ç" * length)
    assert (info.encoding, info.units, info.segments) == (SmsEncoding.UCS2, length, segments)


def test_emoji_count_two_utf16_units() -> None:
    info = measure_sms("😀" * 35)
    assert (info.encoding, info.units, info.segments, info.characters) == (
        SmsEncoding.UCS2,
        70,
        1,
        35,
    )
    assert measure_sms("😀" * 35 + "a").segments == 2


def test_a_surrogate_pair_is_never_split_across_parts() -> None:
    text = "ç" * 66 + "😀" + "ç" * 66
    parts = split_sms(text)
    assert [len(p) for p in parts] == [66, 66, 1]
    assert parts[1].startswith("😀")
    assert measure_sms(text).segments == 3  # 134 units, naive ceil(134/67) = 2


def test_characters_people_type_by_accident_force_ucs2() -> None:
    for char in "’“”–…\u00a0ç":
        assert not is_gsm7(f"It{char}s")
    for char in "'\"-£€ÇÉäöüß@_":
        assert is_gsm7(f"It{char}s")


def test_parts_and_measure_agree_on_a_real_message() -> None:
    text = "Ana, your cart is waiting: https://l.example.com/c/abc.def\nReply STOP to opt out"
    assert split_sms(text) == [text]
    assert measure_sms(text).segments == 1


@given(basic_text)
def test_gsm7_basic_strings_of_length_n(text: str) -> None:
    info = measure_sms(text)
    n = len(text)
    expected = 0 if n == 0 else 1 if n <= 160 else math.ceil(n / 153)
    assert info.encoding is SmsEncoding.GSM7
    assert (info.units, info.segments) == (n, expected)


@given(gsm_text, non_gsm_char, st.integers(min_value=0, max_value=10_000))
def test_adding_one_ucs2_character_switches_the_encoding(text: str, char: str, at: int) -> None:
    index = at % (len(text) + 1)
    switched = measure_sms(text[:index] + char + text[index:])
    assert switched.encoding is SmsEncoding.UCS2
    assert char in switched.non_gsm
    assert switched.segments >= measure_sms(text).segments


@given(st.text(max_size=600))
def test_parts_rejoin_and_respect_the_limits(text: str) -> None:
    parts = split_sms(text)
    info = measure_sms(text)
    assert "".join(parts) == text
    assert len(parts) == info.segments
    if len(parts) > 1:
        limit = 153 if info.encoding is SmsEncoding.GSM7 else 67
        for part in parts:  # counted in the encoding of the whole message
            units = sum(
                (2 if c in GSM7_EXTENDED else 1)
                if info.encoding is SmsEncoding.GSM7
                else (2 if ord(c) > 0xFFFF else 1)
                for c in part
            )
            assert 0 < units <= limit


@given(gsm_text, st.sampled_from(BASIC + EXTENDED))
def test_appending_never_needs_fewer_parts(text: str, char: str) -> None:
    assert measure_sms(text + char).segments >= measure_sms(text).segments
