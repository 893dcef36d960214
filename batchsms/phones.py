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

Besides the verdict, this module names countries as people write them (``NZ``,
``New Zealand``, ``UK``) for the sheet's Country column and ``--countries``, and
says in plain English why a number is wrong (too short, too long, not in use,
letters) or looks like a placeholder (``0400 000 000``, an example number).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import NamedTuple

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    NumberParseException,
    PhoneMetadata,
    PhoneNumberFormat,
    PhoneNumberType,
    ValidationResult,
)

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

#: Text that can only be meant as a phone number (used to tell numbers from alphanumeric senders).
_LETTERS = re.compile(r"[A-Za-z]")
_A_DIGIT = re.compile(r"\d").search
#: The reason for a cell without a single digit (``n/a``, ``none``, ``-``): words, not a wrong number.
NO_DIGITS = "it is not a phone number: it has no digits"
PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]+$")


class Phone(NamedTuple):
    """The verdict on one typed number: its E.164 form, or why there is none.

    A NamedTuple rather than a frozen dataclass: a million-row check builds one per
    distinct number, and a frozen dataclass is several times slower to construct.
    ``placeholder`` is set on a valid mobile that looks made up (``0400 000 000``, an
    example number): worked out once per distinct number here, so that the check of
    every row only reads it.
    """

    e164: str | None
    mobile: bool = False
    reason: str = ""  # why invalid, or what kind of non-mobile number it is
    placeholder: str = ""  # why a valid mobile looks like a placeholder, or ""

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
        #: A distinct mobile is looked at closely for a placeholder only when its last eight digits are
        #: suspect, or it is of another country: one slice and one set lookup for the rest.
        self._home = f"+{phonenumbers.country_code_for_region(country)}"
        self._suspect_tails = _SUSPECT_TAILS | {e164[-8:] for e164 in _examples(self._home + "0")}
        #: What rules work out from a verdict off the happy path (a message, another reading), by their
        #: own keys: a sheet repeats its bad numbers too, and this dies with the book (a module-level
        #: cache would keep every book of a long-lived process alive).
        self.memo: dict[object, object] = {}

    #: Entries kept per cache before it starts afresh: repeats in a sheet are mostly close together,
    #: and a million-entry dict of unique numbers costs memory and cache misses for no hits.
    CACHE_LIMIT = 200_000

    def normalise(self, raw: str) -> Phone:
        """The verdict on ``raw``; cached, so repeated numbers cost a dict lookup."""
        phone = self._cache.get(raw)
        if phone is None:
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
                self.memo.clear()
            phone = self._cache[raw] = self._lookup(raw)
        return phone

    def _mobile(self, e164: str) -> Phone:
        """A valid mobile's verdict, with whether it looks like a placeholder: worked out once per distinct
        number, so that the checks of the rows only read it."""
        if e164[-8:] in self._suspect_tails or not e164.startswith(self._home):
            why = placeholder_reason(e164)
            if why:
                return Phone(e164, True, "", why)
        return Phone(e164, True)

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
                        if e164[-8:] not in self._suspect_tails and e164.startswith(self._home):
                            return Phone(e164, True)  # the common case, without a call more
                        return self._mobile(e164)
                    return Phone(e164, False, _TYPE_NAMES.get(kind, "not a mobile"))
        return self._parse(raw)

    def _parse(self, raw: str) -> Phone:
        """The verdict from phonenumbers' public API, with a reason a person can act on."""
        text = raw.strip().lstrip("'")  # a leading ' is how Excel users force text
        if not text:
            return Phone(None, reason="it is empty")
        if _A_DIGIT(text) is None:  # n/a, none, -, "call me": no number at all
            return Phone(None, reason=NO_DIGITS)
        letters = _LETTERS.findall(text)
        if letters:  # phonenumbers reads letters as keypad digits; here they are typos
            return Phone(None, reason=f"it contains letters ({''.join(dict.fromkeys(letters))})")
        try:
            number = phonenumbers.parse(text, self.country)
        except NumberParseException as exc:
            return Phone(None, reason=_PARSE_REASONS.get(exc.error_type, str(exc)))
        kind = phonenumbers.number_type(number)  # UNKNOWN exactly when is_valid_number is False
        if kind == PhoneNumberType.UNKNOWN:
            return Phone(None, reason=_why_invalid(number, text))
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        if kind in MOBILE_TYPES:
            return self._mobile(e164)
        return Phone(e164, mobile=False, reason=_TYPE_NAMES.get(kind, "not a mobile"))

    def international(self, raw: str) -> Phone | None:
        """``raw`` read as if it began with ``+``: digits that start with a country code (Excel's
        ``64218250671``) or with ``00`` and one. None when it is not such a cell.

        For a cell the default country cannot read: phonenumbers only strips the default
        country's own code, so ``61412345678`` reads in AU but ``64218250671`` does not.
        """
        text = raw.strip().lstrip("'")
        if text[:1] in ("+", "(") or not text[:1].isdigit():
            return None
        digits = text.translate(_PUNCTUATION)
        if not (digits.isdigit() and digits.isascii()):
            return None
        if digits.startswith("00"):  # the IDD most of the world uses, where the default country's differs
            digits = digits[2:]
        if not 8 <= len(digits) <= 15 or digits[0] == "0":  # a trunk prefix, or no E.164 length: not one
            return None
        return self.normalise("+" + digits)


