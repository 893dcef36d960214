"""One table per validation rule: valid and invalid cases, with the value the API would get."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from batchsms import rules
from batchsms.phones import PhoneBook

BOOK = PhoneBook("AU")
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc).timestamp()
UTC = ZoneInfo("UTC")
SYD = ZoneInfo("Australia/Sydney")


def epoch(*args):
    return int(dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp())


def codes(problems):
    return [(p.severity, p.code) for p in problems]


@pytest.mark.parametrize(
    ("raw", "value", "expected"),
    [
        ("0412 345 677", "+61412345677", []),
        ("+44 7911 123456", "+447911123456", []),
        ("(02) 9876 5432", "+61298765432", [("error", "not-mobile")]),
        ("", None, [("error", "missing-recipient")]),
        ("12345", None, [("error", "invalid-phone")]),
        ("hello", None, [("error", "invalid-phone")]),
    ],
)
def test_to(raw, value, expected):
    got, problems = rules.check_to(raw, BOOK)
    assert (got, codes(problems)) == (value, expected)


@pytest.mark.parametrize(
    ("raw", "value", "expected"),
    [
        ("", "", []),
        ("CityDental", "CityDental", []),
        ("City Dental", "City Dental", []),
        ("A", None, [("error", "invalid-sender")]),  # the register takes 2-11
        ("ABCDEFGHIJK", "ABCDEFGHIJK", []),
        ("Shop24", "Shop24", []),
        ("+61 412 345 678", "+61412345678", []),
        ("0412345678", "+61412345678", []),
        ("ABCDEFGHIJKL", None, [("error", "invalid-sender")]),  # 12 characters
        ("12345", None, [("error", "invalid-sender")]),  # no letter, not a number
        ("City-Dental", None, [("error", "invalid-sender")]),
        ("Café", None, [("error", "invalid-sender")]),
    ],
)
def test_from(raw, value, expected):
    got, problems = rules.check_from(raw, BOOK)
    assert (got, codes(problems)) == (value, expected)


def test_from_messages_say_why():
    assert "12 characters long and the limit is 11" in rules.check_from("ABCDEFGHIJKL", BOOK)[1][0].message
    assert "'-'" in rules.check_from("City-Dental", BOOK)[1][0].message


@pytest.mark.parametrize(
    ("raw", "value", "expected"),
    [
        ("+61412345678", "+61412345678", []),
        ("Support", "Support", []),
        ("Support Desk 1", None, [("error", "invalid-forward-from-sms")]),
    ],
)
def test_forward_from_sms(raw, value, expected):
    got, problems = rules.check_forward_from_sms(raw, BOOK)
    assert (got, codes(problems)) == (value, expected)


@pytest.mark.parametrize(
    ("raw", "value", "expected"),
    [("0412345678", "+61412345678", []), ("Support", None, [("error", "invalid-forward-to-sms")])],
)
def test_forward_to_sms(raw, value, expected):
    got, problems = rules.check_forward_to_sms(raw, BOOK)
    assert (got, codes(problems)) == (value, expected)


@pytest.mark.parametrize(
    ("raw", "tz", "value", "expected"),
    [
        ("2026-11-27 09:30", UTC, epoch(2026, 11, 27, 9, 30), []),
        ("2026-11-27T09:30:00+11:00", UTC, epoch(2026, 11, 26, 22, 30), []),
        ("2026-11-27T09:30:00Z", UTC, epoch(2026, 11, 27, 9, 30), []),
        ("2026-11-27 09:30", SYD, epoch(2026, 11, 26, 22, 30), []),
        ("2026-11-27", UTC, epoch(2026, 11, 27), []),
        (str(int(NOW) + 3600), UTC, int(NOW) + 3600, []),
        (f"{int(NOW) + 3600}.0", UTC, int(NOW) + 3600, []),
        (str(int(NOW) + 14 * 86400), UTC, int(NOW) + 14 * 86400, []),  # exactly 14 days: fine
        (str(int(NOW) + 14 * 86400 + 1), UTC, int(NOW) + 14 * 86400 + 1, [("warning", "held-locally")]),
        (str(int(NOW) + 366 * 86400 + 1), UTC, None, [("error", "schedule-too-far")]),
        (str(int(NOW) - 3600), UTC, int(NOW) - 3600, [("warning", "schedule-sends-immediately")]),
        (str(int(NOW) - 3601), UTC, None, [("error", "schedule-in-past")]),
        (str(int(NOW) * 1000), UTC, None, [("error", "invalid-schedule")]),  # milliseconds
        ("next tuesday", UTC, None, [("error", "invalid-schedule")]),
        ("27/11/2026 9:30", UTC, epoch(2026, 11, 27, 9, 30), []),  # only day-first reads it
    ],
)
def test_schedule(raw, tz, value, expected):
    got, problems = rules.check_schedule(raw, tz, NOW)
    assert (got, codes(problems)) == (value, expected)


@pytest.mark.parametrize(
    ("raw", "value", "ok"),
    [("true", True, True), ("YES", True, True), ("1", True, True), ("false", False, True),
     ("No", False, True), ("0", False, True), ("", None, True), ("maybe", None, False)],
)
def test_delivery_receipt(raw, value, ok):
    got, problems = rules.check_bool(raw, "DeliveryReceipt")
    assert (got, not problems) == (value, ok)


@pytest.mark.parametrize(
    ("raw", "value", "ok"),
    [("POST", "POST", True), ("get", "GET", True), ("PUT", None, False), (" post ", "POST", True)],
)
def test_method(raw, value, ok):
    got, problems = rules.check_method(raw, "WebhookMethod")
    assert (got, not problems) == (value, ok)


@pytest.mark.parametrize(
    ("raw", "ok"),
    [("https://hooks.example.com/dr", True), ("http://10.0.0.1:8080/x?y=1", True),
     ("ftp://example.com", False), ("example.com/hook", False), ("https://", False),
     ("https://exa mple.com", False), ("https://[::1", False)],
)
def test_url(raw, ok):
    got, problems = rules.check_url(raw, "WebhookUri")
    assert (got is not None, not problems) == (ok, ok)


@pytest.mark.parametrize(
    ("raw", "ok"),
    [("ops@example.com", True), ("first.last+tag@mail.example.com.au", True), ("no-at.example.com", False),
     ("a@b", False), ("a b@example.com", False), ("Ann <ann@example.com>", False), ("", False)],
)
def test_email(raw, ok):
    got, problems = rules.check_email(raw, "ForwardToEmail")
    assert (got is not None, not problems) == (ok, ok)


@pytest.mark.parametrize(
    ("text", "max_segments", "expected"),
    [
        ("Hello", 10, []),
        ("   ", 10, [("error", "empty-text")]),
        ("a" * 307, 2, [("error", "too-many-segments")]),
        ("a" * 306, 2, []),
        ("It’s " + "a" * 100, 10, [("warning", "avoidable-ucs2")]),  # 2 UCS-2 parts, 1 in GSM-7
        ("It’s short", 10, []),  # 1 part either way: nothing to save
        ("😀 " + "a" * 100, 10, []),  # the emoji cannot be replaced
    ],
)
def test_text(text, max_segments, expected):
    _, problems = rules.check_text(text, max_segments)
    assert codes(problems) == expected


def test_avoidable_ucs2_names_the_characters_and_the_saving():
    _, problems = rules.check_text("It’s on – " + "a" * 100, 10)
    assert "’ (RIGHT SINGLE QUOTATION MARK), – (EN DASH)" in problems[0].message
    assert "saves 1 segment (2 → 1)" in problems[0].message
