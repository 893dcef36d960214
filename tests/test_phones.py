"""PhoneBook's verdicts, and the fast path (batchsms._phonemeta) against phonenumbers itself.

The fast path mirrors phonenumbers' private internals. These tests hold it to phonenumbers'
public answers over every region's example numbers and thousands of generated ones, hold its
combined type regex to an oracle written out from the metadata, and take each private name
away in turn to check that PhoneBook then falls back to the public API with the same verdicts.
Every random choice comes from a fixed seed, so a failure replays.
"""

import random
import re

import phonenumbers
import pytest
from phonenumbers import PhoneMetadata, PhoneNumberDesc, PhoneNumberType
from phonenumbers import phonenumberutil as pnu

from batchsms import _phonemeta
from batchsms._phonemeta import FastPath
from batchsms.phones import MOBILE_TYPES, PhoneBook


@pytest.mark.parametrize(
    ("raw", "e164", "mobile"),
    [
        ("0412 345 678", "+61412345678", True),
        ("+61 412 345 678", "+61412345678", True),
        ("61412345678", "+61412345678", True),  # Excel dropped the +
        ("412345678", "+61412345678", True),  # Excel dropped the leading 0
        ("'0412345678", "+61412345678", True),  # an Excel user forced text
        ("(04) 1234-5678", "+61412345678", True),
        ("(02) 9876 5432", "+61298765432", False),  # a landline
        ("+1 415 555 2671", "+14155552671", True),  # US fixed-or-mobile
        ("+44 7911 123456", "+447911123456", True),
    ],
)
def test_valid_numbers(raw, e164, mobile):
    phone = PhoneBook("AU").normalise(raw)
    assert (phone.e164, phone.mobile) == (e164, mobile)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("12345", "it is too short"),
        ("0412 345 67X", "it contains letters"),
        ("call me", "it is not a phone number"),
        ("+999 1234 5678", "country code"),
        ("04123456789012", "it is too long"),
        ("+61 4123", "it is too short"),
    ],
)
def test_invalid_numbers(raw, reason):
    phone = PhoneBook("AU").normalise(raw)
    assert phone.e164 is None
    assert reason in phone.reason


def test_default_country_changes_the_reading():
    nz, au = PhoneBook("NZ").normalise("021 123 4567"), PhoneBook("AU").normalise("021 123 4567")
    assert (nz.e164, nz.mobile) == ("+64211234567", True)
    assert (au.e164, au.mobile) == ("+61211234567", False)  # a Sydney landline


def test_unknown_country_is_refused():
    with pytest.raises(ValueError, match="unknown country 'XX'"):
        PhoneBook("XX")


def test_verdicts_are_cached():
    book = PhoneBook("AU")
    assert book.normalise("0412345678") is book.normalise("0412345678")


# --------------------------------------------------------------------------- the fast path is exact

REGIONS = ["AU", "NZ", "US", "CA", "GB", "DE", "FR", "IT", "IN", "SG", "BR", "AR", "MX", "JP", "ZA", "CN", "IE",
           "NL", "HK", "PH"]
FORMATS = [
    phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.RFC3966,
]


def reference(raw, country):
    """What a naive caller of phonenumbers gets: parse, is_valid_number, format, number_type."""
    try:
        number = phonenumbers.parse(raw.strip(), country)
    except phonenumbers.NumberParseException:
        return None, False
    if not phonenumbers.is_valid_number(number):
        return None, False
    kind = phonenumbers.number_type(number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), kind in MOBILE_TYPES


def example_numbers(regions=REGIONS):
    """Every type's example number for ``regions``, written the ways people and Excel write them."""
    for region in regions:
        for kind in range(12):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            for fmt in FORMATS:
                yield phonenumbers.format_number(example, fmt).replace("tel:", "")  # letters: our own rule
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            yield e164[1:]  # the plus dropped, as Excel does
            yield "0" + str(example.national_number)


def generated_numbers(seed, count=4000):
    """The example numbers, then ``count`` random digit strings in the shapes typed into sheets."""
    rng = random.Random(seed)
    yield from example_numbers()
    for _ in range(count):
        length = rng.randint(3, 16)
        digits = "".join(rng.choice("0123456789") for _ in range(length))
        style = rng.randrange(6)
        if style == 0:
            digits = "+" + digits
        elif style == 1:
            digits = "0" + digits
        elif style == 2:
            digits = "61" + digits
        elif style == 3:
            digits = "04" + digits[:8]
        elif style == 4:
            digits = "+614" + digits[:8]
        yield " ".join(digits[i:i + rng.randint(2, 4)] for i in range(0, len(digits), 3)) if rng.random() < 0.5 \
            else digits


