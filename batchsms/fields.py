"""The API's message fields (send-sms.txt) and how sheet headers map onto them."""

from __future__ import annotations

import re
from typing import NamedTuple

TO, FROM, TEXT, SCHEDULE = "To", "From", "Text", "Schedule"
DELIVERY_RECEIPT = "DeliveryReceipt"
DR_WEBHOOK_URI, DR_WEBHOOK_METHOD = "DeliveryReceiptWebhookUri", "DeliveryReceiptWebhookMethod"
EXTERNAL_ID = "ExternalId"
FORWARD_TO_SMS, FORWARD_FROM_SMS = "ForwardToSms", "ForwardFromSms"
FORWARD_TO_EMAIL, FORWARD_FROM_EMAIL = "ForwardToEmail", "ForwardFromEmail"
WEBHOOK_URI, WEBHOOK_METHOD = "WebhookUri", "WebhookMethod"

#: Every field of one message, in the order of the API page.
FIELDS: tuple[str, ...] = (
    FROM, TO, TEXT, SCHEDULE, DELIVERY_RECEIPT, DR_WEBHOOK_URI, DR_WEBHOOK_METHOD, EXTERNAL_ID,
    FORWARD_TO_SMS, FORWARD_FROM_SMS, FORWARD_TO_EMAIL, FORWARD_FROM_EMAIL, WEBHOOK_URI,
    WEBHOOK_METHOD,
)

class FieldOption(NamedTuple):
    """A command-line option that gives one API field to every row (a non-empty cell wins)."""

    field: str
    option: str  # the long option, e.g. "--from"
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] = ()  # a closed set of values (the webhook methods)
    flag: bool = False  # an on/off switch: --delivery-receipt/--no-delivery-receipt

    @property
    def param(self) -> str:
        """The keyword the option arrives under (``--from`` → ``field_From``)."""
        return f"field_{self.field}"


#: The one table of per-row defaults: the CLI builds its options from it, and problems name the option.
FIELD_OPTIONS: tuple[FieldOption, ...] = (
    FieldOption(FROM, "--from", "Sender ID for every row: +E.164, alphanumeric, or blank for leased.",
                metavar="SENDER"),
    FieldOption(SCHEDULE, "--schedule", "Send time for every row (ISO 8601 or epoch seconds).", metavar="TIME"),
    FieldOption(DELIVERY_RECEIPT, "--delivery-receipt", "Ask for delivery receipts (the API's default is yes).",
                flag=True),
    FieldOption(DR_WEBHOOK_URI, "--delivery-receipt-webhook", "URL called with each delivery receipt.",
                metavar="URL"),
    FieldOption(DR_WEBHOOK_METHOD, "--delivery-receipt-webhook-method", "Method of the receipt webhook.",
                choices=("POST", "GET")),
    FieldOption(WEBHOOK_URI, "--webhook", "URL called with replies (leased numbers only).", metavar="URL"),
    FieldOption(WEBHOOK_METHOD, "--webhook-method", "Method of the reply webhook.", choices=("POST", "GET")),
    FieldOption(FORWARD_TO_SMS, "--forward-to-sms", "Forward replies to this number (leased only).",
                metavar="NUMBER"),
    FieldOption(FORWARD_FROM_SMS, "--forward-from-sms", "Sender for forwarded replies (leased only).",
                metavar="SENDER"),
    FieldOption(FORWARD_TO_EMAIL, "--forward-to-email", "Forward replies to this address (leased only).",
                metavar="EMAIL"),
    FieldOption(FORWARD_FROM_EMAIL, "--forward-from-email", "Sender address for forwarded replies (leased only).",
                metavar="EMAIL"),
)
#: The option that gives each field to every row (named in problems when the value came from it).
OPTION_FOR_FIELD: dict[str, str] = {o.field: o.option for o in FIELD_OPTIONS}

#: Fields the API honours only when sending from a leased number (blank From).
LEASE_ONLY: tuple[str, ...] = (
    FORWARD_TO_SMS, FORWARD_FROM_SMS, FORWARD_TO_EMAIL, FORWARD_FROM_EMAIL, WEBHOOK_URI,
    WEBHOOK_METHOD,
)

#: Other headers people give the recipient column.
RECIPIENT_ALIASES: tuple[str, ...] = (
    "Mobile", "Mobile Number", "Phone", "Phone Number", "Cell", "Number", "MSISDN",
)


#: Unicode format characters (category Cf): zero-width spaces and joiners, word joiners, BOMs,
#: direction marks, the Mongolian vowel separator. Invisible, and pasted into headers every day.
#: Written out as ranges (Unicode 14, Python 3.11): computing it from unicodedata at import took 0.28 s.
#: tests/test_invisible.py checks it against unicodedata.
FORMAT_RANGES = (
    (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891),
    (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F),
    (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)
_FORMAT_CHARACTERS = dict.fromkeys(c for low, high in FORMAT_RANGES for c in range(low, high + 1))


def visible(text: str) -> str:
    """``text`` without Unicode format characters (zero-width spaces, BOMs, joiners …)."""
    return text.translate(_FORMAT_CHARACTERS) if not text.isascii() else text


def clean_header(header: str) -> str:
    """A header as a person reads it: no format characters, no surrounding (Unicode) whitespace."""
    return visible(header).strip()


def header_key(header: str) -> str:
    """Case-, space-, underscore- and invisible-insensitive key: ``'Mobile Number'`` → ``'mobilenumber'``."""
    return re.sub(r"[\s_\-]+", "", visible(header)).casefold()


_FIELD_BY_KEY = {header_key(f): f for f in FIELDS}
_FIELD_BY_KEY.update({header_key(a): TO for a in RECIPIENT_ALIASES})


def field_for_header(header: str) -> str | None:
    """The API field a header names, if any."""
    return _FIELD_BY_KEY.get(header_key(header))


def canonical_field(name: str) -> str | None:
    """The API field spelled ``name`` in any case or spacing (``deliveryreceipt`` → ``DeliveryReceipt``)."""
    key = header_key(name)
    return next((f for f in FIELDS if header_key(f) == key), None)
