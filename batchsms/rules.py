"""One small function per field rule of send-sms.txt.

Each rule takes the raw cell text and returns the value the API wants (or None)
and a list of Problems: (severity, code, message). Codes are stable kebab-case
so that reports can be filtered and compared across runs; messages say what is
wrong and how to fix it. Rules never raise for bad data.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from . import codes as C
from . import segments as seg
from .clock import format_local
from .codes import Problem
from .fields import visible as fields_visible
from .numbers import describe
from .phones import NO_DIGITS, PHONE_LIKE, Phone, PhoneBook, country_name, line_in
from .schedule import read_time, zone_name

ERROR, WARNING = C.ERROR, C.WARNING
NO_PROBLEMS: tuple = ()  # the problems of a value with none (shared: the happy path allocates nothing)
MAX_SCHEDULE_AHEAD = 14 * 24 * 3600  # the API's window for Schedule
MAX_SCHEDULE_BEHIND = 3600
MAX_HOLD_AHEAD = 366 * 24 * 3600  # beyond the window batchsms holds a message itself, up to a year
HANDOVER_MARGIN = 3600  # a held message goes to the API an hour inside the window (clocks and cron lag)

ALNUM_SENDER = re.compile(r"^[A-Za-z0-9 ]{1,11}$")
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
TRUE_WORDS = frozenset({"true", "yes", "1", "y", "t", "on"})
FALSE_WORDS = frozenset({"false", "no", "0", "n", "f", "off"})
METHODS = frozenset({"POST", "GET"})


# --------------------------------------------------------------------------- numbers


#: A character that is never part of how one number is written: only then can a cell hold two.
#: (Letters too, for "0412345678 or 0412345679"; an extension, "ext 12", is caught by the second look.)
_may_hold_two = re.compile(r"[;,/&|\n\r\tA-Za-z]").search
_BETWEEN_NUMBERS = re.compile(r"\s*(?:[;,/&|\n\r\t]+|\b(?:or|and)\b)\s*", re.IGNORECASE)


def _two_numbers(raw: str, book: PhoneBook) -> Problem | None:
    """An error when ``raw`` holds two or more different valid numbers ("0412345678; 0412345679").

    The API would take only one, and phonenumbers silently reads the first. A part
    that is not a valid number on its own (an extension after a comma, ``ext=12``,
    the ``030`` of ``030/1234567``) keeps the cell a single number.
    """
    found: dict[str, str] = {}  # E.164 -> as written
    for part in _BETWEEN_NUMBERS.split(raw):
        if sum(c.isdigit() for c in part) < 5:
            continue
        phone = book.normalise(part)
        if phone.e164 is not None and phone.e164 not in found:
            found[phone.e164] = part.strip()
    if len(found) < 2:
        return None
    written = list(found.values())
    count = "two" if len(written) == 2 else str(len(written))
    listed = ", ".join(written[:-1]) + " and " + written[-1]
    return C.TWO_NUMBERS.problem(f"this cell holds {count} numbers ({listed}); put one number per row")


def check_to(raw: str, book: PhoneBook, allow_landlines: bool = False) -> tuple[str | None, Sequence[Problem]]:
    """To: required, normalised to E.164; a valid mobile passes, anything else says exactly why not.

    The common case (one plainly valid mobile) is a cached dict lookup and three attribute reads;
    everything else is worked out by :func:`_check_to_slowly` once per distinct cell and book.
    """
    if _may_hold_two(raw) is None:  # most cells are digits, spaces, + ( ) - .
        phone = book.normalise(raw)
        if phone.mobile and not phone.placeholder:
            return phone.e164, NO_PROBLEMS
    key = (raw, allow_landlines)
    found = book.memo.get(key)
    if found is None:
        found = book.memo[key] = _check_to_slowly(raw, book, allow_landlines)
    return found  # type: ignore[return-value]


def _check_to_slowly(raw: str, book: PhoneBook, allow_landlines: bool) -> tuple[str | None, tuple[Problem, ...]]:
    """Every verdict on a To cell but a plain valid mobile, with a message that says exactly what is wrong."""
    if not raw or raw.isspace():
        return None, (C.MISSING_RECIPIENT.problem("no recipient number; fill in the cell or remove the row"),)
    if _may_hold_two(raw) is not None:
        problem = _two_numbers(raw, book)
        if problem is not None:
            return None, (problem,)
    phone = book.normalise(raw)
    text = raw.strip()
    if phone.e164 is None:
        reason = phone.reason
        if reason == NO_DIGITS:  # n/a, none, -: what people write when there is no number
            return None, (C.INVALID_PHONE.problem(
                f"not a phone number: the cell says {text!r}; fill in the person's mobile number, or remove the row"),)
        # Excel's 64218250671: a country code without its +. Only digits of a wrong length or in no use
        # can be that (letters, an empty cell or a bad country code cannot).
        other = book.international(raw) if reason.startswith(("it is too", "it is not a number in use")) else None
        if other is not None and other.mobile:
            dialled = describe(other.e164)
            code = dialled.international.split(" ", 1)[0]
            problems = [C.READ_AS_INTERNATIONAL.problem(
                f"read as {dialled.international} ({line_in('mobile', dialled.region)}): the digits start with "
                f"its country code; write {code} to be sure")]
            if other.placeholder:
                problems.append(_placeholder(other))
            return other.e164, tuple(problems)
        return None, (C.INVALID_PHONE.problem(invalid_message(text, phone.reason, book.country)),)
    if not phone.mobile:
        return phone.e164, (not_mobile_problem(phone.e164, allow_landlines),)
    return phone.e164, (_placeholder(phone),)


def invalid_message(text: str, reason: str, country: str, readings: str = "") -> str:
    """The invalid-phone message; ``readings`` (see :func:`other_readings`) replaces the general fix.

    A number written without a country code is read in the row's country: when its length or
    digits are wrong there, that reading is named, since another country's is the usual cause.
    """
    message = f"not a valid phone number: {reason}"
    if text.startswith("+") or not reason.startswith(("it is too", "it is not a number in use")):
        return message + (f"; {readings}" if readings else "")
    fix = readings or "write +<country code>, or set the row's Country column or --country"
    return f"{message}; without a country code it was read as {country} ({country_name(country)}): {fix}"


def not_mobile_problem(e164: str, allow_landlines: bool, readings: str = "") -> Problem:
    """A valid number that is no mobile: an error, since SMS to a landline is at best read out as a
    voice call (or silently lost), unless --allow-landlines makes it a warning.

    ``readings`` names what the number would be in the sheet's other countries (see
    :func:`other_readings`), which is then the fix to suggest.
    """
    dialled = describe(e164)
    what = f"this is {line_in(dialled.kind, dialled.region)} ({dialled.international})"
    if allow_landlines:
        fix = readings or "it may not receive SMS; sent anyway (--allow-landlines)"
        return Problem(WARNING, C.NOT_MOBILE.code, f"{what}; {fix}")
    fix = readings or ("SMS to it is at best read out as a voice call; use the person's mobile number, "
                       "or --allow-landlines to send anyway")
    return C.NOT_MOBILE.problem(f"{what}; {fix}")


def other_readings(raw: str, own: str, books: Sequence[PhoneBook], fix: str) -> str:
    """``if this is a New Zealand mobile (+64 27 338 7500), write +64 or fill the Country column``, or "".

    What a cell written without a country code would be in each of ``books``' countries other
    than ``own`` (the country it was read in), when that reading is a valid mobile: the
    usual cause of a landline or an invalid number in a sheet of several countries is a
    national number of one of the others. ``fix`` is the other way out than writing the
    country code ("fill the Country column", "correct the Country cell", "add a Country column").
    """
    text = raw.strip()
    if text.startswith("+") or not any(c.isdigit() for c in text):
        return ""
    found = []
    for book in books:
        if book.country == own:
            continue
        phone = book.normalise(raw)
        if phone.mobile and not phone.placeholder:
            dialled = describe(phone.e164)
            if dialled.region != own and all(d.international != dialled.international for d in found):
                found.append(dialled)
    if not found:
        return ""
    codes = list(dict.fromkeys(d.international.split(" ", 1)[0] for d in found[:3]))
    readings = " or ".join(f"{line_in('mobile', d.region)} ({d.international})" for d in found[:3])
    return f"if this is {readings}, write {' or '.join(codes)} or {fix}"


def _placeholder(phone: Phone) -> Problem:
    dialled = describe(phone.e164)  # type: ignore[arg-type]
    return C.PLACEHOLDER_NUMBER.problem(
        f"this looks like a placeholder, not a person's number ({dialled.international}): {phone.placeholder}; "
        "write the real number, or ignore this if it is one")


def invisible_names(removed: str) -> str:
    """The invisible characters of a value, named as a person can look them up: ``zero-width space (U+200B)``."""
    names = []
    for char in dict.fromkeys(removed):
        name = unicodedata.name(char, "").lower() or "an invisible character"
        names.append(f"{name} (U+{ord(char):04X})")
    return " and ".join(names)


def cleaned(value: str, field: str, checker: Callable[[str], tuple[object, Sequence[Problem]]],
            ) -> tuple[object, Sequence[Problem]] | None:
    """A value that is valid once its invisible characters are gone: read clean, with a warning.

    Web forms, CRM exports and pasted text carry zero-width spaces, joiners and BOMs that
    nobody can see; in a sender ID, an e-mail or a URL they would be sent as they are (or
    make the value invalid). None when the value has none, or is invalid even without them.
    """
    if value.isascii():
        return None
    clean = fields_visible(value).strip()
    if clean == value:
        return None
    result, problems = checker(clean)
    if result is None:
        return None
    removed = "".join(c for c in value if unicodedata.category(c) == "Cf" or (c.isspace() and not c.isascii()))
    return result, [*problems, C.INVISIBLE_CHARACTER.problem(
        f"{field} holds a {invisible_names(removed)}, which nobody can see; it is read and sent as "
        f"{clean!r}. Retype the cell to remove it")]


def _sender(raw: str, book: PhoneBook, field: str, code: C.Code) -> tuple[str | None, list[Problem]]:
    """A sender ID: an E.164 number or an alphanumeric ID of 2–11 letters, digits and spaces.

    Two characters at least: the API takes 1–11, but Australia's sender-ID register
    (in force since July 2026) takes 2–11, and an unregistered ID reaches phones as
    "Unverified" — so a one-letter ID is wrong wherever the message goes.
    """
    value = raw.strip()
    found = cleaned(value, field, lambda v: _sender(v, book, field, code))
    if found is not None:
        return found  # type: ignore[return-value]
    if PHONE_LIKE.match(value) and not re.search(r"[A-Za-z]", value):
        phone = book.normalise(value)
        if phone.valid:
            return phone.e164, NO_PROBLEMS
        return None, [code.problem(
            f"{field} looks like a phone number but {phone.reason}; write it in E.164 (+61...) "
            "or use an alphanumeric sender ID with at least one letter",
        )]
    if ALNUM_SENDER.match(value) and re.search(r"[A-Za-z]", value):
        if len(value) < 2:
            return None, [code.problem(
                f"{field} is not a valid sender ID: {value!r} is 1 character; sender IDs take 2 to 11 "
                "(the Australian sender-ID register's rule, from July 2026)")]
        return value, NO_PROBLEMS
    if len(value) > 11:
        why = f"it is {len(value)} characters long and the limit is 11"
    elif not re.search(r"[A-Za-z]", value):
        why = "it needs at least one letter"
    else:
        bad = "".join(sorted({c for c in value if not (c.isascii() and (c.isalnum() or c == ' '))}))
        why = f"it holds {bad!r}; only A-Z, a-z, 0-9 and spaces are allowed"
    return None, [code.problem(f"{field} is not a valid sender ID: {why}")]


def check_from(raw: str, book: PhoneBook) -> tuple[str, list[Problem]] | tuple[None, list[Problem]]:
    """From: blank (a leased number), E.164, or alphanumeric."""
    if not raw.strip():
        return "", NO_PROBLEMS
    return _sender(raw, book, "From", C.INVALID_SENDER)


def check_forward_to_sms(raw: str, book: PhoneBook) -> tuple[str | None, list[Problem]]:
    """ForwardToSms: a phone number, normalised to E.164."""
    phone = book.normalise(raw)
    if phone.valid:
        return phone.e164, NO_PROBLEMS
    return None, [C.INVALID_FORWARD_TO_SMS.problem(f"ForwardToSms is not a valid phone number: {phone.reason}")]


def check_forward_from_sms(raw: str, book: PhoneBook) -> tuple[str | None, list[Problem]]:
    """ForwardFromSms: E.164 or alphanumeric sender ID."""
    return _sender(raw, book, "ForwardFromSms", C.INVALID_FORWARD_FROM_SMS)


# --------------------------------------------------------------------------- text


#: Characters a phone shows as nothing: controls, format characters (zero-width space, joiners,
#: BOM, soft hyphen), and separators (spaces).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
#: …and letters and marks that render blank: Hangul fillers, braille blank, variation selectors,
#: the combining grapheme joiner, Mongolian free variation selectors.
_BLANK_SIGNS = frozenset(
    "\u115f\u1160\u3164\uffa0\u2800\u034f\u180b\u180c\u180d"
    + "".join(map(chr, range(0xFE00, 0xFE10))) + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
_VISIBLE_ASCII = frozenset(map(chr, range(0x21, 0x7F)))


def _invisible(text: str) -> bool:
    """True when no character of ``text`` would show on a phone."""
    category = unicodedata.category
    return all(category(c) in _INVISIBLE_CATEGORIES or c in _BLANK_SIGNS for c in text)


def check_text(text: str, max_segments: int) -> tuple[seg.Segments | None, list[Problem]]:
    """Text: not empty, nor only invisible characters; counts segments; warns when look-alikes force UCS-2."""
    if not text or text.isspace():
        return None, [C.EMPTY_TEXT.problem("the message text is empty after rendering")]
    if text[0] not in _VISIBLE_ASCII and _invisible(text):  # the first test settles almost every text
        names = ", ".join(seg.char_name(c) for c in dict.fromkeys(text))
        return None, [C.EMPTY_TEXT.problem(
            f"the message text holds only invisible characters ({names}); a phone would show an empty "
            "message: write the text",
        )]
    counted = seg.count(text)
    problems: list[Problem] = []
    if counted.parts > max_segments:
        problems.append(C.TOO_MANY_SEGMENTS.problem(
            f"the text takes {counted.parts} {counted.encoding} segments ({counted.units} "
            f"{'characters' if counted.encoding == 'GSM-7' else 'UTF-16 units'}); the limit is "
            f"{max_segments} (--max-segments); shorten it",
        ))
    if counted.encoding == "UCS-2" and counted.parts > 1:  # one part either way saves nothing
        replaced = seg.gsm7_replacement(text)
        if replaced is not None:
            saved = counted.parts - seg.count(replaced).parts
            if saved > 0:
                names = ", ".join(seg.char_name(c) for c in seg.ucs2_forcers(text))
                problems.append(C.AVOIDABLE_UCS2.problem(
                    f"only {names} force UCS-2; replacing them with plain equivalents saves "
                    f"{saved} segment{'s' if saved > 1 else ''} ({counted.parts} → {counted.parts - saved})",
                ))
    return counted, problems or NO_PROBLEMS


# --------------------------------------------------------------------------- schedule


def parse_when(raw: str, tz: ZoneInfo, now: float | None = None, day_first: bool | None = True) -> float | None:
    """Epoch seconds of a time as people write it (naive times are in ``tz``); None if unreadable.

    A naive time the clocks skip or repeat in ``tz`` is unreadable too (see :func:`check_schedule`).
    """
    return read_time(raw, zone=tz, now=time.time() if now is None else now, day_first=day_first).epoch


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{max(1, round(seconds / 60))} minutes"


#: What to do with a row whose time passed more than an hour ago (``--late``).
LATE_POLICIES = ("error", "send-now", "skip")


def check_schedule(raw: str, tz: ZoneInfo, now: float, day_first: bool | None = True, late: str = "error",
                   ) -> tuple[int | None, list[Problem]]:
    """Schedule: a time as people write it, at most a year ahead, at most 1 hour behind.

    Beyond the API's 14 days the message is *held*: batchsms keeps it and hands it over
    (``batchsms due``) once it is inside the window, so the row is valid with a warning
    saying so. A time more than an hour past is an error, or with ``late`` sends now
    (``send-now``: the value is None, no Schedule) or is skipped (``skip``; the check
    marks the row skipped on seeing the code). Messages give times in the run's zone with
    its abbreviation (``Thu 10 Dec 2026 12:00 AEDT``), as the user reads a clock.
    """
    reading = read_time(raw, zone=tz, now=now, day_first=day_first)
    if reading.problem is not None:
        return None, [reading.problem]
    if reading.epoch is None:
        return None, [C.INVALID_SCHEDULE.problem(
            "not a time: use ISO 8601 (2026-12-01 09:30, 2026-12-01T09:30:00+11:00), epoch seconds, "
            f"or an Excel date cell; times without an offset are read in {zone_name(tz)} "
            "(set another with --timezone)",
        )]
    epoch = int(reading.epoch)
    ahead = epoch - now
    if ahead > MAX_HOLD_AHEAD:
        return None, [C.SCHEDULE_TOO_FAR.problem(
            f"is {_span(ahead)} ahead ({format_local(epoch, tz)}); batchsms holds messages at most a year: "
            "check the date",
        )]
    if ahead > MAX_SCHEDULE_AHEAD:
        handover = epoch - MAX_SCHEDULE_AHEAD + HANDOVER_MARGIN
        return epoch, [C.HELD_LOCALLY.problem(
            f"is {_span(ahead)} ahead ({format_local(epoch, tz)}), beyond the API's 14 days: batchsms keeps it and "
            f"hands it to the API from {format_local(handover, tz)}; `batchsms due` must run by then (cron)",
        )]
    if ahead < -MAX_SCHEDULE_BEHIND:
        when = f"is {_span(ahead)} in the past ({format_local(epoch, tz)})"
        if late == "send-now":  # the time as written stays in the body; the check sends the row without it
            return epoch, [C.SCHEDULE_LATE.problem(f"{when}: it sends now (--late send-now)")]
        if late == "skip":
            return None, [C.SCHEDULE_LATE_SKIPPED.problem(f"skipped: the time {when} (--late skip)")]
        return None, [C.SCHEDULE_IN_PAST.problem(
            f"{when}; the API refuses times more than 1 hour ago: set a time ahead, or --late send-now to send "
            "such rows now (--late skip leaves them out)",
        )]
    if ahead < 0:
        return epoch, [C.SCHEDULE_SENDS_IMMEDIATELY.problem(
            f"is {_span(ahead)} in the past ({format_local(epoch, tz)}): it sends immediately"
        )]
    if reading.note == "tomorrow":
        return epoch, [C.SCHEDULE_TOMORROW.problem(
            f"{raw.strip()} has passed today, so it means tomorrow: {format_local(epoch, tz)}; write the date to be "
            "sure")]
    return epoch, NO_PROBLEMS


# --------------------------------------------------------------------------- flags, methods, addresses


def check_bool(raw: str, field: str) -> tuple[bool | None, list[Problem]]:
    """DeliveryReceipt: true/false/yes/no/1/0 in any case; blank is unset (the API's default)."""
    value = raw.strip().casefold()
    if not value:
        return None, NO_PROBLEMS
    if value in TRUE_WORDS:
        return True, NO_PROBLEMS
    if value in FALSE_WORDS:
        return False, NO_PROBLEMS
    return None, [C.INVALID_BOOLEAN.problem(f"{field} must be true or false (or yes/no, 1/0)")]


def check_method(raw: str, field: str) -> tuple[str | None, list[Problem]]:
    """Webhook methods: POST or GET, in any case."""
    value = raw.strip().upper()
    if value in METHODS:
        return value, NO_PROBLEMS
    return None, [C.INVALID_METHOD.problem(f"{field} must be POST or GET")]


def check_url(raw: str, field: str) -> tuple[str | None, list[Problem]]:
    """Webhook URIs: absolute http(s) URLs with a host."""
    value = raw.strip()
    found = cleaned(value, field, lambda v: check_url(v, field))
    if found is not None:
        return found  # type: ignore[return-value]
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not host or re.search(r"\s", value):
        return None, [C.INVALID_URL.problem(
            f"{field} must be an absolute http:// or https:// URL with a host"
        )]
    return value, NO_PROBLEMS


def check_email(raw: str, field: str) -> tuple[str | None, list[Problem]]:
    """ForwardToEmail / ForwardFromEmail: one plain address (name@example.com)."""
    value = raw.strip()
    found = cleaned(value, field, lambda v: check_email(v, field))
    if found is not None:
        return found  # type: ignore[return-value]
    if EMAIL.match(value) and len(value) <= 254:
        return value, NO_PROBLEMS
    return None, [C.INVALID_EMAIL.problem(f"{field} is not a valid e-mail address (name@example.com)")]