def plain(raw):
    """(plus, digits) as PhoneBook hands a plainly written number to the fast path."""
    return raw.lstrip().startswith("+"), "".join(c for c in raw if c.isdigit())


def test_the_fast_path_is_in_use_with_the_installed_phonenumbers():
    """Else every test of the fast path below would only test the public API against itself."""
    assert _phonemeta.problems() == []
    assert all(isinstance(_phonemeta.fast_path(country), FastPath) for country in REGIONS)


@pytest.mark.parametrize(("country", "seed"), [("AU", 11), ("US", 12), ("GB", 13), ("NZ", 14), ("DE", 15),
                                               ("IN", 16), ("BR", 17), ("AR", 18)])
def test_fast_path_gives_phonenumbers_verdict(country, seed):
    fast, slow, path = PhoneBook(country), PhoneBook(country, fast=False), FastPath(country)
    answered = 0
    for raw in generated_numbers(seed):
        expected = reference(raw, country)
        got = fast.normalise(raw)
        assert (got.e164, got.mobile) == expected, raw
        assert (slow.normalise(raw).e164, slow.normalise(raw).mobile) == expected, raw
        assert fast.normalise(raw) == slow.normalise(raw), raw  # the reason too, for non-mobiles
        answered += path.verdict(*plain(raw)) is not None
    assert answered > 500  # the fast path did answer for a good share of them


def test_fast_path_answers_the_common_australian_forms():
    fast = FastPath("AU")
    for plus, digits in [(False, "0412345678"), (True, "61412345678"), (False, "61412345678"), (False, "412345678")]:
        assert fast.verdict(plus, digits) == ("+61412345678", PhoneNumberType.MOBILE)
    assert fast.verdict(False, "0011 61412345678".replace(" ", "")) is None  # IDD: left to phonenumbers


def number_type_reference(metadata, nsn):
    """phonenumberutil._number_type_helper written out from the metadata, desc by desc.

    The oracle for the fast path's one-regex-per-length answer: it reads the same metadata
    but none of _phonemeta's compiled forms, and needs no private function.
    """
    size = len(nsn)

    def matches(desc):
        pattern = getattr(desc, "national_number_pattern", None)
        if not pattern or (desc.possible_length and size not in desc.possible_length):
            return False
        return re.fullmatch(pattern, nsn) is not None

    if not matches(metadata.general_desc):
        return PhoneNumberType.UNKNOWN
    for name in ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail"):
        if matches(getattr(metadata, name)):
            return getattr(PhoneNumberType, name.upper())
    if matches(metadata.fixed_line):
        if metadata.same_mobile_and_fixed_line_pattern or matches(metadata.mobile):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    if not metadata.same_mobile_and_fixed_line_pattern and matches(metadata.mobile):
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


def test_combined_type_regex_matches_phonenumbers_desc_by_desc():
    """One combined regex per NSN length must give _number_type_helper's answer for every region."""
    rng = random.Random(3)
    checked = 0
    for code in sorted(phonenumbers.SUPPORTED_REGIONS):
        metadata = PhoneMetadata.metadata_for_region(code)
        region = FastPath(code).home
        if not region.combinable:  # FastPath leaves such a region to phonenumbers.parse
            continue
        samples = [str(phonenumbers.example_number_for_type(code, t).national_number)
                   for t in range(12) if phonenumbers.example_number_for_type(code, t) is not None]
        samples += ["".join(rng.choice("0123456789") for _ in range(rng.randint(4, 12))) for _ in range(40)]
        for nsn in samples:
            expected = number_type_reference(metadata, nsn)
            assert region.number_type(nsn) == expected == pnu._number_type_helper(nsn, metadata), (code, nsn)
            checked += 1
    assert checked > 10_000


def test_a_pattern_with_a_backreference_is_never_combined():
    """Renumbered into one alternation, a backreference would point at another group."""
    def desc(pattern):
        return PhoneNumberDesc(national_number_pattern=pattern, possible_length=(6,))

    metadata = PhoneMetadata(id="ZZ", country_code=999, general_desc=desc(r"\d{6}"), fixed_line=desc(r"(\d)\1\d{4}"),
                             mobile=desc(r"9\d{5}"), register=False)
    assert not _phonemeta._Region(metadata).combinable
    assert FastPath("AU").home.combinable


