"""What became of a request, and the bytes it carries: the types the sender and the journal share with the client.

Kept apart from :mod:`batchsms.client` so that what plans, journals and records a send
does not load the HTTP stack: requests and urllib3 (~0.06 s) load only when something is
sent or looked up, and ``batchsms check`` never pays for them.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

__all__ = ["STOP_DECISIONS", "BatchOutcome", "Decision", "Outcome", "encode_batch", "encode_body", "join_batch"]


class Decision(enum.Enum):
    """What to do with the outcome of one request."""

    ACCEPTED = "accepted"  # a 2xx holding the API's Message with a MessageSid: the API took the message
    RETRY = "retry"  # proven not taken: safe to send again
    UNKNOWN = "unknown"  # may have been taken: never resend without a person's say-so
    FAILED = "failed"  # refused for this row (4xx): the error says why
    AUTH = "auth"  # 401/403: every row would fail, stop the run
    FATAL = "fatal"  # the TLS handshake failed: nothing was taken and every row would fail, stop the run


STOP_DECISIONS = frozenset({Decision.AUTH, Decision.FATAL})  # end the whole run; the row is released


@dataclass
class Outcome:
    """The result of sending one message, after any retries.

    ``message_sid``, ``sender_id`` and ``num_segments`` are the Message's fields
    checked for type and size: they are what may be journaled. ``message`` is the
    raw Message object, for display only.
    """

    decision: Decision
    status: int | None = None
    message: dict = field(default_factory=dict)  # the API's Message resource, as it came
    error_code: str = ""
    error: str = ""
    attempts: int = 1
    retry_after: float | None = None
    message_sid: str | None = None  # set on every ACCEPTED outcome
    sender_id: str | None = None  # From, when it is a short printable string
    num_segments: int | None = None  # NumSegments, when it is an int in 1..MAX_SEGMENTS

    @property
    def error_text(self) -> str:
        return f"{self.error_code}: {self.error}" if self.error_code else self.error

    @property
    def stops_run(self) -> bool:
        """True when every further row would fail the same way (credentials refused, TLS failed)."""
        return self.decision in STOP_DECISIONS


@dataclass
class BatchOutcome(Outcome):
    """The result of one BatchMessages request, after any retries.

    When the API answered with one item per message (``decision`` ACCEPTED), ``items``
    holds each message's own outcome, in order: ACCEPTED with a MessageSid, FAILED with
    the item's ErrorCode, or UNKNOWN for an item that says neither. Otherwise the request
    decided for every message at once (no answer, a 5xx, a 429 given up on, refused
    credentials) and ``items`` is empty: :meth:`each` repeats this outcome per message.
    ``too_large`` says the API refused the batch for its size: none of it was taken.
    """

    items: list[Outcome] = field(default_factory=list)
    too_large: bool = False

    def each(self, count: int) -> list[Outcome]:
        """One outcome per message of a batch of ``count``."""
        return self.items if self.items else [self] * count


def encode_body(body: dict) -> bytes:
    """A message's request body as it goes on the wire (the journal records these very bytes)."""
    return json.dumps(body).encode("utf-8")


def encode_batch(bodies: list[dict]) -> bytes:
    """A BatchMessages request body: ``{"Messages": [...]}``, each message as :func:`encode_body` writes it."""
    return json.dumps({"Messages": bodies}).encode("utf-8")


def join_batch(encoded: list[bytes]) -> bytes:
    """:func:`encode_batch`'s very bytes from messages :func:`encode_body` encoded already.

    The sender encodes each body once, for the journal, and the request carries those
    bytes: the batch is not encoded again between an answer and the next request.
    """
    return b'{"Messages": [' + b", ".join(encoded) + b"]}"
