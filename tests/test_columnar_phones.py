"""Phone numbers settled over a whole column (phonecols) are exactly what ``rules.check_to`` says of each cell.

A cell is settled only when the per-cell rules would find it a plainly valid mobile of the
book's country, with the same E.164 text; everything else is left to those rules. Numbers
are generated in every shape people type (national, international, with 00/0011, spaces,
dots, dashes, brackets, a national prefix after the country code, too short, too long,
landlines, service numbers, other countries) for several countries.
"""

from __future__ import annotations

import random

import pytest

from batchsms import rules
from batchsms.phonecols import ALL_DIGITS, Settler, decisive_prefix, expand, first_match, full_match
from batchsms.phones import PhoneBook


def _cells(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    cells = []
    for _ in range(count):
        if rng.random() < 0.4:
            digits = f"4{rng.randint(0, 9)}{rng.randint(0, 9999999):07d}"
            cells.append(rng.choice([f"0{digits[:3]} {digits[3:6]} {digits[6:]}", f"+61 {digits}", f"61{digits}",
                                     f"(04) {digits[1:]}", f"+61-{digits}", f"0061{digits}", f"+61 (0) {digits}",
                                     f"0{digits}", f"0{digits}0", f"+64 2{digits[1:]}", f"2{digits[:8]}"]))
            continue
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 16)))
        prefix = rng.choice(["", "+", "0", "00", "61", "+61", "(", "0011", "1831", "01831", "+610", "+64", "64",
                             "1", "13", "1800", "+1", "+44", "07", "+91", "9"])
        separator = rng.choice(["", " ", "-", ".", ") ", " / "])
        cells.append((prefix + separator.join([digits[:3], digits[3:]])).strip())
    return cells


@pytest.mark.parametrize("country", ["AU", "NZ", "US", "GB", "IN", "DE"])
def test_settled_cells_are_what_the_rule_says(country):
    book = PhoneBook(country)
    cells = _cells(6000, sum(map(ord, country)))
    found = Settler(book).settle(cells)
    settled = dict(zip(found.settled.tolist(), found.e164, strict=True))
    reference = PhoneBook(country)
    missed = []
    keys = dict(zip(found.settled.tolist(), found.keys.tolist(), strict=True))
    for index, cell in enumerate(cells):
        value, problems = rules.check_to(cell, reference)
        plain = value is not None and not problems
        if index in settled:
            assert plain and value == settled[index], (cell, value, problems, settled[index])
            assert keys[index] == int(value[1:])
        elif plain:
            missed.append(cell)
    if country == "AU":
        assert len(settled) > 1000  # the home country's mobiles are settled by columns; left to the rules are
        # other countries' and the shapes phonenumbers parses with more steps (0011 61…, +61 (0)…)
        foreign = [c for c in missed if c.startswith("+") and not c.startswith("+61")]
        assert [c for c in missed if c not in foreign and not c.startswith(("+61 (0)", "+610", "0061", "0011"))] == []


def test_expansions_follow_the_regex_engine():
    # the first sequence that matches is the regex's match, and its length the match's end
    sequences = expand("(183[12])|0")
    assert sequences == ((1 << 1, 1 << 8, 1 << 3, (1 << 1) | (1 << 2)), (1 << 0,))
    assert expand("4\\d{2,3}") == ((1 << 4, ALL_DIGITS, ALL_DIGITS, ALL_DIGITS), (1 << 4, ALL_DIGITS, ALL_DIGITS))
    assert expand("4\\d{2,3}?") == ((1 << 4, ALL_DIGITS, ALL_DIGITS), (1 << 4, ALL_DIGITS, ALL_DIGITS, ALL_DIGITS))
    assert expand("(?=4)4") is None and expand("4\\d*") is not None and expand("(a)\\1") is None
    assert decisive_prefix(expand("4(?:79[01]|83[0-9])\\d{5}|1\\d{4,7}"), 9) == 4
    import numpy as np

    digits = np.array([[1, 8, 3, 1, 4, 10], [0, 4, 1, 2, 10, 10], [4, 1, 10, 10, 10, 10]], dtype=np.uint8)
    sizes = np.array([5, 4, 2])
    matched, end = first_match(digits, sizes, sequences)
    assert matched.tolist() == [True, True, False] and end.tolist() == [4, 1, 0]
    assert full_match(digits, sizes, expand("0\\d{3}|41")).tolist() == [False, True, True]


def _messy_cells(country: str, count: int, seed: int) -> list[str]:
    """Numbers near the region's example mobile, written every way people write them (and broken)."""
    import phonenumbers

    rng = random.Random(seed)
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    code = str(example.country_code) if example else "61"
    nsn = str(example.national_number) if example else "412345678"
    out = []
    for _ in range(count):
        digits = list(nsn)
        for _ in range(rng.randint(0, len(digits))):
            digits[rng.randrange(len(digits))] = rng.choice("0123456789")
        if rng.random() < 0.2:
            digits = digits[:-1] if rng.random() < 0.5 else digits + [rng.choice("0123456789")]
        text = "".join(digits)
        lead = rng.choice(["", "0", "+" + code, code, "00" + code, "+" + code + " (0)", "(0", "+", "0011" + code,
                           "011" + code, "8", "1", "+" + code + "0", "(+" + code + ")"])
        cut = rng.randint(0, len(text))
        out.append((lead + rng.choice(["", " ", "-", ".", ")", " - "]) + text[:cut] + rng.choice(["", " ", "-", "."])
                    + text[cut:]).strip())
    return out


def _settled_as_the_rule_says(countries: list[str], count: int) -> list[tuple]:
    import phonenumbers  # noqa: F401 - the regions come from it

    differences = []
    for n, country in enumerate(countries):
        book = PhoneBook(country)
        cells = _messy_cells(country, count, seed=1000 + n)
        found = Settler(book).settle(cells)
        reference = PhoneBook(country)
        for index, e164 in zip(found.settled.tolist(), found.e164, strict=True):
            value, problems = rules.check_to(cells[index], reference)
            if value != e164 or problems:
                differences.append((country, cells[index], e164, value, [p.code for p in problems]))
        assert found.heads == {e164[:4] for e164 in found.e164}, country
    return differences


def test_every_region_settles_only_what_the_rule_passes():
    """Every region phonenumbers knows, a few hundred messy numbers each: a cell settled by columns is one
    the row rule passes without a word, with the same E.164 (Tokelau's 4-digit example mobile, a
    placeholder, was settled before)."""
    import phonenumbers

    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    assert "TK" in regions
    assert _settled_as_the_rule_says(regions, 120) == []


@pytest.mark.slow
def test_every_region_settles_only_what_the_rule_passes_thoroughly():
    import phonenumbers

    assert _settled_as_the_rule_says(sorted(phonenumbers.SUPPORTED_REGIONS), 3000) == []