# --------------------------------------------------------------------------- the public-API fallback

#: Numbers that take every branch: the fast path's plain forms, national prefixes, IDD, other
#: countries, other number types, and each kind of invalid number.
VARIED = [
    "0412 345 678", "+61 412 345 678", "61412345678", "412345678", "'0412345678", "(04) 1234-5678",
    "0412.345.678", "(02) 9876 5432", "02 9876 5432", "1800 123 456", "1300 123 456", "13 12 34", "1900 123 456",
    "0011 61 412 345 678", "0011 44 7911 123456", "+61 0412 345 678", "+0412345678", "0061412345678",
    "+1 415 555 2671", "+44 7911 123456", "+64 21 123 4567", "+55 11 91234 5678", "+54 9 11 1234 5678",
    "+91 98765 43210", "+86 138 0013 8000", "+7 912 345 67 89", "+39 312 345 6789", "+1 800 555 0199",
    "021 123 4567", "07911 123456", "011 15 1234 5678", "9 11 1234 5678", "4123456789",
    "", "   ", "12345", "12 34", "0412 345 67X", "call me", "+999 1234 5678", "04123456789012", "+61 4123",
    "+61 412 345 678 999", "++61412345678", "0412 345 678 ext. 12", "٠٤١٢٣٤٥٦٧٨",
]
COUNTRIES = ["AU", "NZ", "US", "GB", "BR", "AR"]


def books():
    return {country: PhoneBook(country) for country in COUNTRIES}


def verdicts(books):
    """Each PhoneBook's whole verdicts (E.164, mobile, reason) on VARIED and the example numbers."""
    numbers = VARIED + list(example_numbers(["AU", "US", "GB", "AR"]))
    return {country: [book.normalise(raw) for raw in numbers] for country, book in books.items()}


@pytest.fixture(scope="module")
def fast_verdicts():
    assert _phonemeta.problems() == []
    return verdicts(books())


@pytest.fixture
def fallback_verdicts(monkeypatch, fast_verdicts):
    """Build PhoneBooks while a test has taken a private name away, then compare their verdicts.

    phonenumbers' own public functions call its private ones, so the name is put back before
    the books are asked anything: the books must still use the public API alone (FastPath.verdict
    fails the test if called) and give exactly the fast path's verdicts.
    """
    def check(patch):
        made = books()
        patch.undo()
        monkeypatch.setattr(FastPath, "verdict", fast_path_must_not_run)
        assert verdicts(made) == fast_verdicts

    return check


def fast_path_must_not_run(*args):
    raise AssertionError("the fast path ran although a private name it needs is missing")


@pytest.mark.parametrize("name", _phonemeta._PRIVATE_FUNCTIONS)
def test_a_missing_private_name_falls_back_to_the_public_api(fallback_verdicts, name):
    with pytest.MonkeyPatch.context() as patch:
        patch.delattr(pnu, name)
        assert _phonemeta.problems() == [f"phonenumberutil.{name} is missing"]
        assert _phonemeta.fast_path("AU") is None
        fallback_verdicts(patch)


def test_a_private_function_of_another_shape_falls_back_to_the_public_api(fallback_verdicts):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pnu, "_test_number_length", lambda national_number: 0)
        assert _phonemeta.problems() == [
            "phonenumberutil._test_number_length no longer takes (national_number, metadata)"]
        fallback_verdicts(patch)


def test_a_new_type_order_falls_back_to_the_public_api(fallback_verdicts):
    """A release that tries toll-free before premium-rate: the mirrored order would be wrong."""
    real = pnu._number_type_helper

    def reordered(national_number, metadata):
        metadata.general_desc, metadata.toll_free, metadata.premium_rate  # noqa: B018 - the order read
        return real(national_number, metadata)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pnu, "_number_type_helper", reordered)
        found = _phonemeta.problems()
        assert len(found) == 1 and "no longer tries the number types in the order" in found[0], found
        fallback_verdicts(patch)


def test_the_fast_path_returns_once_the_names_are_back():
    with pytest.MonkeyPatch.context() as patch:
        patch.delattr(pnu, "_test_number_length")
        assert _phonemeta.fast_path("AU") is None
    assert isinstance(_phonemeta.fast_path("AU"), FastPath)
