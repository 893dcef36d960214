"""What the law asks of a marketing text: a working way to opt out, from a sender that can hear it.

Australia's Spam Act 2003, the UK's PECR, the EU's ePrivacy rules and the US TCPA all
ask a commercial message to carry a functional unsubscribe. With ``--marketing`` (or
``marketing = true`` in the config) a text without opt-out wording or a link is an
error. And "Reply STOP" sent from an alphanumeric sender ID cannot work — nobody can
reply to a name — so that is a warning on every run and an error on a marketing one.
"""

from __future__ import annotations

import re

from . import codes as C
from . import fields as F
from .report import Issue, RowResult

#: Opt-out wording: STOP (as a keyword), opt out / opt-out / optout, unsubscribe.
OPT_OUT_WORDS = re.compile(r"\b(?:stop|opt[\s-]?out|unsubscribe|unsub)\b", re.IGNORECASE)
#: A link the person can follow to opt out (a web address, with or without its scheme).
LINK = re.compile(r"(?:https?://|www\.)\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/\S*", re.IGNORECASE)
#: "Reply STOP", "text STOP to …", "SMS STOP": an opt-out that needs the recipient to reply.
REPLY_STOP = re.compile(r"\b(?:reply|text|txt|sms|send|respond)\b\W{0,3}(?:with\s+|the\s+word\s+)?\W?"
                        r"(?:stop|opt[\s-]?out|unsubscribe|unsub)\b", re.IGNORECASE)


def has_opt_out(text: str) -> bool:
    """True when the text tells the person how to stop: opt-out wording or a link."""
    return bool(OPT_OUT_WORDS.search(text) or LINK.search(text))


def alphanumeric(sender: object) -> bool:
    """A sender ID with letters (``CityDental``), which cannot receive replies; blank (a leased number)
    and numbers can."""
    return isinstance(sender, str) and bool(sender) and not sender.startswith("+")


def check_marketing(results: list[RowResult], *, marketing: bool, sender_label: str = "From",
                    text_label: str = "Text") -> None:
    """Add the marketing problems to the rows about to be sent (valid rows only: the others do not go)."""
    valid, text_field, from_field = C.Status.VALID, F.TEXT, F.FROM
    for r in results:
        if r.status != valid or r.body is None:
            continue
        text = r.body.get(text_field, "")
        sender = r.body.get(from_field)
        failed = False
        if alphanumeric(sender):
            asked = REPLY_STOP.search(text)
            if asked is not None:
                severity = C.ERROR if marketing else C.WARNING
                failed = marketing
                r.issues.append(Issue(r.row, sender_label, str(sender), severity, C.OPT_OUT_UNREACHABLE.code, (
                    f"the text asks for a reply ({asked.group(0)!r}) but comes from the sender ID {sender!r}, "
                    "which cannot receive replies: send from a number (or leave From blank for a leased one), "
                    "or give a link to opt out")))
        if marketing and not has_opt_out(text):
            failed = True
            r.issues.append(Issue(r.row, text_label, text, *C.NO_OPT_OUT.problem(
                "a marketing text must say how to opt out (--marketing): add e.g. 'Reply STOP to opt out' "
                "(from a number) or an unsubscribe link")))
        if failed:
            r.status, r.body = C.Status.INVALID, None
