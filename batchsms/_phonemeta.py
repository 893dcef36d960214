"""The fast path for plainly written numbers, and the only code that leans on phonenumbers' private internals.

Why it exists: speed. On 100,000 distinct Australian mobiles written four common ways (timeit,
best of 5, on the machine of benchmarks/RESULTS.md), ``phonenumbers.parse`` + ``is_valid_number`` +
``number_type`` cost ~33 µs a number, and ``PhoneBook`` on the public API alone ~24 µs;
``PhoneBook`` with :class:`FastPath` ~3 µs (``FastPath.verdict`` itself ~1.8 µs). Even so the
phone verdict is ~40% of the ~7.8 µs a row of a million-row check costs on one core
(benchmarks/NOTES.md); without the fast path it would be most of the check.

How: :class:`FastPath` reads phonenumbers' own metadata and replays, in Python, the parts of
``phonenumberutil`` that decide a plainly written number's verdict. It only ever answers *valid*
(an E.164 form and a number type); for anything it does not model, or that is not plainly valid,
it answers None and the caller asks the public API. What it mirrors, all private to phonenumbers:

* ``_number_type_helper``: the order in which the type descs are tried (``_TYPE_ORDER``), turned
  into one combined regex per national number length;
* ``_is_number_matching_desc`` and ``_match_national_number``: possible lengths, then a full match;
* ``_maybe_extract_country_code``, ``_maybe_strip_national_prefix_carrier_code`` and
  ``_region_code_for_number_from_list``: the steps of ``parse`` that matter for plain digits;
* ``_test_number_length``, which it calls;
* the attributes of ``PhoneMetadata`` and ``PhoneNumberDesc`` it reads (``_METADATA_ATTRS``); the
  class itself says it "isn't stable" and is "libphonenumber-internal".

Checked against phonenumbers 8.13.0, 8.13.55, 9.0.0 and 9.0.43: ``tests/test_phones.py`` (the
fast path against phonenumbers over every region's example numbers and thousands of generated
ones) passes on each, and pyproject.toml pins that range. A later release may move any of this, so
:func:`problems` looks for every name above, and for the shapes it relies on, each time a fast
path is made; if anything is missing or has changed, :func:`fast_path` returns None and
``PhoneBook`` uses the public API alone: the same verdicts, only slower.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    PhoneMetadata,
    PhoneNumberDesc,
    PhoneNumberType,
    ValidationResult,
)
from phonenumbers import phonenumberutil as _pnu

#: The type descs in the order ``_number_type_helper`` tries them before fixed-line and mobile.
_TYPE_ORDER = (
    ("premium_rate", "PREMIUM_RATE"), ("toll_free", "TOLL_FREE"), ("shared_cost", "SHARED_COST"),
    ("voip", "VOIP"), ("personal_number", "PERSONAL_NUMBER"), ("pager", "PAGER"), ("uan", "UAN"),
    ("voicemail", "VOICEMAIL"),
)
#: The names ``_number_type_helper`` reads from the metadata and PhoneNumberType, in order of first use.
_HELPER_NAMES = (
    "general_desc", "UNKNOWN", *(name for pair in _TYPE_ORDER for name in pair),
    "fixed_line", "same_mobile_and_fixed_line_pattern", "FIXED_LINE_OR_MOBILE", "mobile", "FIXED_LINE", "MOBILE",
)
#: phonenumberutil functions this module calls (first) or replays (the rest).
_PRIVATE_FUNCTIONS = (
    "_test_number_length", "_number_type_helper", "_is_number_matching_desc", "_match_national_number",
    "_maybe_extract_country_code", "_maybe_strip_national_prefix_carrier_code", "_region_code_for_number_from_list",
)
_METADATA_ATTRS = (
    "general_desc", *(name for name, _ in _TYPE_ORDER), "fixed_line", "mobile",
    "same_mobile_and_fixed_line_pattern", "leading_digits", "national_prefix_for_parsing",
    "national_prefix_transform_rule", "international_prefix", "country_code",
)
_DESC_ATTRS = ("national_number_pattern", "possible_length")


def problems(region: str = "AU") -> list[str]:
    """What the fast path needs from phonenumbers and does not find; empty when it is safe to use.

    A function, not an import-time constant, so that each ``PhoneBook`` looks afresh (it costs
    ~15 µs) and a test can take a name away and see the fallback. ``region``'s metadata is the
    one whose attributes are checked; every region's metadata is an instance of the same class.
    """
    found = []
    for name in _PRIVATE_FUNCTIONS:
        if not callable(getattr(_pnu, name, None)):
            found.append(f"phonenumberutil.{name} is missing")
    if found:
        return found
    try:
        inspect.signature(_pnu._test_number_length).bind("0", None)
    except (TypeError, ValueError):
        found.append("phonenumberutil._test_number_length no longer takes (national_number, metadata)")
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is not None:
        found += [f"PhoneMetadata.{name} is missing" for name in _METADATA_ATTRS if not hasattr(metadata, name)]
        general = getattr(metadata, "general_desc", None)
        if general is not None:
            found += [f"PhoneNumberDesc.{name} is missing" for name in _DESC_ATTRS if not hasattr(general, name)]
        # The type order, read from the helper's bytecode: co_names lists the attributes and globals
        # a function reads in order of first use, so a reordered or added type shows up here.
        code = getattr(_pnu._number_type_helper, "__code__", None)
        used = tuple(name for name in (code.co_names if code is not None else ())
                     if hasattr(metadata, name) or isinstance(getattr(PhoneNumberType, name, None), int))
        if used != _HELPER_NAMES:
            found.append("phonenumberutil._number_type_helper no longer tries the number types in the "
                         f"order mirrored here: {used}")
    return found


def fast_path(country: str) -> FastPath | None:
    """A :class:`FastPath` for ``country``, or None when :func:`problems` finds any."""
    return None if problems(country) else FastPath(country)


_TOO_SHORT_ETC = frozenset({ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
                            ValidationResult.INVALID_LENGTH})
#: Patterns that cannot be put in one alternation unchanged: a backreference or a named group.
_UNSAFE_TO_COMBINE = re.compile(r"\\[1-9]|\(\?P")

_Match = Callable[[str], "re.Match[str] | None"]


def _fullmatch(pattern: str | None) -> _Match | None:
    return re.compile(f"(?:{pattern})").fullmatch if pattern else None


class _Desc:
    """A PhoneNumberDesc compiled once: its possible lengths and a full-match regex."""

    __slots__ = ("lengths", "match", "pattern")

    def __init__(self, desc: PhoneNumberDesc | None) -> None:
        self.pattern: str | None = getattr(desc, "national_number_pattern", None) if desc is not None else None
        self.lengths = frozenset(desc.possible_length) if desc is not None else frozenset()
        self.match = _fullmatch(self.pattern)

    def matches(self, nsn: str) -> bool:
        """phonenumberutil._is_number_matching_desc."""
        if self.match is None or (self.lengths and len(nsn) not in self.lengths):
            return False
        return self.match(nsn) is not None


class _Region:
    """One region's metadata, compiled for the fast path."""

    def __init__(self, metadata: PhoneMetadata) -> None:
        self.metadata = metadata
        self.general = _Desc(metadata.general_desc)
        self.general_pattern = _fullmatch(metadata.general_desc.national_number_pattern)
        # Descs without a pattern never match: leave them out of the loop.
        self.types = [(d.lengths, d.match, d.pattern, getattr(PhoneNumberType, kind)) for d, kind in
                      ((_Desc(getattr(metadata, name)), kind) for name, kind in _TYPE_ORDER) if d.match]
        self.fixed = _Desc(metadata.fixed_line)
        self.mobile = _Desc(metadata.mobile)
        self.same_mobile_fixed = metadata.same_mobile_and_fixed_line_pattern
        #: Every desc _number_type_helper may answer from, in its order, as (lengths, match, pattern, type).
        self.descs = list(self.types)
        if self.fixed.match:
            self.descs.append((self.fixed.lengths, self.fixed.match, self.fixed.pattern, PhoneNumberType.FIXED_LINE))
        if not self.same_mobile_fixed and self.mobile.match:
            self.descs.append((self.mobile.lengths, self.mobile.match, self.mobile.pattern, PhoneNumberType.MOBILE))
        #: False when a pattern cannot join the combined regex; FastPath then leaves the region to phonenumbers
        #: (no region's metadata has such a pattern today).
        self.combinable = not any(_UNSAFE_TO_COMBINE.search(pattern) for _, _, pattern, _ in self.descs)
        self._by_length: dict[int, _Match | None] = {}  # NSN length -> the combined regex's fullmatch
        self._kinds: dict[str | None, int] = {}  # group name -> PhoneNumberType (the same name means the same desc)
        self._length_verdicts: dict[int, int] = {}
        self.leading = re.compile(metadata.leading_digits).match if metadata.leading_digits else None
        prefix = metadata.national_prefix_for_parsing
        self.prefix = re.compile(prefix).match if prefix else None
        self.transform = metadata.national_prefix_transform_rule
        idd = metadata.international_prefix
        self.idd = re.compile(idd).match if idd else None
        self.country_code: int = metadata.country_code
        self.code = str(metadata.country_code)

    def _combined(self, size: int) -> _Match | None:
        """One regex for every type desc that admits NSNs of ``size`` digits, in the helper's order.

        Alternation tries alternatives left to right, and ``fullmatch`` only accepts one that
        spans the whole NSN, so the first named group that matched is the first type (in
        ``_number_type_helper``'s order) whose pattern matches: one regex call instead of ten.
        """
        try:
            return self._by_length[size]
        except KeyError:
            pass
        parts = []
        for i, (lengths, _, pattern, kind) in enumerate(self.descs):
            if not lengths or size in lengths:
                parts.append(f"(?P<t{i}>{pattern})")
                self._kinds[f"t{i}"] = kind
        combined = self._by_length[size] = re.compile("|".join(parts)).fullmatch if parts else None
        return combined

    def number_type(self, nsn: str) -> int:
        """phonenumberutil._number_type_helper: the general desc, then one combined regex.

        Only for a :attr:`combinable` region (FastPath never asks another).
        """
        if not self.general.matches(nsn):
            return PhoneNumberType.UNKNOWN
        combined = self._combined(len(nsn))
        found = combined(nsn) if combined is not None else None
        if found is None:
            return PhoneNumberType.UNKNOWN
        # Only one alternative takes part in a match, and its named group encloses (so closes
        # after) any group inside it: lastgroup names it.
        kind = self._kinds.get(found.lastgroup)
        if kind is None:  # pragma: no cover - defensive: look for the group that matched
            kind = next((k for name, k in self._kinds.items() if found.groupdict().get(name) is not None),
                        PhoneNumberType.UNKNOWN)
        if kind == PhoneNumberType.FIXED_LINE and (self.same_mobile_fixed or self.mobile.matches(nsn)):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return kind

    def test_length(self, number: str) -> int:
        """phonenumberutil._test_number_length for the general desc: it depends on the length alone."""
        size = len(number)
        verdict = self._length_verdicts.get(size)
        if verdict is None:
            verdict = self._length_verdicts[size] = _pnu._test_number_length(number, self.metadata)
        return verdict

    def viable(self, number: str) -> bool:
        """phonenumberutil._match_national_number(number, general_desc, False): no length check."""
        return self.general_pattern is not None and self.general_pattern(number) is not None


