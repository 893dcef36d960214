"""A number as it will be dialled: ``AU mobile · +61 412 345 678``, for the preview's Will text column.

Why not just ask phonenumbers: ``parse`` + ``format_number(INTERNATIONAL)`` +
``region_code_for_number`` + ``number_type`` cost ~39 µs a number (~19 µs without the parse),
~40 s for a million-row preview. :func:`describe` gives exactly their answers
(``tests/test_numbers.py`` holds it to them over every region's example numbers and thousands of
generated ones) for ~4 µs a distinct number and ~0.2 µs a repeated one (timeit, best of 3, a
million distinct AU/NZ mobiles, and a million rows of 50,000 distinct numbers: 0.45 µs a row
with every first sight paid):

* answers are cached by the E.164 text (up to :attr:`Dialler.CACHE_LIMIT`), so a number that
  recurs in a sheet is described once;
* the region and the line type come from the regexes :mod:`batchsms._phonemeta` compiles from
  phonenumbers' metadata (one combined regex per region and length, already held to
  ``_number_type_helper`` by ``tests/test_phones.py``), walked in the order of
  ``region_code_for_number``: +1, +44, +7, +61 … are shared by several regions, and which one a
  number belongs to can depend on every digit (a +1 number is US or CA by its full pattern);
* the grouping comes from the same format rules ``format_number`` picks from, compiled once per
  (country code, national number length). Every format pattern in the metadata is a run of
  ``\\d`` groups (``(\\d{3})(\\d{3,4})``), so whether it matches, and where its groups fall, depends
  on the length alone; only the leading-digits pattern, which can read several digits
  (``1(?:30|[89])``), is matched per number. A rule that is not of that shape is applied as
  phonenumbers applies it, with ``re.sub``.

Anything the fast path does not model (a national prefix after the country code, leading zeros,
non-geographic codes such as +800, invalid numbers, text that is not ``+`` and digits) goes to
phonenumbers itself, as does everything when :func:`batchsms._phonemeta.problems` finds that the
installed phonenumbers lacks an internal the fast path mirrors: the same answers, only slower.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from operator import itemgetter
from typing import NamedTuple

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneMetadata, PhoneNumberType

from . import _phonemeta

#: Line types as a person reads them; phonenumbers' UNKNOWN is what it says of a number not in use.
KINDS: dict[int, str] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "landline or mobile",
    PhoneNumberType.TOLL_FREE: "toll-free",
    PhoneNumberType.PREMIUM_RATE: "premium-rate",
    PhoneNumberType.SHARED_COST: "shared-cost",
    PhoneNumberType.VOIP: "VoIP",
    PhoneNumberType.PERSONAL_NUMBER: "personal number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "company (UAN)",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "invalid",
}


class Dialled(NamedTuple):
    """One number as it will be dialled.

    A NamedTuple, like :class:`batchsms.phones.Phone`: a preview builds one per distinct number.
    """

    international: str  #: phonenumbers' INTERNATIONAL format: ``+61 412 345 678``, ``+1 415-555-2671``
    region: str  #: region_code_for_number: ``AU``, ``US`` or ``CA`` for +1, ``001`` for +800; "" if none
    kind: str  #: the line type in :data:`KINDS`' words: ``mobile``, ``landline or mobile``, ``toll-free`` …

    @property
    def label(self) -> str:
        """``AU mobile · +61 412 345 678``: what the preview's Will text column shows.

        The kind comes first so that the text does not start with ``+``: in a CSV file a
        cell starting with ``+`` and text is formula-like, and would get a ``'`` in front
        (see :mod:`batchsms.cells`) — on every row of a preview.
        """
        where = f"{self.region} " if self.region else ""
        return f"{where}{self.kind} · {self.international}"


def describe_slowly(e164: str) -> Dialled:
    """What phonenumbers' public API says of ``e164``: the oracle :class:`Dialler` must equal.

    Raises ValueError for text phonenumbers cannot read as an international number.
    """
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException as exc:
        raise ValueError(f"{e164!r} is not a number in international form: {exc}") from exc
    return Dialled(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
                   phonenumbers.region_code_for_number(number) or "", KINDS[phonenumbers.number_type(number)])


#: Country calling codes as text: no code has a leading zero, so text and int agree on what is a code.
_CODES = frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)
_new_tuple = tuple.__new__

#: A format pattern whose matching depends on the length of the number alone: only ``\d`` atoms.
_DIGITS_ONLY = re.compile(r"(?:\(\\d(?:\{\d+(?:,\d+)?\})?\)|\\d(?:\{\d+(?:,\d+)?\})?)+")
#: A format rule that is group references (one digit each) and literal text, and nothing re.sub reads otherwise.
_PLAIN_RULE = re.compile(r"(?:[^\\]|\\[1-9](?![0-9]))*")
_GROUP_REF = re.compile(r"\\([1-9])")

_Fill = Callable[[str], str]
_Match = Callable[[str], "re.Match[str] | None"]
#: One format that can apply to a given length: (leading-digits match or None, full match or None, fill).
_Candidate = tuple[_Match | None, _Match | None, _Fill]


def _substitute(compiled: re.Pattern[str], rule: str) -> _Fill:
    """What _format_nsn_using_pattern does for INTERNATIONAL (re.sub), for what a template cannot replay."""

    def fill(nsn: str) -> str:
        return compiled.sub(rule, nsn)

    return fill


def _template(pattern: str, rule: str, size: int) -> _Fill | None:
    """``re.sub(pattern, rule, nsn)`` for every ``nsn`` of ``size`` digits, as slicing; None if ``pattern`` misses.

    Only for a :data:`_DIGITS_ONLY` pattern: on digits it matches, and places its groups, the
    same way whichever digits they are, so one sample of the length stands for all. re.sub
    substitutes the match at 0 and then any further match: one that ends before the end of the
    number, or a pattern that matches the empty string, would leave more than one substitution,
    so those fall back to re.sub itself.
    """
    compiled = re.compile(pattern)
    sample = "0" * size
    if compiled.fullmatch(sample) is None:
        return None
    found = compiled.match(sample)
    if found is None or found.end() != size or compiled.fullmatch("") is not None or not _PLAIN_RULE.fullmatch(rule):
        return _substitute(compiled, rule)
    parts = _GROUP_REF.split(rule)  # literal, group, literal, group, …, literal
    refs = [int(ref) for ref in parts[1::2]]
    if any(ref > compiled.groups for ref in refs):
        return _substitute(compiled, rule)  # re.sub raises; so shall this
    text = "%s".join(literal.replace("%", "%%") for literal in parts[::2])
    if not refs:
        return lambda nsn: text % ()
    pick = itemgetter(*(slice(*found.span(ref)) for ref in refs))
    if len(refs) == 1:
        return lambda nsn: text % (pick(nsn),)
    return lambda nsn: text % pick(nsn)


class _Country:
    """One country calling code compiled for the fast path: its regions, in order, and its formats."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.prefix = f"+{code} "
        names = COUNTRY_CODE_TO_REGION_CODE[code]
        metadata = [PhoneMetadata.metadata_for_region(name, None) for name in names]
        #: None leaves the whole code to phonenumbers: non-geographic (+800), or a pattern _phonemeta cannot combine.
        self.regions: list[tuple[str, _phonemeta._Region]] | None = None
        if all(meta is not None for meta in metadata):
            compiled = [(name, _phonemeta._Region(meta))
                        for name, meta in zip(names, metadata, strict=True) if meta is not None]
            if all(region.combinable for _, region in compiled):
                self.regions = compiled
        main = metadata[0]
        found = (main.intl_number_format or main.number_format) if main is not None else []
        #: (the last, most detailed, leading-digits pattern or None, pattern, rule) of each format, in order
        self.formats = [(number_format.leading_digits_pattern[-1] if number_format.leading_digits_pattern else None,
                         number_format.pattern, number_format.format) for number_format in found
                        if number_format.pattern is not None and number_format.format is not None]
        if len(self.formats) != len(found):
            self.regions = None  # a format without a pattern or rule: whatever phonenumbers does with it
        self.national_prefix = self.regions[0][1].prefix if self.regions else None
        self._by_length: dict[int, list[_Candidate]] = {}

    def region_and_kind(self, nsn: str) -> tuple[str, int]:
        """region_code_for_number, then number_type in that region (only for :attr:`regions` not None)."""
        regions = self.regions
        assert regions is not None
        if len(regions) == 1:
            name, region = regions[0]
            return name, region.number_type(nsn)
        for name, region in regions:  # phonenumberutil._region_code_for_number_from_list
            if region.leading is not None:
                if region.leading(nsn):
                    return name, region.number_type(nsn)
            else:
                kind = region.number_type(nsn)
                if kind != PhoneNumberType.UNKNOWN:
                    return name, kind
        return "", PhoneNumberType.UNKNOWN

    def candidates(self, size: int) -> list[_Candidate]:
        """The formats that can fit a national number of ``size`` digits, in format_number's order."""
        found = self._by_length.get(size)
        if found is None:
            found = []
            for leading, pattern, rule in self.formats:
                match = re.compile(leading).match if leading is not None else None
                if _DIGITS_ONLY.fullmatch(pattern):
                    fill = _template(pattern, rule, size)
                    if fill is not None:
                        found.append((match, None, fill))
                else:
                    compiled = re.compile(pattern)
                    found.append((match, compiled.fullmatch, _substitute(compiled, rule)))
            self._by_length[size] = found
        return found

    def format(self, nsn: str) -> str:
        """format_number(INTERNATIONAL): ``+cc``, a space, the national number grouped by the first format that fits."""
        for leading, full, fill in self.candidates(len(nsn)):
            if (leading is None or leading(nsn)) and (full is None or full(nsn)):
                return self.prefix + fill(nsn)
        return self.prefix + nsn


