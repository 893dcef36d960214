"""The one catalogue of names: every problem code a check can report, and every state a row can be in.

A problem code is stable kebab-case, so reports can be filtered and compared across
runs; its entry here says in plain English what it means and how to fix it (the
preview and the README draw on these). Rules make a :class:`Problem` with
``CODE.problem("what exactly is wrong with this value")`` and never spell a code out.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class Severity(str, enum.Enum):
    """An error keeps the row from being sent; a warning is sent but worth a look."""

    ERROR = "error"
    WARNING = "warning"

    def __str__(self) -> str:
        return self.value


ERROR, WARNING = Severity.ERROR, Severity.WARNING


class Status(str, enum.Enum):
    """Every state a row can be in, from the check to the API's answer.

    The check gives VALID, INVALID or SKIPPED; the journal records STARTED before a
    request goes out and SENT, SCHEDULED, FAILED or UNKNOWN after; PENDING is a valid
    row no run has sent yet; HELD is a message kept locally until it is due (beyond the
    API's 14-day window, or ``--hold``) and CANCELLED a held one withdrawn before it went.
    The values are what the results file and ``--json`` show.
    """

    VALID = "valid"
    INVALID = "invalid"
    SKIPPED = "skipped"
    PENDING = "pending"
    STARTED = "started"
    SENT = "sent"
    SCHEDULED = "scheduled"
    FAILED = "failed"
    UNKNOWN = "unknown"
    HELD = "held"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


#: The API took the message: never send it again.
DONE = frozenset({Status.SENT, Status.SCHEDULED})
#: The API may have taken it: never resend without a person's say-so.
MAYBE_SENT = frozenset({Status.UNKNOWN, Status.STARTED})


class Problem(NamedTuple):
    """One problem with one value: what a rule returns (the check adds row and column)."""

    severity: Severity
    code: str
    message: str


class Code(NamedTuple):
    """A catalogue entry: the code, its severity, what it means and how to fix it."""

    code: str
    severity: Severity
    meaning: str
    fix: str

    def problem(self, message: str) -> Problem:
        """This code with the message that says what exactly is wrong with the value at hand."""
        return Problem(self.severity, self.code, message)


def _code(code: str, severity: Severity, meaning: str, fix: str) -> Code:
    entry = Code(code, severity, meaning, fix)
    if code in CATALOGUE:
        raise ValueError(f"problem code {code!r} is defined twice")
    CATALOGUE[code] = entry
    return entry


CATALOGUE: dict[str, Code] = {}

# --- the sheet as read
UNCLOSED_QUOTE = _code("unclosed-quote", ERROR, "a quote opened in a cell never closes and swallows the rows after it",
                       "remove the stray \" or close it, then check again")
HIDDEN_ROW = _code("hidden-row", WARNING, "the row is hidden in Excel, so it is not sent",
                   "unhide it in Excel, or give --include-hidden to send hidden rows")
# --- To
MISSING_RECIPIENT = _code("missing-recipient", ERROR, "the row has no recipient number",
                          "fill in the number, or delete the row")
INVALID_PHONE = _code("invalid-phone", ERROR, "the recipient is not a valid phone number",
                      "correct the number; write +<country code> for numbers outside --country")
TWO_NUMBERS = _code("two-numbers", ERROR, "the cell holds two or more phone numbers",
                    "put one number per row")
NOT_MOBILE = _code("not-mobile", ERROR, "the number is valid but not a mobile: SMS to it is at best a voice call",
                   "use the person's mobile number, or --allow-landlines to send anyway (then a warning)")
READ_AS_INTERNATIONAL = _code("read-as-international", WARNING,
                              "the digits start with a country code without + (an Excel number cell): read so",
                              "write + and the country code to be sure")
PLACEHOLDER_NUMBER = _code("placeholder-number", WARNING,
                           "the number looks made up: an example number, or seven equal digits at its end",
                           "write the person's real number, or ignore this if it is one")
INVALID_COUNTRY = _code("invalid-country", ERROR, "the Country cell names no country",
                        "write a two-letter ISO code (NZ) or the English name (New Zealand), or leave it empty")
INVISIBLE_CHARACTER = _code("invisible-character", WARNING,
                            "the cell holds a character nobody can see (a zero-width space, a joiner, a BOM): "
                            "it is read without it", "retype the cell to remove it")
# --- From and the forward fields
INVALID_SENDER = _code("invalid-sender", ERROR, "From is neither a phone number nor a valid alphanumeric sender ID",
                       "write +E.164, or 1-11 letters, digits and spaces with at least one letter, or leave it blank")
ALPHANUMERIC_SENDER_US = _code("alphanumeric-sender-us", WARNING,
                               "US and Canadian networks do not show alphanumeric senders",
                               "send to +1 numbers from a number, or accept that a leased number is shown")
INVALID_FORWARD_TO_SMS = _code("invalid-forward-to-sms", ERROR, "ForwardToSms is not a valid phone number",
                               "write the number replies should be forwarded to in E.164")
INVALID_FORWARD_FROM_SMS = _code("invalid-forward-from-sms", ERROR, "ForwardFromSms is not a valid sender",
                                 "write +E.164 or an alphanumeric sender ID")
INVALID_EMAIL = _code("invalid-email", ERROR, "the e-mail address is not valid", "write it as name@example.com")
LEASE_ONLY_FIELD = _code("lease-only-field", ERROR, "a field that works only with a leased number has a From",
                         "leave From blank, or remove the forwarding or webhook field")
LEASE_LIMIT = _code("lease-limit", ERROR, "a 6th message to one number from a leased (blank) sender",
                    "set a From for these rows, or send them later")
# --- Text
EMPTY_TEXT = _code("empty-text", ERROR, "the message text is empty or only invisible characters",
                   "write the text, or fix the template")
TOO_MANY_SEGMENTS = _code("too-many-segments", ERROR, "the text is longer than --max-segments allows",
                          "shorten it, or raise --max-segments")
AVOIDABLE_UCS2 = _code("avoidable-ucs2", WARNING, "look-alike characters alone force UCS-2, which costs segments",
                       "replace curly quotes, long dashes and special spaces with plain ones")
MISSING_VARIABLE = _code("missing-variable", ERROR, "the template uses a column the sheet does not have",
                         "correct the name in the template, or add the column")
EMPTY_VARIABLE = _code("empty-variable", WARNING, "a variable the text prints is empty on this row (\"Hi , ...\")",
                        "fill the cell, or give a fallback: {{ First_Name | default(\"there\", true) }}")
NO_OPT_OUT = _code("no-opt-out", ERROR, "a marketing text (--marketing) says nowhere how to opt out",
                   "add 'Reply STOP to opt out' (sent from a number) or an unsubscribe link")
OPT_OUT_UNREACHABLE = _code("opt-out-unreachable", WARNING,
                            "the text asks for a reply (Reply STOP) but the sender ID cannot receive replies",
                            "send from a number or a leased one (blank From), or give a link to opt out; "
                            "an error with --marketing")
TEMPLATE_ERROR = _code("template-error", ERROR, "the template failed on this row",
                       "fix the template or the row's values as the message says")
# --- Schedule
INVALID_SCHEDULE = _code("invalid-schedule", ERROR, "the Schedule is not a time",
                         "write ISO 8601 (2026-12-01 09:30), epoch seconds, or use an Excel date cell")
SCHEDULE_TOO_FAR = _code("schedule-too-far", ERROR, "the Schedule is more than a year ahead",
                         "check the date")
SCHEDULE_IN_PAST = _code("schedule-in-past", ERROR, "the Schedule is more than an hour ago",
                         "set a time in the future, or --late send-now / --late skip")
SCHEDULE_LATE = _code("schedule-late", WARNING, "the Schedule passed more than an hour ago: it sends now (--late "
                      "send-now)", "nothing to do, unless it should not go late")
SCHEDULE_LATE_SKIPPED = _code("schedule-late-skipped", WARNING,
                              "skipped: the Schedule passed more than an hour ago (--late skip)",
                              "set a time ahead if it should still go")
SCHEDULE_TOMORROW = _code("schedule-tomorrow", WARNING, "a time written alone (10:00) has passed today, so it "
                          "means tomorrow", "nothing to do if tomorrow is right; else write the date")
HELD_LOCALLY = _code("held-locally", WARNING, "the Schedule is beyond the API's 14 days: batchsms holds the message "
                     "and hands it over later", "run `batchsms due` from cron so it goes in time")
SCHEDULE_SENDS_IMMEDIATELY = _code("schedule-sends-immediately", WARNING,
                                   "the Schedule passed less than an hour ago, so it sends at once",
                                   "set a time in the future if it should wait")
NONEXISTENT_TIME = _code("nonexistent-time", ERROR, "the clocks skip this time in the time zone (daylight saving)",
                         "write the time you mean with its offset")
AMBIGUOUS_TIME = _code("ambiguous-time", ERROR, "this time happens twice in the time zone (daylight saving)",
                       "write the time you mean with its offset")
# --- flags, methods, addresses
INVALID_BOOLEAN = _code("invalid-boolean", ERROR, "the value is not true or false", "write true/false, yes/no or 1/0")
INVALID_METHOD = _code("invalid-method", ERROR, "the webhook method is not POST or GET", "write POST or GET")
INVALID_URL = _code("invalid-url", ERROR, "the webhook is not an absolute http(s) URL",
                    "write it as https://host/path")
RECEIPT_WEBHOOK_UNUSED = _code("receipt-webhook-unused", WARNING,
                               "DeliveryReceipt is false, so the receipt webhook is never called",
                               "set DeliveryReceipt true, or remove the webhook")
# --- which rows go (--where, --consent-column, --skip-empty)
NOT_SELECTED = _code("not-selected", WARNING, "skipped: --where leaves the row out",
                     "nothing to do, unless the row should go: change --where")
NO_CONSENT = _code("no-consent", WARNING, "skipped: the consent column does not say yes (--consent-column)",
                   "nothing to do, unless the person agreed: then write yes")
EMPTY_MESSAGE = _code("empty-message", WARNING, "skipped: the template writes no text for the row (--skip-empty)",
                      "nothing to do, unless the row should get a text: then fix the template or the row")
# --- across rows
DUPLICATE_RECIPIENT = _code("duplicate-recipient", WARNING, "an earlier row texts the same number",
                            "use --dedupe to send only the first")
DUPLICATE_MESSAGE = _code("duplicate-message", WARNING, "an earlier row sends the same number the very same text",
                          "remove one row, or use --dedupe")
DUPLICATE_SKIPPED = _code("duplicate-skipped", WARNING, "skipped: an earlier row already texts this number (--dedupe)",
                          "nothing to do, unless both messages should go")
SUPPRESSED = _code("suppressed", WARNING, "skipped: the number is on the opt-out list (--suppress or the opt-out file)",
                   "nothing to do: the person asked not to be texted")
# --- times people write, quiet hours in the recipient's time (schedule.py)
AMBIGUOUS_DATE = _code("ambiguous-date", ERROR, "the date reads as two different days (day first or month first)",
                       "write it as 2026-12-01 10:00, or set --locale to say how dates are written")
INVALID_TIMEZONE = _code("invalid-timezone", ERROR, "the Timezone cell names no time zone",
                         "write an IANA name such as Australia/Perth, or leave it empty to use the number's zones")
QUIET_HOURS_MOVED = _code("quiet-hours-moved", WARNING,
                          "the send time falls in the recipient's quiet hours, so it moves to the next allowed time",
                          "nothing to do, or choose a time outside the quiet hours")
QUIET_HOURS_SKIPPED = _code("quiet-hours-skipped", WARNING,
                            "skipped: the send time falls in the recipient's quiet hours (--quiet-hours-policy skip)",
                            "choose a time outside the quiet hours, or --quiet-hours-policy move")
QUIET_HOURS = _code("quiet-hours", ERROR, "the send time falls in the recipient's quiet hours, or no time is "
                    "outside them in every zone the number may be in",
                    "choose a time outside them, give --quiet-hours-policy move, or fill the Timezone column")
# --- the sheet as the person sees it (Excel cells)
CELL_ERROR = _code("cell-error", ERROR, "a cell shows an Excel error (#N/A, #REF!, ...) or holds a formula with no "
                   "saved value, so its text is not known", "fix the formula in Excel (or open the file in Excel "
                   "and save it), or type the value")


def entry(code: str) -> Code:
    """The catalogue entry for ``code`` (KeyError for a code nobody defined)."""
    return CATALOGUE[code]