# --------------------------------------------------------------------------- why a number is wrong


def _why_invalid(number: phonenumbers.PhoneNumber, text: str) -> str:
    """Too short, too long or not in use, measured against a mobile of the number's country.

    The recipient must be a mobile, so its lengths are the yardstick ("too short (9 digits; an
    Australian mobile has 10, as in 0412 345 678)"); the digits are counted as written, and
    the example is written the same way (with +61 when the cell has a +).
    """
    return _invalid_reason(number.country_code, phonenumbers.is_possible_number_with_reason(number),
                           len(phonenumbers.national_significant_number(number)), len(_DIGITS(text)),
                           text.startswith("+"))


_DIGITS = re.compile(r"\d").findall


@lru_cache(maxsize=4096)
def _invalid_reason(code: int, possible: int, size: int, written: int, plus: bool) -> str:
    """The reason for :func:`_why_invalid`, from what it depends on alone: a sheet's invalid numbers
    mostly share a few shapes, and the metadata look-ups cost more than the parse."""
    if possible == ValidationResult.INVALID_COUNTRY_CODE:
        return "its country code is not one that exists"
    region = phonenumbers.region_code_for_country_code(code)
    metadata = PhoneMetadata.metadata_for_region(region, None) if region not in (None, "ZZ", "001") else None
    if metadata is None:
        if possible == ValidationResult.TOO_SHORT:
            return "it is too short"
        if possible == ValidationResult.TOO_LONG:
            return "it is too long"
        return f"it is not a number in use for +{code}"
    lengths = sorted(metadata.mobile.possible_length or metadata.general_desc.possible_length)
    where = f"in {country_name(region)}"
    if not lengths or (lengths[0] <= size <= lengths[-1]
                       and possible not in (ValidationResult.TOO_SHORT, ValidationResult.TOO_LONG)):
        return f"it is not a number in use {where}"
    what = "too short" if possible == ValidationResult.TOO_SHORT or size < lengths[0] else "too long"
    shown = _mobile_example(region, plus)
    if not shown:
        return f"it is {what} {where}"
    return (f"it is {what} ({written} digits; {line_in('mobile', region)} has {len(_DIGITS(shown))}, "
            f"as in {shown})")


@lru_cache(maxsize=512)
def _mobile_example(region: str, international: bool) -> str:
    """phonenumbers' example mobile of ``region`` as a person writes it (``0412 345 678``), or ""."""
    example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    if example is None:
        return ""
    style = PhoneNumberFormat.INTERNATIONAL if international else PhoneNumberFormat.NATIONAL
    return phonenumbers.format_number(example, style)


# --------------------------------------------------------------------------- placeholders


_ASCENDING = "0123456789012345"
#: Every eight-digit ending of a placeholder but an example number's: seven equal digits after any
#: digit, and runs counting up (``12345678``, ``89012345``).
_SUSPECT_TAILS = frozenset({a + b * 7 for a in "0123456789" for b in "0123456789"}
                           | {_ASCENDING[i:i + 8] for i in range(10)})


@cache
def _examples_for(code: str) -> frozenset[str]:
    """phonenumbers' example numbers (every type) of the regions of one country calling code, as E.164."""
    found = set()
    for region in COUNTRY_CODE_TO_REGION_CODE.get(int(code), ()):
        for kind in range(12):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                found.add(phonenumbers.format_number(example, PhoneNumberFormat.E164))
    return frozenset(found)