class Dialler:
    """Describes numbers exactly as phonenumbers would, remembering every answer.

    ``fast=False`` asks phonenumbers' public API for every number, as a Dialler does anyway
    when :func:`batchsms._phonemeta.problems` finds something missing.
    """

    #: Answers kept before the cache starts afresh; a preview's repeats are mostly close together,
    #: and a million-entry dict of unique numbers costs memory for no hits.
    CACHE_LIMIT = 100_000

    def __init__(self, *, fast: bool = True) -> None:
        self._cache: dict[str, Dialled] = {}
        self.fast = fast and not _phonemeta.problems()
        self._countries: dict[str, _Country] = {}  # by the country code's digits

    def describe(self, e164: str) -> Dialled:
        """``e164`` (``+61412345678``) as it will be dialled; see :func:`describe`."""
        found = self._cache.get(e164)
        if found is None:
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
            found = self._cache[e164] = self._describe(e164)
        return found

    def _describe(self, e164: str) -> Dialled:
        """The fast path for ``+`` and ASCII digits that phonenumbers reads without a national-prefix rule."""
        digits = e164[1:]
        if not (self.fast and e164[:1] == "+" and digits.isdigit() and digits.isascii()) or digits[0] == "0":
            return describe_slowly(e164)
        # phonenumberutil._extract_country_code: the first of 1, 2, 3 digits that is a country code
        code = digits[:1]
        if code not in _CODES:
            code = digits[:2]
            if code not in _CODES:
                code = digits[:3]
        country = self._countries.get(code)
        if country is None:
            if code not in _CODES:
                return describe_slowly(e164)
            country = self._countries[code] = _Country(int(code))
        nsn = digits[len(code):]
        # As _phonemeta.FastPath: a national prefix after +cc may be stripped by parse, leading zeros are
        # kept aside, and more than 17 digits is too long; phonenumbers handles all of those.
        if (country.regions is None or not nsn or nsn[0] == "0" or len(nsn) > 17
                or (country.national_prefix is not None and country.national_prefix(nsn) is not None)):
            return describe_slowly(e164)
        region, kind = country.region_and_kind(nsn)
        if kind == PhoneNumberType.UNKNOWN:
            return describe_slowly(e164)  # invalid: let phonenumbers say what it makes of it
        return _new_tuple(Dialled, (country.format(nsn), region, KINDS[kind]))  # Dialled(...) without its __new__

_DIALLER = Dialler()


def describe(e164: str) -> Dialled:
    """``e164`` as it will be dialled: phonenumbers' INTERNATIONAL format, region and line type.

    ``describe("+61412345678").label == "AU mobile · +61 412 345 678"``. Exactly what
    :func:`describe_slowly` (phonenumbers' public API) gives, at a fraction of the cost; cached
    by the text, so each distinct number is worked out once. Raises ValueError for text
    phonenumbers cannot read as an international number (an invalid but readable number is
    described, with the kind ``invalid``).

    It takes no line type from the caller: a check's verdict (``Phone.mobile``) cannot tell a
    mobile from a ``landline or mobile`` number, and the exact type costs ~0.7 µs here.
    """
    return _DIALLER.describe(e164)
