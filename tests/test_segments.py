"""Segment counts at every boundary, and the look-alike characters that force UCS-2."""

import pytest

from batchsms import segments as seg

CYR = "ж"  # one UTF-16 unit, not GSM-7
EMOJI = "😀"  # two UTF-16 units


@pytest.mark.parametrize(
    ("text", "encoding", "units", "parts"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("€" * 80 + "a", "GSM-7", 161, 2),
        # an extension character that would straddle the 153-septet boundary moves whole
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),
        ("a" * 151 + "€" + "a" * 153, "GSM-7", 306, 2),
        (CYR * 70, "UCS-2", 70, 1),
        (CYR * 71, "UCS-2", 71, 2),
        (CYR * 134, "UCS-2", 134, 2),
        (CYR * 135, "UCS-2", 135, 3),
        (EMOJI * 35, "UCS-2", 70, 1),
        (EMOJI * 35 + "a", "UCS-2", 71, 2),
        # an emoji (a surrogate pair) is never split across parts
        (CYR * 66 + EMOJI + CYR * 66, "UCS-2", 134, 3),
        (CYR * 65 + EMOJI + CYR * 67, "UCS-2", 134, 2),
        ("Ça va", "GSM-7", 5, 1),
        ("ça va", "UCS-2", 5, 1),  # lower-case c-cedilla is not in GSM 03.38
        ("price `5`", "UCS-2", 9, 1),  # nor is the backtick
        ("line\nbreak\r", "GSM-7", 11, 1),
    ],
)
def test_count(text, encoding, units, parts):
    assert seg.count(text) == seg.Segments(encoding, units, parts)


def test_every_extension_character_costs_two():
    for c in "^{}\\[]~|€":
        assert seg.count(c) == seg.Segments("GSM-7", 2, 1), c


def test_replacement_of_look_alikes():
    text = "It’s on – don’t miss it…"
    assert seg.gsm7_replacement(text) == "It's on - don't miss it..."
    assert seg.gsm7_replacement("emoji 😀 ’") is None
    assert seg.ucs2_forcers(text) == ["’", "–", "…"]
    assert seg.char_name("’") == "’ (RIGHT SINGLE QUOTATION MARK)"
    assert seg.char_name("\u00a0") == "\\xa0 (NO-BREAK SPACE)"