def _country_code(e164: str) -> str:
    """The calling code of an E.164 text: the first of its 1, 2, 3 digits that is one (they are prefix-free)."""
    for size in (1, 2, 3):
        if int(e164[1:size + 1]) in COUNTRY_CODE_TO_REGION_CODE:
            return e164[1:size + 1]
    return ""


#: The example numbers by the first four characters of an E.164 text (``+614``): they settle the
#: calling code, so a distinct mobile costs one dict lookup here, not a look for its code.
_EXAMPLES_BY_HEAD: dict[str, frozenset[str]] = {}


def _examples(e164: str) -> frozenset[str]:
    """The example numbers of the calling code ``e164`` belongs to."""
    found = _EXAMPLES_BY_HEAD.get(e164[:4])
    if found is None:
        code = _country_code(e164)
        found = _EXAMPLES_BY_HEAD[e164[:4]] = _examples_for(code) if code else frozenset()
    return found


def placeholder_reason(e164: str) -> str:
    """Why ``e164`` looks like a number typed to fill a cell rather than a person's mobile, or "".

    Example numbers (``0412 345 678`` is phonenumbers' and the telcos' documentation number
    for an Australian mobile), seven equal digits at the end (``0400 000 000``), and the
    digits counting up (``…2345678``) are valid as far as the numbering plan goes, so they
    pass every other check and would be texted: to nobody, or to a stranger.
    """
    if e164 in _examples(e164):
        return "it is the example number phone-number libraries and documentation use"
    if len(set(e164[-7:])) == 1:
        return f"it ends in seven {e164[-1]}s"
    if e164[-8:] in _SUSPECT_TAILS:
        return f"its digits count up ({e164[-8:]})"
    return ""


# --------------------------------------------------------------------------- countries by name


