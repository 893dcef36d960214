"""E.164 normalisation of the numbers people type, with a default country.

Parsing with ``phonenumbers`` costs 20–50 µs a number, which is most of a
million-row check. Two things make it cheap without changing a single verdict:

* every verdict is cached by the raw text, and by a canonical key (``+``-flag
  and digits) for plainly punctuated numbers, so ``0412 345 678`` and
  ``0412-345-678`` are parsed once;
* :class:`FastPath` reads well-formed numbers with phonenumbers' own metadata
  (the same regular expressions, in the same order as ``_number_type_helper``)
  and only ever answers *valid*: anything unusual or invalid goes to
  ``phonenumbers.parse`` itself. ``tests/test_phones.py`` checks it against
  phonenumbers over many thousands of generated numbers in many formats.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    NumberParseException,
    PhoneMetadata,
    PhoneNumberType,
    ValidationResult,
)
from phonenumbers import phonenumberutil as _pnu

MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})

_TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "a landline",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.VOIP: "a VoIP number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal number",
    PhoneNumberType.PAGER: "a pager",
    PhoneNumberType.UAN: "a company (UAN) number",
    PhoneNumberType.VOICEMAIL: "a voicemail number",
}

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "its country code is not one that exists",
    NumberParseException.NOT_A_NUMBER: "it is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "it is too short",
    NumberParseException.TOO_LONG: "it is too long",
}

_LENGTH_REASONS = {
    ValidationResult.TOO_SHORT: "it has too few digits",
    ValidationResult.TOO_LONG: "it has too many digits",
    ValidationResult.INVALID_LENGTH: "it has the wrong number of digits",
    ValidationResult.INVALID_COUNTRY_CODE: "its country code is not one that exists",
}

#: Text that can only be meant as a phone number (used to tell numbers from alphanumeric senders).
_LETTERS = re.compile(r"[A-Za-z]")
PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]+$")


class Phone(NamedTuple):
    """The verdict on one typed number: its E.164 form, or why there is none.

    A NamedTuple rather than a frozen dataclass: a million-row check builds one per
    distinct number, and a frozen dataclass is several times slower to construct.
    """

    e164: str | None
    mobile: bool = False
    reason: str = ""  # why invalid, or what kind of non-mobile number it is

    @property
    def valid(self) -> bool:
        return self.e164 is not None


#: Punctuation people put in numbers, deleted to find the digits (phonenumbers ignores it too).
_PUNCTUATION = str.maketrans("", "", " ().-")
_TOO_SHORT_ETC = frozenset({ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
                            ValidationResult.INVALID_LENGTH})
_UNSAFE_TO_COMBINE = re.compile(r"\\[1-9]|\(\?P")
_TYPE_ORDER = (  # the order of phonenumberutil._number_type_helper
    ("premium_rate", PhoneNumberType.PREMIUM_RATE), ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST), ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER), ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN), ("voicemail", PhoneNumberType.VOICEMAIL),
)


class _Desc:
    """A PhoneNumberDesc compiled once: its possible lengths and a full-match regex."""

    __slots__ = ("lengths", "match")

    def __init__(self, desc) -> None:
        pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
        self.lengths = frozenset(desc.possible_length) if desc is not None else frozenset()
        self.match = re.compile(f"(?:{pattern})").fullmatch if pattern else None

    def matches(self, nsn: str) -> bool:
        """phonenumberutil._is_number_matching_desc."""
        if self.match is None or (self.lengths and len(nsn) not in self.lengths):
            return False
        return self.match(nsn) is not None


class _Region:
    """One region's metadata, compiled for the fast path."""

    def __init__(self, metadata) -> None:
        self.metadata = metadata
        self.general = _Desc(metadata.general_desc)
        general_pattern = metadata.general_desc.national_number_pattern
        self.general_pattern = re.compile(f"(?:{general_pattern})").fullmatch if general_pattern else None
        # Descs without a pattern never match: leave them out of the loop.
        self.types = [(d.lengths, d.match, kind) for d, kind in
                      ((_Desc(getattr(metadata, name)), kind) for name, kind in _TYPE_ORDER) if d.match]
        self.fixed = _Desc(metadata.fixed_line)
        self.mobile = _Desc(metadata.mobile)
        self.same_mobile_fixed = metadata.same_mobile_and_fixed_line_pattern
        self._by_length: dict[int, tuple] = {}  # NSN length -> (combined regex, group names and types)
        self._kinds: dict[str, int] = {}  # group name -> PhoneNumberType (the same name means the same desc)
        self._length_verdicts: dict[int, int] = {}
        self.leading = re.compile(metadata.leading_digits).match if metadata.leading_digits else None
        prefix = metadata.national_prefix_for_parsing
        self.prefix = re.compile(prefix).match if prefix else None
        self.transform = metadata.national_prefix_transform_rule
        idd = metadata.international_prefix
        self.idd = re.compile(idd).match if idd else None
        self.country_code = metadata.country_code
        self.code = str(metadata.country_code)

    def _combined(self, size: int) -> tuple:
        """One regex for every type desc that admits NSNs of ``size`` digits, in the helper's order.

        Alternation tries alternatives left to right, and ``fullmatch`` only accepts one that
        spans the whole NSN, so the first named group that matched is the first type (in
        ``_number_type_helper``'s order) whose pattern matches: one regex call instead of ten.
        """
        entry = self._by_length.get(size)
        if entry is None:
            parts, names = [], []
            descs = list(self.types)
            descs += [(self.fixed.lengths, self.fixed.match, PhoneNumberType.FIXED_LINE)] if self.fixed.match else []
            if not self.same_mobile_fixed and self.mobile.match:
                descs.append((self.mobile.lengths, self.mobile.match, PhoneNumberType.MOBILE))
            if any(_UNSAFE_TO_COMBINE.search(match.__self__.pattern) for _, match, _ in descs):
                entry = (None, None)  # a backreference or named group: combining could change it
                self._by_length[size] = entry
                return entry
            for i, (lengths, match, kind) in enumerate(descs):
                if not lengths or size in lengths:
                    parts.append(f"(?P<t{i}>{match.__self__.pattern})")
                    names.append((f"t{i}", kind))
                    self._kinds[f"t{i}"] = kind
            entry = (re.compile("|".join(parts)).fullmatch if parts else None, names)
            self._by_length[size] = entry
        return entry

    def number_type(self, nsn: str) -> int:
        """phonenumberutil._number_type_helper: the general desc, then one combined regex."""
        if not self.general.matches(nsn):
            return PhoneNumberType.UNKNOWN
        combined, names = self._combined(len(nsn))
        if names is None:
            return self.number_type_reference(nsn)
        found = combined(nsn) if combined is not None else None
        if found is None:
            return PhoneNumberType.UNKNOWN
        # Only one alternative takes part in a match, and its named group encloses (so closes
        # after) any group inside it: lastgroup names it.
        kind = self._kinds.get(found.lastgroup)
        if kind is None:  # pragma: no cover - defensive: look for the group that matched
            kind = next((k for name, k in names if found.group(name) is not None), PhoneNumberType.UNKNOWN)
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

    def number_type_reference(self, nsn: str) -> int:
        """The same answer the slow way, desc by desc (kept to test the combined regex against)."""
        if not self.general.matches(nsn):
            return PhoneNumberType.UNKNOWN
        size = len(nsn)
        for lengths, match, kind in self.types:
            if (not lengths or size in lengths) and match(nsn) is not None:
                return kind
        if self.fixed.matches(nsn):
            if self.same_mobile_fixed or self.mobile.matches(nsn):
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            return PhoneNumberType.FIXED_LINE
        if not self.same_mobile_fixed and self.mobile.matches(nsn):
            return PhoneNumberType.MOBILE
        return PhoneNumberType.UNKNOWN

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
            regions = self._by_cc[cc] = [r for r in map(self._region, COUNTRY_CODE_TO_REGION_CODE.get(cc, ()))
                                         if r is not None]
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


