"""Inbound replies: which ones are opt-out or opt-in keywords, read from the API's Message resources.

A reply is an opt-out only when the *whole* message is one of the keywords the carriers and
the law name (STOP, UNSUBSCRIBE, …; US TCPA and the Australian Spam Act both honour these),
ignoring case, punctuation, symbols and spacing: "Stop." and "S T O P" are STOP, "Stop
sending me these" is not. A rule that looked for the word anywhere would opt out "don't stop
the reminders"; so replies that merely *mention* an opt-out word are listed for a person
(:func:`near_miss`), never acted on.

Message resources come from two places nobody fully documents (the list call and the
webhooks), so :func:`message_fields` reads their keys case-insensitively and every value
defensively; :func:`reply_of` turns one into a :class:`Reply` or says it is none. The
``batchsms replies`` library call is :func:`collect_replies`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ConfigError
from .phones import PhoneBook
from .scrub import one_line

OPT_OUT: Literal["opt-out"] = "opt-out"
OPT_IN: Literal["opt-in"] = "opt-in"
Keyword = Literal["opt-out", "opt-in"]

#: Whole-message keywords, written as a person would; compared with everything but letters and digits removed.
OPT_OUT_WORDS = ("STOP", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPT OUT", "OPTOUT", "REVOKE")
OPT_IN_WORDS = ("START", "UNSTOP")
#: Words that make a reply worth a person's look when it is not a keyword ("Stop sending me these").
#: END and START are left out: "at the end of the month" and "when does it start" are everyday phrases.
_MENTIONS = re.compile(r"\b(stop|unsubscribe|cancel|quit|opt[\s-]*out|revoke|remove me|unstop)\b")

_KEYWORDS: dict[str, Keyword] = {
    **{w.replace(" ", "").casefold(): OPT_OUT for w in OPT_OUT_WORDS},
    **{w.replace(" ", "").casefold(): OPT_IN for w in OPT_IN_WORDS},
}
MAX_TEXT_SHOWN = 160  # a reply as shown and stored: one line, at most this many characters
INBOUND_DIRECTION = "receive"
INBOUND_STATUS = "received"


def _letters_and_digits(text: str) -> str:
    """``text`` in NFKC, case-folded, with every character that is not a letter or digit removed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def classify(text: str) -> Keyword | None:
    """``"opt-out"``, ``"opt-in"`` or None for a reply's text: the whole message must be the keyword.

    Case, punctuation, symbols (an emoji), invisible characters and spaces do not count:
    ``"Stop."``, ``" stop all "``, ``"Opt-Out"``, ``"ＳＴＯＰ"`` are opt-outs; ``"STOP STOP"``
    and ``"Stop sending me these"`` are not (see :func:`near_miss`).
    """
    if not isinstance(text, str):
        return None
    return _KEYWORDS.get(_letters_and_digits(text))


def near_miss(text: str) -> str | None:
    """The opt-out (or opt-in) word a reply mentions when it is not itself a keyword, else None.

    For a person to read: "Stop sending me these" → ``"stop"``. Never acted on.
    """
    if not isinstance(text, str) or classify(text) is not None:
        return None
    found = _MENTIONS.search(unicodedata.normalize("NFKC", text).casefold())
    return " ".join(found.group(1).replace("-", " ").split()) if found else None


def shown_text(text: object, limit: int = MAX_TEXT_SHOWN) -> str:
    """A reply's text as one printable line (control characters and escapes gone), at most ``limit`` long."""
    return one_line(text if isinstance(text, str) else "", limit)


# --------------------------------------------------------------------------- Message resources


def _key(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def message_fields(payload: object) -> dict[str, Any] | None:
    """The Message fields of a payload, keyed by lower-case name without ``_`` (``messagesid``), or None.

    Takes the Message itself or one wrapped as ``{"Message": {...}}``; keys match whatever
    their case or underscores (``messageSid``, ``message_sid``).
    """
    if not isinstance(payload, Mapping):
        return None
    fields = {_key(str(k)): v for k, v in payload.items()}
    inner = fields.get("message")
    if isinstance(inner, Mapping):
        fields = {_key(str(k)): v for k, v in inner.items()}
    return fields


def text_field(fields: Mapping[str, Any], name: str, limit: int = 2000) -> str | None:
    """A field that must be text (a number is taken as its digits), else None; at most ``limit`` long."""
    value = fields.get(name)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        return None
    return value


def time_field(fields: Mapping[str, Any], *names: str) -> float | None:
    """The first of ``names`` that holds a time: epoch seconds (number or digits) or ISO 8601, else None."""
    for name in names:
        value = fields.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, str):
            text = value.strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                try:
                    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
                except ValueError:
                    continue
                if when.tzinfo is None:
                    when = when.replace(tzinfo=dt.timezone.utc)  # the API's times are UTC
                return when.timestamp()
        if isinstance(value, (int, float)) and math.isfinite(value) and 0 < value < 1e11:
            return float(value)
    return None


def is_inbound(fields: Mapping[str, Any]) -> bool:
    """True for a message someone sent to the property (Direction Receive, or Status Received)."""
    direction = fields.get("direction")
    status = fields.get("status")
    return ((isinstance(direction, str) and direction.strip().casefold() == INBOUND_DIRECTION)
            or (isinstance(status, str) and status.strip().casefold() == INBOUND_STATUS))


