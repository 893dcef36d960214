"""E.164 normalisation of the numbers people type, with a default country.

Parsing with ``phonenumbers`` costs ~20 µs a number, and contact sheets repeat
numbers (the same manager, the same test phone), so every verdict is cached by
the raw text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

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


@dataclass(frozen=True, slots=True)
class Phone:
    """The verdict on one typed number: its E.164 form, or why there is none."""

    e164: str | None
    mobile: bool = False
    region: str | None = None
    reason: str = ""  # why invalid, or what kind of non-mobile number it is

    @property
    def valid(self) -> bool:
        return self.e164 is not None


class PhoneBook:
    """Normalises numbers for one default country, remembering every verdict."""

    def __init__(self, country: str = "AU") -> None:
        country = country.upper()
        if country not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown country {country!r}: use a two-letter ISO code such as AU")
        self.country = country
        self._cache: dict[str, Phone] = {}

    def normalise(self, raw: str) -> Phone:
        """The verdict on ``raw``; cached, so repeated numbers cost a dict lookup."""
        phone = self._cache.get(raw)
        if phone is None:
            phone = self._cache[raw] = self._parse(raw)
        return phone

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
        if not phonenumbers.is_valid_number(number):
            why = _LENGTH_REASONS.get(phonenumbers.is_possible_number_with_reason(number))
            region = phonenumbers.region_code_for_country_code(number.country_code)
            where = f"in {region}" if region and region != "ZZ" else f"for +{number.country_code}"
            return Phone(None, reason=why or f"it is not a number in use {where}")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        kind = phonenumbers.number_type(number)
        region = phonenumbers.region_code_for_number(number)
        if kind in MOBILE_TYPES:
            return Phone(e164, mobile=True, region=region)
        return Phone(e164, mobile=False, region=region, reason=_TYPE_NAMES.get(kind, "not a mobile"))