class PhoneBook:
    """Normalises numbers for one default country, remembering every verdict."""

    def __init__(self, country: str = "AU", *, fast: bool = True) -> None:
        country = country.upper()
        if country not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown country {country!r}: use a two-letter ISO code such as AU")
        self.country = country
        self._cache: dict[str, Phone] = {}
        self._fast = FastPath(country) if fast else None

    #: Entries kept per cache before it starts afresh: repeats in a sheet are mostly close together,
    #: and a million-entry dict of unique numbers costs memory and cache misses for no hits.
    CACHE_LIMIT = 200_000

    def normalise(self, raw: str) -> Phone:
        """The verdict on ``raw``; cached, so repeated numbers cost a dict lookup."""
        phone = self._cache.get(raw)
        if phone is None:
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
            phone = self._cache[raw] = self._lookup(raw)
        return phone

    def _lookup(self, raw: str) -> Phone:
        """The fast path for plainly written numbers (digits, spaces, ( ) . - and a leading +)."""
        if self._fast is not None:
            digits = raw.replace(" ", "")
            if not digits.isdigit():  # the common spaced-out forms skip the slower translate
                digits = raw.translate(_PUNCTUATION)
            plus = digits.startswith("+")
            if plus:
                digits = digits[1:]
            first = raw.lstrip(" ")[:1]
            if digits.isdigit() and digits.isascii() and len(digits) <= 40 and (first in "+(" or first.isdigit()):
                found = self._fast.verdict(plus, digits)
                if found is not None:
                    e164, kind = found
                    if kind in MOBILE_TYPES:
                        return Phone(e164, True)
                    return Phone(e164, False, _TYPE_NAMES.get(kind, "not a mobile"))
        return self._parse(raw)

    def _parse(self, raw: str) -> Phone:
        text = raw.strip().lstrip("'")  # a leading ' is how Excel users force text
        if not text:
            return Phone(None, reason="it is empty")
        if _LETTERS.search(text):  # phonenumbers reads letters as keypad digits; here they are typos
            return Phone(None, reason="it contains letters")
        try:
            number = phonenumbers.parse(text, self.country)
        except NumberParseException as exc:
            return Phone(None, reason=_PARSE_REASONS.get(exc.error_type, str(exc)))
        kind = phonenumbers.number_type(number)  # UNKNOWN exactly when is_valid_number is False
        if kind == PhoneNumberType.UNKNOWN:
            why = _LENGTH_REASONS.get(phonenumbers.is_possible_number_with_reason(number))
            region = phonenumbers.region_code_for_country_code(number.country_code)
            where = f"in {region}" if region and region != "ZZ" else f"for +{number.country_code}"
            return Phone(None, reason=why or f"it is not a number in use {where}")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if kind in MOBILE_TYPES:
            return Phone(e164, mobile=True)
        return Phone(e164, mobile=False, reason=_TYPE_NAMES.get(kind, "not a mobile"))
