"""batchsms.numbers.describe against phonenumbers' own answers (describe_slowly is that oracle).

describe replays format_number, region_code_for_number and number_type from phonenumbers'
metadata; these tests hold it to the public API over every region's example numbers, numbers
generated around them and at every length for every country calling code (fixed seeds, so a
failure replays), and check that it falls back to the public API whenever the fast path does
not apply or phonenumbers lacks an internal it mirrors.
"""

import random
import re

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from phonenumbers import phonenumberutil as pnu

import batchsms.numbers as numbers
from batchsms import _phonemeta
from batchsms.numbers import KINDS, Dialled, Dialler, describe, describe_slowly


@pytest.mark.parametrize(
    ("e164", "label"),
    [
        ("+61412345678", "AU mobile · +61 412 345 678"),
        ("+61298765432", "AU landline · +61 2 9876 5432"),
        ("+611800123456", "AU toll-free · +61 1800 123 456"),
        ("+61891621234", "CC landline · +61 8 9162 1234"),  # +61 is shared with the Cocos Islands
        ("+64211234567", "NZ mobile · +64 21 123 4567"),
        ("+14155552671", "US landline or mobile · +1 415-555-2671"),
        ("+16135550123", "CA landline or mobile · +1 613-555-0123"),  # +1: the region by the full number
        ("+441534123456", "JE landline · +44 1534 123456"),
        ("+77012345678", "KZ mobile · +7 701 234 5678"),
        ("+5491112345678", "AR mobile · +54 9 11 1234-5678"),
        ("+80012345678", "001 toll-free · +800 1234 5678"),  # non-geographic: phonenumbers' 001
        ("+614123", "invalid · +61 4123"),  # readable but not in use; no region for a shared code
    ],
)
def test_labels(e164, label):
    assert describe(e164).label == label
    assert describe_slowly(e164).label == label


def test_the_fields():
    assert describe("+61412345678") == Dialled("+61 412 345 678", "AU", "mobile")


@pytest.mark.parametrize("text", ["", "+", "0412345678", "61412345678", "+0412345678", "call me", "+999 1234"])
def test_text_that_is_no_international_number_is_refused(text):
    with pytest.raises(ValueError, match="is not a number in international form"):
        describe(text)


def test_every_number_type_has_words():
    assert set(KINDS) == {getattr(PhoneNumberType, name) for name in dir(PhoneNumberType) if name.isupper()}


# --------------------------------------------------------------------------- exactly phonenumbers' answers

def e164(number):
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def example_numbers():
    """Every example number phonenumbers has: each type of each region, and the non-geographic codes."""
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(12):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                yield e164(example)
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        example = phonenumbers.example_number_for_non_geo_entity(code)
        if example is not None:
            yield e164(example)


def generated_numbers(seed, count=4000):
    """Numbers like the examples: one kept to a random prefix, the rest random, at its length or one off."""
    rng = random.Random(seed)
    examples = sorted(set(example_numbers()))
    for _ in range(count):
        example = rng.choice(examples)
        keep = rng.randint(2, len(example) - 1)
        length = len(example) + rng.choice((0, 0, 0, 0, -1, 1))
        yield example[:keep] + "".join(rng.choice("0123456789") for _ in range(max(length - keep, 0)))


def every_length(seed, per_length=3):
    """For every country calling code, random national numbers of 2 to 17 digits."""
    rng = random.Random(seed)
    for code in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        for size in range(2, 18):
            for _ in range(per_length):
                yield f"+{code}" + "".join(rng.choice("0123456789") for _ in range(size))


def shared_codes(seed, count=3000):
    """Numbers in the country codes several regions share (+1, +7, +44, +61 …), where the region depends on the digits.

    Half are North American (any area code and exchange), half keep the first digits of another
    shared code's example number and randomise the rest.
    """
    rng = random.Random(seed)
    shared = {code for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items() if len(regions) > 1}
    bases = sorted((text, len(str(phonenumbers.parse(text).country_code))) for text in set(example_numbers())
                   if phonenumbers.parse(text).country_code in shared)
    for _ in range(count):
        if rng.random() < 0.5:
            yield f"+1{rng.randint(200, 999)}{rng.randint(200, 999)}{rng.randrange(10_000):04d}"
        else:
            base, size = rng.choice(bases)
            keep = 1 + size + rng.randint(0, 3)  # the +, the country code, up to 3 more digits
            yield base[:keep] + "".join(rng.choice("0123456789") for _ in range(len(base) - keep))


class Counting:
    """describe_slowly, counting its calls: how many numbers the fast path left to phonenumbers."""

    def __init__(self):
        self.calls = 0

    def __call__(self, text):
        self.calls += 1
        return describe_slowly(text)


def assert_exact(texts, monkeypatch):
    """Every text described as phonenumbers describes it (or refused alike); returns (fast answers, valid ones)."""
    slow = Counting()
    monkeypatch.setattr(numbers, "describe_slowly", slow)
    dialler = Dialler()
    assert dialler.fast
    valid = 0
    texts = list(dict.fromkeys(texts))
    for text in texts:
        try:
            expected = describe_slowly(text)
        except ValueError:
            with pytest.raises(ValueError):
                dialler.describe(text)
            continue
        assert dialler.describe(text) == expected, text
        valid += expected.kind != "invalid"
    return len(texts) - slow.calls, valid


