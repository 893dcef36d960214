"""Make a text safe to store: no credential, one printable line, a bounded length.

Error texts come from places nobody controls (a server quoting the request back, an
exception's message holding a URL or a header), and they end up in the results file,
the journal and the terminal. Everything the client stores or prints goes through
:func:`scrub_text` first; this module does only that.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

MAX_ERROR_TEXT = 300  # an error stored in the results file and the journal: enough to act on, no more


def one_line(text: str, limit: int) -> str:
    """``text`` as one printable line of at most ``limit`` characters.

    A hostile body may hold newlines (breaking a CSV row or a log line) or terminal
    escape sequences (rewriting the user's screen), and may be megabytes long.
    """
    if len(text) > limit * 4:
        text = text[:limit * 4]
    text = " ".join(text.split())
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


_AUTH_HEADER = re.compile(  # an Authorization header's value: its scheme word, if any, and the credential
    r"(?i)(\b(?:proxy-)?authorization\b['\"]?\s*[:=]\s*['\"]?)(?:[a-z]+[ \t]+)?[^\s'\",;}]+")
_BASIC = re.compile(r"\b(Basic|BASIC|basic)(\s+)([A-Za-z0-9+/]{4,}={0,2})")
_BEARER = re.compile(r"\b(Bearer|BEARER|bearer)(\s+)([A-Za-z0-9+/=._~-]{16,})")


def _basic_credentials(match: re.Match[str]) -> str:
    """A ``Basic <base64>`` whose Base64 decodes to ``user:password``, redacted; prose such as "Basic auth" kept."""
    try:
        decoded = base64.b64decode(match.group(3), validate=True)
    except ValueError:
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}[redacted]" if b":" in decoded else match.group(0)


def scrub_text(text: str, secrets: Iterable[str] = (), *, limit: int = MAX_ERROR_TEXT) -> str:
    """``text`` made safe to store: the secrets and any credential-looking value redacted, one line, trimmed.

    Redaction runs before the final trim, and a long text is first cut with room
    for the longest secret after the cut, then any tail that could be the start of
    a secret is dropped: no half of a secret survives the trimming.
    """
    secrets = sorted((s for s in secrets if s), key=len, reverse=True)  # a pair before the token inside it
    longest = max((len(s) for s in secrets), default=0)
    cut = limit * 8 + longest
    truncated = len(text) > cut
    if truncated:
        text = text[:cut]
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    if truncated:
        for secret in secrets:
            for size in range(min(len(secret) - 1, len(text)), 0, -1):
                if text.endswith(secret[:size]):
                    text = text[:-size]
                    break
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + "[redacted]", text)
    text = _BASIC.sub(_basic_credentials, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    return one_line(text, limit)
