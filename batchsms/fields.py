"""The API's message fields (send-sms.txt) and how sheet headers map onto them."""

from __future__ import annotations

import re

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

#: Fields the API honours only when sending from a leased number (blank From).
LEASE_ONLY: tuple[str, ...] = (
    FORWARD_TO_SMS, FORWARD_FROM_SMS, FORWARD_TO_EMAIL, FORWARD_FROM_EMAIL, WEBHOOK_URI,
    WEBHOOK_METHOD,
)

#: Other headers people give the recipient column.
RECIPIENT_ALIASES: tuple[str, ...] = (
    "Mobile", "Mobile Number", "Phone", "Phone Number", "Cell", "Number", "MSISDN",
)


def header_key(header: str) -> str:
    """Case-, space- and underscore-insensitive key: ``'Mobile Number'`` → ``'mobilenumber'``."""
    return re.sub(r"[\s_\-]+", "", header).casefold()


_FIELD_BY_KEY = {header_key(f): f for f in FIELDS}
_FIELD_BY_KEY.update({header_key(a): TO for a in RECIPIENT_ALIASES})


def field_for_header(header: str) -> str | None:
    """The API field a header names, if any."""
    return _FIELD_BY_KEY.get(header_key(header))


def canonical_field(name: str) -> str | None:
    """The API field spelled ``name`` in any case or spacing (``deliveryreceipt`` → ``DeliveryReceipt``)."""
    key = header_key(name)
    return next((f for f in FIELDS if header_key(f) == key), None)