#: English names of the regions phonenumbers supports (from its own locale table, some modernised).
_NAMES = """AC Ascension Island|AD Andorra|AE United Arab Emirates|AF Afghanistan|AG Antigua and Barbuda|AI Anguilla
|AL Albania|AM Armenia|AO Angola|AR Argentina|AS American Samoa|AT Austria|AU Australia|AW Aruba|AX Åland Islands
|AZ Azerbaijan|BA Bosnia and Herzegovina|BB Barbados|BD Bangladesh|BE Belgium|BF Burkina Faso|BG Bulgaria|BH Bahrain
|BI Burundi|BJ Benin|BL Saint Barthélemy|BM Bermuda|BN Brunei|BO Bolivia|BQ Bonaire, Sint Eustatius and Saba
|BR Brazil|BS Bahamas|BT Bhutan|BW Botswana|BY Belarus|BZ Belize|CA Canada|CC Cocos Islands
|CD Democratic Republic of the Congo|CF Central African Republic|CG Congo|CH Switzerland|CI Côte d'Ivoire
|CK Cook Islands|CL Chile|CM Cameroon|CN China|CO Colombia|CR Costa Rica|CU Cuba|CV Cape Verde|CW Curaçao
|CX Christmas Island|CY Cyprus|CZ Czechia|DE Germany|DJ Djibouti|DK Denmark|DM Dominica|DO Dominican Republic
|DZ Algeria|EC Ecuador|EE Estonia|EG Egypt|EH Western Sahara|ER Eritrea|ES Spain|ET Ethiopia|FI Finland|FJ Fiji
|FK Falkland Islands|FM Micronesia|FO Faroe Islands|FR France|GA Gabon|GB United Kingdom|GD Grenada|GE Georgia
|GF French Guiana|GG Guernsey|GH Ghana|GI Gibraltar|GL Greenland|GM Gambia|GN Guinea|GP Guadeloupe
|GQ Equatorial Guinea|GR Greece|GT Guatemala|GU Guam|GW Guinea-Bissau|GY Guyana|HK Hong Kong|HN Honduras|HR Croatia
|HT Haiti|HU Hungary|ID Indonesia|IE Ireland|IL Israel|IM Isle of Man|IN India|IO British Indian Ocean Territory
|IQ Iraq|IR Iran|IS Iceland|IT Italy|JE Jersey|JM Jamaica|JO Jordan|JP Japan|KE Kenya|KG Kyrgyzstan|KH Cambodia
|KI Kiribati|KM Comoros|KN Saint Kitts and Nevis|KP North Korea|KR South Korea|KW Kuwait|KY Cayman Islands
|KZ Kazakhstan|LA Laos|LB Lebanon|LC Saint Lucia|LI Liechtenstein|LK Sri Lanka|LR Liberia|LS Lesotho|LT Lithuania
|LU Luxembourg|LV Latvia|LY Libya|MA Morocco|MC Monaco|MD Moldova|ME Montenegro|MF Saint Martin|MG Madagascar
|MH Marshall Islands|MK North Macedonia|ML Mali|MM Myanmar|MN Mongolia|MO Macao|MP Northern Mariana Islands
|MQ Martinique|MR Mauritania|MS Montserrat|MT Malta|MU Mauritius|MV Maldives|MW Malawi|MX Mexico|MY Malaysia
|MZ Mozambique|NA Namibia|NC New Caledonia|NE Niger|NF Norfolk Island|NG Nigeria|NI Nicaragua|NL Netherlands
|NO Norway|NP Nepal|NR Nauru|NU Niue|NZ New Zealand|OM Oman|PA Panama|PE Peru|PF French Polynesia
|PG Papua New Guinea|PH Philippines|PK Pakistan|PL Poland|PM Saint Pierre and Miquelon|PR Puerto Rico|PS Palestine
|PT Portugal|PW Palau|PY Paraguay|QA Qatar|RE Réunion|RO Romania|RS Serbia|RU Russia|RW Rwanda|SA Saudi Arabia
|SB Solomon Islands|SC Seychelles|SD Sudan|SE Sweden|SG Singapore|SH Saint Helena|SI Slovenia
|SJ Svalbard and Jan Mayen|SK Slovakia|SL Sierra Leone|SM San Marino|SN Senegal|SO Somalia|SR Suriname
|SS South Sudan|ST São Tomé and Príncipe|SV El Salvador|SX Sint Maarten|SY Syria|SZ Eswatini|TA Tristan da Cunha
|TC Turks and Caicos Islands|TD Chad|TG Togo|TH Thailand|TJ Tajikistan|TK Tokelau|TL Timor-Leste|TM Turkmenistan
|TN Tunisia|TO Tonga|TR Türkiye|TT Trinidad and Tobago|TV Tuvalu|TW Taiwan|TZ Tanzania|UA Ukraine|UG Uganda
|US United States|UY Uruguay|UZ Uzbekistan|VA Vatican City|VC Saint Vincent and the Grenadines|VE Venezuela
|VG British Virgin Islands|VI US Virgin Islands|VN Vietnam|VU Vanuatu|WF Wallis and Futuna|WS Samoa|XK Kosovo
|YE Yemen|YT Mayotte|ZA South Africa|ZM Zambia|ZW Zimbabwe"""
#: Other names people write in a Country column.
_ALIASES = """GB UK|GB Great Britain|GB Britain|GB England|GB Scotland|GB Wales|GB Northern Ireland
|US USA|US United States of America|US America|NZ Aotearoa|NL Holland|NL The Netherlands|CZ Czech Republic
|MK Macedonia|SZ Swaziland|TR Turkey|KR Korea|KR Republic of Korea|CD DR Congo|CD DRC|CG Republic of the Congo
|CI Ivory Coast|CV Cabo Verde|MO Macau|VN Viet Nam|RU Russian Federation|AE UAE|VA Vatican|VA Holy See
|TL East Timor|PS Palestinian Territories|MM Burma|HK Hong Kong SAR|MO Macao SAR|FM Federated States of Micronesia
|BN Brunei Darussalam|LA Lao PDR|SY Syrian Arab Republic|IR Islamic Republic of Iran|TZ United Republic of Tanzania
|MD Republic of Moldova|BO Plurinational State of Bolivia|VE Bolivarian Republic of Venezuela|KP DPRK
|CC Cocos (Keeling) Islands|FK Falkland Islands (Malvinas)|SX Sint Maarten (Dutch part)|MF Saint Martin (French part)"""
#: Adjectives for "an Australian landline"; other countries read "a landline in Kenya".
_ADJECTIVES = """AU Australian|NZ New Zealand|GB UK|US US|CA Canadian|IE Irish|ZA South African|SG Singaporean
|IN Indian|CN Chinese|HK Hong Kong|JP Japanese|KR South Korean|PH Philippine|MY Malaysian|ID Indonesian|TH Thai
|VN Vietnamese|FJ Fijian|PG Papua New Guinean|WS Samoan|TO Tongan|DE German|FR French|IT Italian|ES Spanish
|NL Dutch|BE Belgian|CH Swiss|AT Austrian|SE Swedish|NO Norwegian|DK Danish|FI Finnish|PL Polish|PT Portuguese
|GR Greek|BR Brazilian|AR Argentinian|MX Mexican|AE UAE|IL Israeli|TW Taiwanese|LK Sri Lankan|PK Pakistani
|BD Bangladeshi|NP Nepalese"""