class FastPath:
    """Valid verdicts for plainly written numbers, exactly as phonenumbers would give them.

    Returns None whenever the number is not plainly valid, or whenever any rule of
    phonenumbers.parse that this path does not model (international dialling
    prefixes, national prefixes after +cc, carrier codes, leading zeros) might
    apply; the caller then asks phonenumbers itself.
    """

    def __init__(self, country: str) -> None:
        self._regions: dict[str, _Region | None] = {}
        self._by_cc: dict[int, list[_Region]] = {}
        self.home = self._region(country)

    def _region(self, code: str) -> _Region | None:
        if code not in self._regions:
            metadata = PhoneMetadata.metadata_for_region(code, None)
            self._regions[code] = _Region(metadata) if metadata is not None else None
        return self._regions[code]

    def verdict(self, plus: bool, digits: str) -> tuple[str, int] | None:
        """``(E.164, PhoneNumberType)`` for a valid number, else None."""
        home = self.home
        if home is None or not digits or digits[0] == "0" and plus:
            return None
        if plus:
            for size in (1, 2, 3):
                cc = int(digits[:size])
                if cc in COUNTRY_CODE_TO_REGION_CODE:
                    break
            else:
                return None
            nsn = digits[size:]
            main = self._region(COUNTRY_CODE_TO_REGION_CODE[cc][0])
            if main is None or (main.prefix is not None and main.prefix(nsn) is not None):
                return None  # a national prefix after +cc: phonenumbers may strip it
        else:
            if home.idd is not None and home.idd(digits) is not None:
                return None  # an international dialling prefix such as 0011
            cc = home.country_code
            nsn = digits
            code = home.code
            if digits.startswith(code):  # _maybe_extract_country_code for the default country
                potential = digits[len(code):]
                if home.prefix is not None and home.prefix(potential) is not None:
                    return None
                too_long = home.test_length(digits) == ValidationResult.TOO_LONG
                if (not home.viable(digits) and home.viable(potential)) or too_long:
                    nsn = potential
            if nsn is digits and home.prefix is not None:
                match = home.prefix(nsn)
                if match is not None:  # _maybe_strip_national_prefix_carrier_code
                    if match.end() == 0 or (home.transform and match.groups() and match.groups()[-1] is not None):
                        return None
                    stripped = nsn[match.end():]
                    # phonenumbers keeps the prefix when the original is viable and the stripped
                    # number is not; an answer below needs the stripped number valid, hence viable,
                    # so that case can only end in None anyway.
                    if home.test_length(stripped) in _TOO_SHORT_ETC:
                        return None
                    nsn = stripped
        if not nsn or nsn[0] == "0" or len(nsn) > 17:
            return None  # leading zeros and odd lengths: leave them to phonenumbers
        regions = self._by_cc.get(cc)
        if regions is None:
            found = [r for r in map(self._region, COUNTRY_CODE_TO_REGION_CODE.get(cc, ())) if r is not None]
            # With no regions to try, every number of this country code goes to phonenumbers.
            regions = self._by_cc[cc] = found if all(r.combinable for r in found) else []
        kind = PhoneNumberType.UNKNOWN
        if len(regions) == 1:
            kind = regions[0].number_type(nsn)
        else:  # phonenumberutil._region_code_for_number_from_list, then number_type for that region
            for candidate in regions:
                if candidate.leading is not None:
                    if candidate.leading(nsn):
                        kind = candidate.number_type(nsn)
                        break
                else:
                    kind = candidate.number_type(nsn)
                    if kind != PhoneNumberType.UNKNOWN:
                        break
        if kind == PhoneNumberType.UNKNOWN:
            return None
        return f"+{cc}{nsn}", kind
