import random

import phonenumbers
import pytest

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
        ("12345", "not a number in use in AU"),
        ("0412 345 67X", "it contains letters"),
        ("call me", "it contains letters"),
        ("+999 1234 5678", "country code"),
        ("04123456789012", "too many digits"),
        ("+61 4123", "too few digits"),
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


def generated_numbers(seed=11, count=4000):
    rng = random.Random(seed)
    for region in REGIONS:
        for kind in range(12):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            for fmt in FORMATS:
                yield phonenumbers.format_number(example, fmt).replace("tel:", "")  # letters: our own rule
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            yield e164[1:]  # the plus dropped, as Excel does
            yield "0" + str(example.national_number)
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


@pytest.mark.parametrize("country", ["AU", "US", "GB", "NZ", "DE", "IN", "BR", "AR"])
def test_fast_path_gives_phonenumbers_verdict(country):
    fast, slow = PhoneBook(country), PhoneBook(country, fast=False)
    answered = 0
    for raw in generated_numbers(seed=hash(country) % 1000):
        expected = reference(raw, country)
        got = fast.normalise(raw)
        assert (got.e164, got.mobile) == expected, raw
        assert (slow.normalise(raw).e164, slow.normalise(raw).mobile) == expected, raw
        answered += fast._fast.verdict(raw.lstrip().startswith("+"), "".join(c for c in raw if c.isdigit())) \
            is not None
    assert answered > 500  # the fast path did answer for a good share of them


def test_fast_path_answers_the_common_australian_forms():
    fast = PhoneBook("AU")._fast
    for plus, digits in [(False, "0412345678"), (True, "61412345678"), (False, "61412345678"), (False, "412345678")]:
        assert fast.verdict(plus, digits) == ("+61412345678", phonenumbers.PhoneNumberType.MOBILE)
    assert fast.verdict(False, "0011 61412345678".replace(" ", "")) is None  # IDD: left to phonenumbers


def test_combined_type_regex_matches_phonenumbers_desc_by_desc():
    """One combined regex per NSN length must give _number_type_helper's answer for every region."""
    from phonenumbers import PhoneMetadata
    from phonenumbers import phonenumberutil as pnu

    from batchsms.phones import _Region

    rng = random.Random(3)
    for code in sorted(phonenumbers.SUPPORTED_REGIONS):
        metadata = PhoneMetadata.metadata_for_region(code)
        region = _Region(metadata)
        samples = [str(phonenumbers.example_number_for_type(code, t).national_number)
                   for t in range(12) if phonenumbers.example_number_for_type(code, t) is not None]
        samples += ["".join(rng.choice("0123456789") for _ in range(rng.randint(4, 12))) for _ in range(40)]
        for nsn in samples:
            expected = pnu._number_type_helper(nsn, metadata)
            assert region.number_type(nsn) == expected == region.number_type_reference(nsn), (code, nsn)