def _pairs(table: str) -> list[tuple[str, str]]:
    return [(item[:2], item[3:].strip()) for item in table.replace("\n", "").split("|")]


def _key(name: str) -> str:
    """A country name as typed, folded: case, accents, spaces, punctuation and a leading 'the' ignored."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", name.casefold()) if not unicodedata.combining(c))
    folded = re.sub(r"[^\w]+", " ", plain.replace("&", " and ")).strip()
    folded = re.sub(r"\bst\b", "saint", re.sub(r"^the ", "", folded))
    return folded.replace(" ", "")


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(names by region, regions by folded name, adjectives by region), built on first use."""
    names = dict(_pairs(_NAMES))
    by_key = {_key(name): region for region, name in _pairs(_ALIASES)}
    by_key.update({_key(name): region for region, name in names.items()})
    return names, by_key, dict(_pairs(_ADJECTIVES))


def country_name(region: str) -> str:
    """``NZ`` → ``New Zealand`` (the code itself for a region without a name, such as ``001``)."""
    return _tables()[0].get(region, region)


def line_in(kind: str, region: str) -> str:
    """``an Australian landline``, ``a New Zealand mobile``, ``a toll-free number in Kenya``.

    ``kind`` is a line type in :data:`batchsms.numbers.KINDS`' words; types that are
    adjectives (``toll-free``) get "number".
    """
    noun = f"{kind} number" if kind in ("toll-free", "premium-rate", "shared-cost", "VoIP", "voicemail",
                                         "company (UAN)", "landline or mobile") else kind
    adjective = _tables()[2].get(region)
    phrase = f"{adjective} {noun}" if adjective else f"{noun} in {country_name(region)}" if region else noun
    article = "an" if phrase[0] in "AEIOaeio" else "a"
    return f"{article} {phrase}"


def region_for(value: str) -> str | None:
    """The region a person means by ``value``: an ISO code (``nz``), an English name (``New Zealand``,
    ``UK``), or a calling code (``+64``); None when it names none.

    Spreadsheets say where a contact lives in words; the phone metadata knows regions by code.
    """
    text = value.strip()
    if len(text) == 2 and text.isalpha():
        code = text.upper()
        return code if code in phonenumbers.SUPPORTED_REGIONS else (_tables()[1].get(_key(text)))
    if text.startswith("+") and text[1:].isdigit():
        regions = COUNTRY_CODE_TO_REGION_CODE.get(int(text[1:]))
        return regions[0] if regions and regions[0] != "001" else None
    found = _tables()[1].get(_key(text))
    return found


def regions_named(values: str | Iterable[str], option: str) -> tuple[str, ...]:
    """``AU,NZ`` (or a list of names) as region codes, in order, without repeats; ValueError naming the
    values that are no country, so that an option is refused once rather than on every row."""
    items = values.split(",") if isinstance(values, str) else list(values)
    found: dict[str, None] = {}
    unknown = []
    for item in items:
        if not item.strip():
            continue
        region = region_for(item)
        if region is None:
            unknown.append(item.strip())
        else:
            found[region] = None
    if unknown:
        raise ValueError(f"{option}: {', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not "
                         "a country; use two-letter ISO codes such as AU,NZ (or names such as New Zealand)")
    return tuple(found)


def main_region(e164: str) -> str | None:
    """The main region of an E.164 number's calling code (``+64…`` → ``NZ``, ``+1…`` → ``US``)."""
    code = _country_code(e164)
    regions = COUNTRY_CODE_TO_REGION_CODE.get(int(code)) if code else None
    return regions[0] if regions and regions[0] != "001" else None
