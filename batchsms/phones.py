"""E.164 normalisation of the numbers people type, with a default country.

Parsing with ``phonenumbers`` costs 20–50 µs a number, which would be most of a
million-row check. Two things make it cheap without changing a single verdict:

* every verdict is cached by the raw text (up to :attr:`PhoneBook.CACHE_LIMIT`
  entries), so a number repeated in a sheet, written the same way, costs a
  dict lookup;
* plainly written numbers (digits, spaces, ``( ) . -`` and a leading ``+``)
  first go to the fast path in :mod:`batchsms._phonemeta`, which replays
  phonenumbers' own metadata and only ever answers *valid*; anything unusual
  or invalid goes to the public API (``phonenumbers.parse``, ``number_type``,
  ``is_possible_number_with_reason``) here. ``tests/test_phones.py`` checks the
  two against each other over many thousands of generated numbers.

The fast path leans on phonenumbers' private internals; when a release lacks
one of them, ``_phonemeta.fast_path`` returns None and every number takes the
public API: the same verdicts, only slower.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

from . import _phonemeta

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


class PhoneBook:
    """Normalises numbers for one default country, remembering every verdict.

    ``fast=False`` uses phonenumbers' public API alone, as a PhoneBook does anyway when the
    installed phonenumbers lacks an internal the fast path needs (``_phonemeta.problems``).
    """

    def __init__(self, country: str = "AU", *, fast: bool = True) -> None:
        country = country.upper()
        if country not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown country {country!r}: use a two-letter ISO code such as AU")
        self.country = country
        self._cache: dict[str, Phone] = {}
        self._fast = _phonemeta.fast_path(country) if fast else None

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
        """The verdict from phonenumbers' public API, with a reason a person can act on."""
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
