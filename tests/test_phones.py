import pytest

from batchsms.phones import PhoneBook


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