def test_every_example_number(monkeypatch):
    fast, valid = assert_exact(example_numbers(), monkeypatch)
    assert valid > 1000
    assert fast > 0.9 * valid  # the fast path did answer for nearly all of them


@pytest.mark.parametrize("seed", [1, 2])
def test_numbers_around_the_examples(monkeypatch, seed):
    fast, valid = assert_exact(generated_numbers(seed), monkeypatch)
    assert valid > 1000 and fast > 0.8 * valid


def test_every_length_of_every_country_code(monkeypatch):
    fast, valid = assert_exact(every_length(3), monkeypatch)
    assert valid > 250 and fast > 0.8 * valid


def test_shared_country_codes(monkeypatch):
    fast, valid = assert_exact(shared_codes(4), monkeypatch)
    assert valid > 1000 and fast > 0.9 * valid
    regions = {Dialler().describe(text).region for text in shared_codes(4)}
    assert {"US", "CA", "JM", "GB", "JE", "RU", "KZ", "AU"} <= regions


def test_australian_and_new_zealand_mobiles_take_the_fast_path(monkeypatch):
    rng = random.Random(5)
    texts = [f"+614{rng.randrange(10**8):08d}" for _ in range(2000)]
    texts += [f"+642{rng.choice('1279')}{rng.randrange(10**7):07d}" for _ in range(2000)]
    fast, valid = assert_exact(texts, monkeypatch)
    assert fast == valid > 3000


# --------------------------------------------------------------------------- format templates

@pytest.mark.parametrize(
    ("pattern", "rule"),
    [
        (r"(\d{3})(\d{3,4})", r"\1 \2"),
        (r"(\d{1,2})(\d{3})(\d{2,4})", r"\1-\2-\3"),
        (r"(\d)(\d{2})(\d{4})(\d{4})", r"\2 15-\3-\4"),  # Argentina's national form: groups out of order
        (r"(\d{2})(\d{3})", r"(\1) %s \2"),  # a literal % survives
        (r"(\d{2})(\d{3})", r"\1"),  # a group left out
        (r"(\d{2})(\d{3})", "no groups"),
        (r"(\d{2})(\d{3})", r"\g<1> \2"),  # not a plain rule: re.sub
        (r"(\d{2})(\d{3})", r"\1\2 \12"),  # \12 is group 12 to re.sub: it raises, and so must the template
    ],
)
def test_a_template_is_re_sub(pattern, rule):
    for size in range(1, 12):
        nsn = "".join(str((7 * i + size) % 10) for i in range(size))
        fill = numbers._template(pattern, rule, size)
        if re.fullmatch(pattern, nsn) is None:
            assert fill is None
            continue
        try:
            expected = re.sub(pattern, rule, nsn)
        except re.error:
            with pytest.raises(re.error):
                fill(nsn)
            continue
        assert fill(nsn) == expected, (size, nsn)


def test_a_format_pattern_with_more_than_digits_is_matched_per_number():
    """No pattern in today's metadata reads more than the length, but one that did is still exact."""
    country = numbers._Country(61)
    fake = phonenumbers.NumberFormat(pattern=r"([2-4]\d)(\d{3,4})", format=r"\1/\2", leading_digits_pattern=["[2-5]"])
    country.formats = [("[2-5]", fake.pattern, fake.format), *country.formats]
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("AU")
    for nsn in ("212345", "2123456", "5123456", "412345678", "298765432", "1800123456"):
        chosen = pnu._choose_formatting_pattern_for_number([fake, *metadata.intl_number_format], nsn)
        expected = nsn if chosen is None else pnu._format_nsn_using_pattern(
            nsn, chosen, PhoneNumberFormat.INTERNATIONAL)
        assert country.format(nsn) == "+61 " + expected, nsn


# --------------------------------------------------------------------------- fallback and cache

def test_without_the_fast_path_the_same_answers(monkeypatch):
    texts = list(example_numbers())[:300]
    expected = [describe(text) for text in texts]
    monkeypatch.setattr(numbers.Dialler, "_describe", lambda self, text: describe_slowly(text))
    assert [Dialler().describe(text) for text in texts] == expected


@pytest.mark.parametrize("name", _phonemeta._PRIVATE_FUNCTIONS)
def test_a_missing_private_name_leaves_every_number_to_phonenumbers(monkeypatch, name):
    with pytest.MonkeyPatch.context() as patch:
        patch.delattr(pnu, name)
        dialler = Dialler()
    assert not dialler.fast
    slow = Counting()
    monkeypatch.setattr(numbers, "describe_slowly", slow)
    assert dialler.describe("+61412345678").label == "AU mobile · +61 412 345 678"
    assert slow.calls == 1
    assert not Dialler(fast=False).fast and Dialler().fast


def test_answers_are_cached_and_the_cache_is_bounded(monkeypatch):
    dialler = Dialler()
    monkeypatch.setattr(dialler, "CACHE_LIMIT", 100)
    first = dialler.describe("+61412345678")
    assert dialler.describe("+61412345678") is first
    for i in range(250):
        dialler.describe(f"+61412{i:06d}")
    assert len(dialler._cache) <= 100