@dataclass(frozen=True)
class Reply:
    """One inbound message: who sent it (E.164 when it reads as a number), when, and what it says."""

    number: str  # E.164, or the From as it came when it is no phone number (a short code, a name)
    at: float  # epoch seconds (UTC)
    text: str  # as it came (display it through shown_text)
    sid: str | None = None
    to: str | None = None  # the property's number it was sent to
    valid_number: bool = True  # False: From is not a phone number, so nothing can be opted out

    @property
    def keyword(self) -> Keyword | None:
        return classify(self.text)


def reply_of(payload: object, book: PhoneBook, now: float) -> Reply | None:
    """The reply a Message resource is, or None when it is not an inbound message with a From.

    The time is Received, else Created, else ``now`` (a webhook that carries no time), and
    never later than ``now``.
    A From that is no phone number stays as it came, with ``valid_number`` False.
    """
    fields = message_fields(payload)
    if fields is None or not is_inbound(fields):
        return None
    sender = text_field(fields, "from", 64)
    if sender is None:
        return None
    text = fields.get("text")
    text = text if isinstance(text, str) else ""
    phone = book.normalise(sender.strip())
    if not phone.valid:
        phone = book.international(sender) or phone
    when = time_field(fields, "received", "created", "datecreated", "date") or now
    when = min(when, now)  # a time from the future would outrank every later reply from that number
    return Reply(number=phone.e164 if phone.valid else one_line(sender, 64), at=when, text=text,
                 sid=text_field(fields, "messagesid", 200), to=text_field(fields, "to", 64),
                 valid_number=phone.valid)


def replies_in(messages: Iterable[object], book: PhoneBook, now: float) -> list[Reply]:
    """The inbound messages among ``messages`` (anything else is skipped), newest first, one per MessageSid."""
    seen: set[str] = set()
    found = []
    for message in messages:
        reply = reply_of(message, book, now)
        if reply is None:
            continue
        if reply.sid is not None:
            if reply.sid in seen:
                continue
            seen.add(reply.sid)
        found.append(reply)
    found.sort(key=lambda r: r.at, reverse=True)
    return found


# --------------------------------------------------------------------------- --since

_SPAN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(m|min|mins|minutes?|h|hrs?|hours?|d|days?|w|weeks?)\s*", re.IGNORECASE)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: float, zone: dt.tzinfo) -> float:
    """``--since``: ``30m``, ``24h``, ``7d``, ``2w`` back from ``now``, or a date or date-time (in ``zone``
    unless it carries an offset); epoch seconds. ConfigError with an example for anything else."""
    match = _SPAN.fullmatch(text or "")
    if match:
        amount = float(match.group(1))
        seconds = amount * _UNIT_SECONDS[match.group(2)[0].lower()]
        return now - seconds
    try:
        when = dt.datetime.fromisoformat((text or "").strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--since {text!r}: write a span such as 30m, 24h or 7d, or a date such as 2026-11-20 "
                          "or 2026-11-20 09:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    since = when.timestamp()
    if since > now:
        raise ConfigError(f"--since {text!r}: is in the future; give a time before now")
    return since


# --------------------------------------------------------------------------- the replies command


@dataclass(frozen=True)
class RepliesRun:
    """What ``batchsms replies`` found and did: every reply (newest first) and what the opt-out file made of it."""

    replies: list[Reply]
    done: dict[str, str]  # reply_key → what was done (an optouts.Result's text, or "—")
    since: float
    until: float
    complete: bool = True  # False when the list call may hold more than was read (``gaps`` says where)
    gaps: tuple[str, ...] = ()

    @property
    def opt_outs(self) -> list[Reply]:
        return [r for r in self.replies if r.keyword == OPT_OUT]

    @property
    def opt_ins(self) -> list[Reply]:
        return [r for r in self.replies if r.keyword == OPT_IN]

    @property
    def near_misses(self) -> list[tuple[Reply, str]]:
        return [(r, word) for r in self.replies for word in [near_miss(r.text)] if word]

    def did(self, reply: Reply) -> str:
        return self.done.get(reply_key(reply), "—")


def reply_key(reply: Reply) -> str:
    """What identifies a reply in :attr:`RepliesRun.done`: its MessageSid, else number and time."""
    return reply.sid or f"{reply.number}@{reply.at:.0f}"


def as_message(item: object) -> object:
    """A list call's item as a Message mapping: :class:`batchsms.client.ListedMessage` (``sender`` is From)
    becomes one; a mapping is returned as it is."""
    if isinstance(item, Mapping):
        return item
    fields = getattr(item, "_asdict", None)
    if fields is None:
        return item
    data = dict(fields())
    return {"MessageSid": data.get("sid"), "From": data.get("sender"), "To": data.get("to"),
            "Text": data.get("text"), "Created": data.get("created"), "Direction": data.get("direction"),
            "Status": data.get("status")}


def collect_replies(client: Any, since: float, until: float, book: PhoneBook,
                    apply: Callable[[list[Reply]], dict[str, str]] | None, *, count: int = 1000) -> RepliesRun:
    """The replies the list call holds between ``since`` and ``until``, and what ``apply`` did with them.

    ``client`` is a :class:`batchsms.client.Client` (its ``list_messages`` pages by splitting the
    window). ``apply`` takes the replies oldest first (the order they happened) and returns
    what was done to each by :func:`reply_key`; the CLI passes
    :func:`batchsms.optouts.apply_replies` bound to the opt-out file, None only lists.
    """
    listing = client.list_messages(since, until, count)
    replies = replies_in((as_message(m) for m in listing.messages.values()), book, until)
    done = apply(sorted(replies, key=lambda r: r.at)) if replies and apply is not None else {}
    return RepliesRun(replies, done, since, until, listing.complete, tuple(listing.gaps))
