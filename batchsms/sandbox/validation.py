"""The sandbox's own reading of send-sms.txt: what the API refuses, with the ResponseStatus error shape.

Deliberately independent of ``batchsms.rules`` (which normalises what people type):
the API takes only exact E.164, exact types and exact values, and a sandbox that
shared the client's code could not catch the client's mistakes.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
ALNUM = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_AHEAD, MAX_BEHIND = 14 * 24 * 3600, 3600
LEASE_ONLY = ("ForwardToSms", "ForwardFromSms", "ForwardToEmail", "ForwardFromEmail", "WebhookUri", "WebhookMethod")
KNOWN = frozenset({"From", "To", "Text", "Schedule", "DeliveryReceipt", "DeliveryReceiptWebhookUri",
                   "DeliveryReceiptWebhookMethod", "ExternalId", *LEASE_ONLY})


class ApiError(Exception):
    """An error the API would answer with: HTTP status, ErrorCode, Message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict:
        return {"ResponseStatus": {"ErrorCode": self.code, "Message": self.message}}


def _url(value: object) -> bool:
    """An absolute http(s) URL with a host and, if any, a valid port.

    ``urlsplit`` raises on an unclosed ``[`` and ``.port`` on a port beyond 65535; both are
    the caller's mistake, so they must be a 400 here, not an exception in the server (or
    later, in the webhook task that would try to connect to it).
    """
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def validate(body: object, now: float) -> dict:
    """The message fields, or ApiError(400, ...) for the first rule broken."""
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidRequest", "The request body must be a JSON object")
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise ApiError(400, "InvalidParameter", f"Unknown parameter {unknown[0]}")
    to = body.get("To")
    if not isinstance(to, str) or not E164.match(to):
        raise ApiError(400, "InvalidTo", "To must be a phone number in E164 format including the + prefix")
    sender = body.get("From", "")
    if sender is None:
        sender = ""
    if not isinstance(sender, str) or (sender and not E164.match(sender) and not ALNUM.match(sender)):
        raise ApiError(400, "InvalidFrom", "From must be E164, alphanumeric (1-11 characters, one letter), or blank")
    text = body.get("Text")
    if not isinstance(text, str) or not text:
        raise ApiError(400, "InvalidText", "Text is required")
    if "Schedule" in body:
        schedule = body["Schedule"]
        if not isinstance(schedule, int) or isinstance(schedule, bool):
            raise ApiError(400, "InvalidSchedule", "Schedule must be an integer number of seconds since the epoch")
        if schedule > now + MAX_AHEAD:
            raise ApiError(400, "InvalidSchedule", "Schedule can be at most 14 days in the future")
        if schedule < now - MAX_BEHIND:
            raise ApiError(400, "InvalidSchedule", "Schedule is more than 1 hour in the past")
    if "DeliveryReceipt" in body and not isinstance(body["DeliveryReceipt"], bool):
        raise ApiError(400, "InvalidDeliveryReceipt", "DeliveryReceipt must be true or false")
    for key in ("DeliveryReceiptWebhookMethod", "WebhookMethod"):
        if key in body and body[key] not in ("POST", "GET"):
            raise ApiError(400, f"Invalid{key}", f"{key} must be POST or GET")
    for key in ("DeliveryReceiptWebhookUri", "WebhookUri"):
        if key in body and not _url(body[key]):
            raise ApiError(400, f"Invalid{key}", f"{key} must be an absolute http or https URI")
    if "ForwardToSms" in body and not (isinstance(body["ForwardToSms"], str) and E164.match(body["ForwardToSms"])):
        raise ApiError(400, "InvalidForwardToSms", "ForwardToSms must be in E164 format")
    fwd_from = body.get("ForwardFromSms")
    if fwd_from and not (isinstance(fwd_from, str) and (E164.match(fwd_from) or ALNUM.match(fwd_from))):
        raise ApiError(400, "InvalidForwardFromSms", "ForwardFromSms must be E164 or alphanumeric")
    for key in ("ForwardToEmail", "ForwardFromEmail"):
        if key in body and not (isinstance(body[key], str) and EMAIL.match(body[key])):
            raise ApiError(400, f"Invalid{key}", f"{key} must be an e-mail address")
    if sender:
        used = [k for k in LEASE_ONLY if body.get(k)]
        if used:
            raise ApiError(400, "LeaseParameterNotAllowed", f"{used[0]} can only be used when sending from a lease")
    ext = body.get("ExternalId")
    if ext is not None and not isinstance(ext, str):
        raise ApiError(400, "InvalidExternalId", "ExternalId must be a string")
    return body
