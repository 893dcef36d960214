"""The Fone Dynamics API client: auth, JSON bodies, error parsing, and the retry decision.

The API has no idempotency key, so a retry is only safe when the outcome proves
the message was not taken: the connection could not be opened, or the server
answered 429 or 503. Anything that may have been taken (a read timeout, a
connection dropped after the request went out, 500/502/504) is ``unknown`` and
is never retried silently. :func:`decide` holds that rule in one pure function.

Nothing the server says is trusted further than it proves: a 2xx counts as
taken only when its body is the API's ``{"Message": {"MessageSid": ...}}``, every
answer is read with a size cap (also after gzip/deflate decoding) and a deadline
for the whole answer, and every error text is trimmed and scrubbed of the
credentials before it can reach the results file, the journal or the terminal.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import ipaddress
import json
import random
import re
import socket
import ssl
import threading
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt

from .errors import ConfigError

try:  # urllib3's own hostname check (when it, not the ssl module, matches the name)
    from urllib3.util.ssl_match_hostname import CertificateError as _HostnameError
except ImportError:  # pragma: no cover - older urllib3
    _HostnameError = ssl.CertificateError  # type: ignore[misc,assignment]

DEFAULT_BASE_URL = "https://api.fonedynamics.com"
USER_AGENT = "batchsms/0.1 (+https://github.com/batchsms)"

MAX_BODY = 4 * 1024 * 1024  # an API answer is a few hundred bytes; anything this big is not the API
MAX_ERROR_TEXT = 300  # an error stored in the results file and the journal: enough to act on, no more
MAX_ERROR_CODE = 64
MAX_MESSAGE_SID = 200
MAX_SENDER_ID = 32  # E.164 is at most 16 characters, an alphanumeric sender 11
MAX_SEGMENTS = 255  # the most parts a concatenated SMS can have
_CHUNK = 64 * 1024
_WATCH_TICK = 0.1  # how late past its deadline an answer can be ended
_WATCH_LINGER = 5.0  # an idle watchdog thread ends after this long


class Decision(enum.Enum):
    """What to do with the outcome of one request."""

    ACCEPTED = "accepted"  # a 2xx holding the API's Message with a MessageSid: the API took the message
    RETRY = "retry"  # proven not taken: safe to send again
    UNKNOWN = "unknown"  # may have been taken: never resend without a person's say-so
    FAILED = "failed"  # refused for this row (4xx): the error says why
    AUTH = "auth"  # 401/403: every row would fail, stop the run
    FATAL = "fatal"  # the TLS handshake failed: nothing was taken and every row would fail, stop the run


STOP_DECISIONS = frozenset({Decision.AUTH, Decision.FATAL})  # end the whole run; the row is released
RETRY_STATUSES = frozenset({429, 503})
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})
# TLS errors that only say the peer went away (a transient fault, not a wrong host or certificate).
_TRANSIENT_SSL = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError, ssl.SSLWantReadError,
                  ssl.SSLWantWriteError)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it wraps (requests → urllib3 → socket/ssl), outermost first."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        if isinstance(cause, urllib3.exceptions.MaxRetryError) and cause.reason is not None:
            cause = cause.reason
            continue
        nested = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        cause = nested or cause.__cause__ or cause.__context__


def _not_connected(exc: BaseException) -> bool:
    """True when the request provably never reached the server (the connection was never opened)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    return any(isinstance(cause, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.NameResolutionError,
                                  ConnectionRefusedError)) for cause in _causes(exc))


def _tls_failure(exc: BaseException, connecting: bool) -> BaseException | None:
    """The TLS error that refused the server, if ``exc`` is one.

    A certificate that fails verification can only happen in the handshake; any
    other TLS error counts only when it happened while connecting (after that it
    may have cut off an answer to a request that was taken). A bare EOF is a
    transient fault, not a verdict on the server.
    """
    for cause in _causes(exc):
        if isinstance(cause, (ssl.SSLCertVerificationError, _HostnameError)):
            return cause
        if connecting and isinstance(cause, ssl.SSLError) and not isinstance(cause, _TRANSIENT_SSL):
            return cause
    return None


def decide(status: int | None, exc: BaseException | None = None, *, connecting: bool = False) -> Decision:
    """The fate of one request, from its HTTP status or the exception that ended it.

    ``connecting`` says the exception came while the connection was being opened
    (TCP connect or TLS handshake), before any byte of the request went out.
    """
    if exc is not None:
        if _tls_failure(exc, connecting) is not None:
            return Decision.FATAL
        return Decision.RETRY if connecting or _not_connected(exc) else Decision.UNKNOWN
    if status is None:
        return Decision.UNKNOWN
    if 200 <= status < 300:
        return Decision.ACCEPTED
    if status in (401, 403):
        return Decision.AUTH
    if status in RETRY_STATUSES:
        return Decision.RETRY
    if 400 <= status < 500:
        return Decision.FAILED
    return Decision.UNKNOWN  # 500, 502, 504 and any other answer we cannot read as "not taken"


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


# --- what the server says --------------------------------------------------------------------------------------

def _one_line(text: str, limit: int) -> str:
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
    return _one_line(text, limit)


def read_message(body: bytes, content_type: str = "") -> tuple[dict[str, Any] | None, str]:
    """The Message of a 2xx answer, or ``(None, what the answer was instead)``.

    Only ``{"Message": {"MessageSid": "<non-empty text>", ...}}`` is the API saying
    it took the message: a parked domain's HTML page, a proxy's empty 200 or a
    JSON answer from some other service must never mark a row sent.
    """
    if not body.strip():
        return None, "an empty body"
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested deeper than the parser goes
        html = "html" in content_type.lower() or body.lstrip()[:1] == b"<"
        return None, "an HTML page" if html else "not JSON"
    if isinstance(data, list):
        return None, "a JSON list"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    message = data.get("Message")
    if not isinstance(message, dict):
        return None, "no Message object"
    sid = message.get("MessageSid")
    if not isinstance(sid, str) or not sid.strip():
        return None, "no MessageSid"
    if len(sid) > MAX_MESSAGE_SID or not sid.isprintable():
        return None, "a MessageSid that is not a short plain text"
    return message, ""


def sanitised_fields(message: dict[str, Any]) -> tuple[str | None, int | None]:
    """From and NumSegments as values the journal and the results file can hold, else None.

    A list as From, or a 30-digit, negative or boolean NumSegments, would crash the
    SQLite journal or mislead the user; they are dropped instead.
    """
    sender = message.get("From")
    if not (isinstance(sender, str) and 0 < len(sender) <= MAX_SENDER_ID and sender.isprintable()):
        sender = None
    segments = message.get("NumSegments")
    if type(segments) is not int or not 1 <= segments <= MAX_SEGMENTS:  # type(): True is an int too
        segments = None
    return sender, segments


def parse_error(status: int, reason: str, body: bytes) -> tuple[str, str]:
    """ErrorCode and Message from ``{"ResponseStatus": {...}}``, or a clear text for any other body.

    The texts are not yet scrubbed or trimmed: :meth:`Client.scrub` does both.
    """
    reason = f"HTTP {status} {_one_line(reason or '', 60)}".strip()
    try:
        data = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        data = None
    if data is None:
        snippet = " ".join(body[:2000].decode("utf-8", "replace").split())[:120]
        return str(status), f"{reason} (not a JSON answer{': ' + snippet if snippet else ''})"
    state = data.get("ResponseStatus") if isinstance(data, dict) else None
    if isinstance(state, dict):
        code = state.get("ErrorCode")
        code = _one_line(str(code), MAX_ERROR_CODE) if isinstance(code, (str, int)) and str(code) else str(status)
        text = state.get("Message")
        return code, str(text) if isinstance(text, (str, int, float)) and str(text) else reason
    return str(status), reason


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (only the delta-seconds form; an HTTP date is treated as absent)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer


def backoff_seconds(attempt: int, retry_after: float | None, *, base: float = 0.5, cap: float = 30.0,
                    jitter: Callable[[], float] = random.random) -> float:
    """Wait before attempt ``attempt + 1``: Retry-After when given, else exponential with full jitter."""
    if retry_after is not None:
        return min(retry_after, cap * 4) + jitter() * 0.1
    return min(cap, base * 2 ** (attempt - 1)) * (0.5 + jitter() / 2)


# --- configuration checks --------------------------------------------------------------------------------------

_BASE_URL_WHERE = "the base URL (--base-url, BATCHSMS_BASE_URL or base_url in the config file)"


def _is_loopback(host: str) -> bool:
    """True for localhost and loopback IP addresses, by parsing: ``127.evil.com`` is a name, not 127/8."""
    host = host.rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def check_base_url(url: str, *, allow_insecure: bool) -> str:
    """The API base URL without its trailing slash; ConfigError (one line) when it cannot be right.

    Refused: a scheme other than http(s), no host, a user name or password in it (it
    would travel in every request and land in logs), a query or fragment (the paths
    appended to it would end up inside them), and ``http://`` to a host that is not
    this machine unless ``allow_insecure``: Basic auth in clear text hands the token
    to anyone on the path.
    """
    url = url.strip()
    if not url:
        raise ConfigError(f"{_BASE_URL_WHERE} is empty; leave it unset for {DEFAULT_BASE_URL}")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ConfigError(f"{_BASE_URL_WHERE} holds a space or a control character; give it as https://host")
    parts = urlsplit(url)
    if "@" in parts.netloc:  # never echo it: the part before @ is a password
        raise ConfigError(f"{_BASE_URL_WHERE} holds a user name or password (user:pass@host); remove it: the "
                          "credentials come from BATCHSMS_ACCOUNT_SID and BATCHSMS_AUTH_TOKEN")
    shown = url if len(url) <= 100 else url[:99] + "…"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"{_BASE_URL_WHERE} {shown!r} is not an http(s) URL; give it as https://host")
    if not parts.hostname:
        raise ConfigError(f"{_BASE_URL_WHERE} {shown!r} has no host; give it as https://host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigError(f"{_BASE_URL_WHERE} {shown!r} has a port that is not a number from 1 to 65535")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ConfigError(f"{_BASE_URL_WHERE} {shown!r} holds a query (?…) or fragment (#…); give only "
                          "https://host and an optional path")
    if scheme == "http" and not allow_insecure and not _is_loopback(parts.hostname):
        raise ConfigError(f"{_BASE_URL_WHERE} {shown!r} would send the auth token unencrypted to another "
                          "machine; use https:// (or --allow-insecure if the network is yours)")
    return url.rstrip("/")


_CONTROL_NAMES = {"\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\x7f": "DELETE", "\x00": "NUL"}


def _char_name(ch: str) -> str:
    return _CONTROL_NAMES.get(ch) or unicodedata.name(ch, "") or f"U+{ord(ch):04X}"


def _check_credential(value: str, where: str, what: str, *, forbidden: str = "") -> None:
    """ConfigError naming the first character that cannot go into a Basic header, never the value itself.

    A pasted en dash or non-breaking space would otherwise make every request raise
    UnicodeEncodeError, whose text (holding the whole token) ended up in the
    results file and the journal.
    """
    for position, ch in enumerate(value, 1):
        if not "!" <= ch <= "~" or ch in forbidden:
            raise ConfigError(f"{where} holds a character that cannot be sent (position {position}: "
                              f"{_char_name(ch)}); paste the {what} again")


# --- the whole-answer deadline ---------------------------------------------------------------------------------

class _Exchange:
    """One request's deadline and the connection it runs on, shared by its thread and the watchdog."""

    __slots__ = ("deadline", "read_timeout", "conn", "connecting", "expired")

    def __init__(self, deadline: float, read_timeout: float) -> None:
        self.deadline = deadline
        self.read_timeout = read_timeout
        self.conn: Any = None  # the urllib3 connection, once the pool handed one out
        self.connecting = False  # True while TCP connect / TLS handshake run: nothing has been sent
        self.expired = False

    def expire(self) -> None:
        """Mark the deadline passed and shut the socket, which wakes the thread blocked reading it."""
        self.expired = True
        sock = getattr(self.conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: its thread is not blocked on it
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, also under TLS


_CURRENT = threading.local()  # this thread's exchange in flight, for the connection hooks below


class _WatchedConnection:
    """Mixin for urllib3's connections: tells this thread's exchange which socket it runs on and when."""

    def connect(self) -> None:
        exchange: _Exchange | None = getattr(_CURRENT, "exchange", None)
        if exchange is None:
            super().connect()  # type: ignore[misc]
            return
        exchange.conn, exchange.connecting = self, True
        super().connect()  # type: ignore[misc]
        exchange.connecting = False

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        exchange: _Exchange | None = getattr(_CURRENT, "exchange", None)
        if exchange is not None:  # the request is out: from now on the answer has read_timeout in all
            exchange.conn = self
            exchange.deadline = min(exchange.deadline, time.monotonic() + exchange.read_timeout)
            if exchange.expired:
                exchange.expire()
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}


class _Watchdog:
    """One thread per Client that ends requests whose whole answer is overdue.

    urllib3's read timeout bounds each ``recv``, so a server dripping a byte a second
    holds a request forever. A timer per request would cost a thread start on the
    hot path; instead each request registers its exchange in a set (one uncontended
    lock), and this thread looks at the few in flight every ``_WATCH_TICK`` seconds,
    shutting down the socket of any that is past its deadline. It ends itself after
    ``_WATCH_LINGER`` idle seconds and starts again with the next request.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: set[_Exchange] = set()
        self._running = False

    def watch(self, exchange: _Exchange) -> None:
        with self._lock:
            self._active.add(exchange)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="batchsms-watchdog", daemon=True).start()

    def release(self, exchange: _Exchange) -> None:
        """Stop watching; under the lock, so a late watchdog never shuts a socket reused for the next request."""
        with self._lock:
            self._active.discard(exchange)

    def _run(self) -> None:
        idle = 0.0
        while True:
            time.sleep(_WATCH_TICK)
            now = time.monotonic()
            with self._lock:
                for exchange in self._active:
                    if not exchange.expired and now >= exchange.deadline:
                        exchange.expire()
                if self._active:
                    idle = 0.0
                    continue
                idle += _WATCH_TICK
                if idle >= _WATCH_LINGER:
                    self._running = False
                    return


# --- reading an answer -----------------------------------------------------------------------------------------

class _TooBig(Exception):
    """The answer passed MAX_BODY (on the wire or decoded)."""


class _Unsupported(Exception):
    """The answer came in a Content-Encoding we did not ask for and do not decode."""


class _Inflater:
    """A gzip or deflate decoder that never produces more than it is allowed (a gzip bomb stops at the cap).

    Decoding here rather than in urllib3 keeps the cap exact on every urllib3
    version: each step inflates at most the bytes still allowed. gzip may come as
    several concatenated members; "deflate" may be zlib-wrapped or raw, chosen on
    the first bytes as browsers do.
    """

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._engine: Any = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None

    def __call__(self, data: bytes, room: int) -> bytes:
        """The bytes ``data`` decodes to; _TooBig when they would be more than ``room``."""
        if self._engine is None:
            zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._engine = zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
        out = b""
        while True:
            engine = self._engine
            out += engine.decompress(data, room + 1 - len(out))
            if len(out) > room or engine.unconsumed_tail:
                raise _TooBig
            if not (self._gzip and engine.eof and engine.unused_data):
                return out
            data = engine.unused_data  # the next gzip member
            self._engine = zlib.decompressobj(16 + zlib.MAX_WBITS)


def _decoder(encoding: str) -> _Inflater | None:
    """The bounded decoder for a Content-Encoding, None for identity; _Unsupported for any other."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Inflater(gzip=encoding != "deflate")
    raise _Unsupported(encoding)


def _read_body(response: requests.Response) -> bytes:
    """The whole body, decoded, at most MAX_BODY bytes; else _TooBig, _Unsupported, zlib.error or a transport error."""
    raw = response.raw
    decode = _decoder(response.headers.get("Content-Encoding") or "")
    length = raw.length_remaining
    if decode is None and length is not None and length > MAX_BODY:
        raise _TooBig
    parts: list[bytes] = []
    wire = size = 0
    while True:
        chunk = raw.read(_CHUNK, decode_content=False)
        if not chunk:
            break
        wire += len(chunk)
        if wire > MAX_BODY:
            raise _TooBig
        if decode is not None:
            chunk = decode(chunk, MAX_BODY - size)
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooBig
        parts.append(chunk)
        if decode is None and raw.length_remaining == 0:  # the common case: one read, no second call for EOF
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _overdue(exchange: _Exchange) -> str:
    return f"timed out, the whole answer took longer than the read timeout ({exchange.read_timeout:g} s)"


# --- the client ------------------------------------------------------------------------------------------------

class Client:
    """Sends single messages to one property. Thread-safe: one ``requests.Session`` per thread."""

    def __init__(self, base_url: str, account_sid: str, auth_token: str, property_sid: str, *,
                 connect_timeout: float = 5.0, read_timeout: float = 30.0, max_attempts: int = 5,
                 sleep: Callable[[float], Any] | None = None, allow_insecure: bool = False) -> None:
        if not account_sid or not auth_token:
            raise ConfigError(
                "no credentials: set BATCHSMS_ACCOUNT_SID and BATCHSMS_AUTH_TOKEN (or the config file), "
                "or try the pipeline with --sandbox"
            )
        if not property_sid:
            raise ConfigError("no property: give --property-sid or set BATCHSMS_PROPERTY_SID")
        _check_credential(account_sid, "BATCHSMS_ACCOUNT_SID (or account_sid in the config file)", "account SID",
                          forbidden=":")
        _check_credential(auth_token, "BATCHSMS_AUTH_TOKEN (or auth_token in the config file)", "token")
        _check_credential(property_sid, "the property SID (--property-sid or BATCHSMS_PROPERTY_SID)",
                          "property SID", forbidden="/?#%\\")
        self.base_url = check_base_url(base_url, allow_insecure=allow_insecure)
        self.url = f"{self.base_url}/v2/Properties/{property_sid}/Messages"
        parts = urlsplit(self.base_url)
        self._host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        self._auth = (account_sid, auth_token)
        pair = f"{account_sid}:{auth_token}"
        secrets = {auth_token, pair, base64.b64encode(pair.encode()).decode(),
                   base64.b64encode(auth_token.encode()).decode(), quote(auth_token, safe=""), quote(pair, safe="")}
        self._secrets = sorted(secrets, key=len, reverse=True)
        self.timeout = (connect_timeout, read_timeout)
        self.max_attempts = max_attempts
        self._sleep = sleep
        self._local = threading.local()
        self._watchdog = _Watchdog()

    def __repr__(self) -> str:  # never show the token
        return f"Client({self.url!r}, account={self._auth[0]!r})"

    def scrub(self, text: str) -> str:
        """``text`` safe to store or print: no token, ``sid:token``, Base64 pair or Authorization value; ≤300 chars.

        Every error text this client produces goes through here. Use it too for any
        other text that could hold an exception from the request path, e.g. the
        sender's ``internal error: {exc!r}``.
        """
        return scrub_text(text, self._secrets)

    def stop_message(self, outcome: Outcome) -> str:
        """The one line that ends a run stopped by ``outcome`` (its decision is in STOP_DECISIONS)."""
        if outcome.decision is Decision.AUTH:
            return (f"{self.url}: the API refused the credentials ({outcome.error_text}); check "
                    "BATCHSMS_ACCOUNT_SID, BATCHSMS_AUTH_TOKEN and the property")
        return outcome.error_text

    def _sender(self) -> tuple[requests.PreparedRequest, requests.adapters.HTTPAdapter]:
        """This thread's prepared request template and transport adapter (its own connection pool).

        Sending a copy of one prepared request through the adapter skips what
        ``Session.post`` redoes per call (merging settings, re-encoding auth, cookie
        jars, redirect handling), which measured 2,560 against 1,630 requests/s here.
        The adapter's pools use the watched connections, for the whole-answer deadline.
        """
        local = self._local
        if getattr(local, "session", None) is None:
            session = requests.Session()
            session.trust_env = False  # a proxy from the environment must not see the token by surprise
            request = requests.Request("POST", self.url, auth=self._auth, data=b"{}", headers={
                "Accept": "application/json", "Content-Type": "application/json", "User-Agent": USER_AGENT,
                "Accept-Encoding": "gzip, deflate"})  # only what _decoder can bound
            adapter = session.get_adapter(self.url)
            assert isinstance(adapter, requests.adapters.HTTPAdapter)
            adapter.poolmanager.pool_classes_by_scheme = _POOL_CLASSES
            local.template = session.prepare_request(request)
            local.adapter = adapter
            local.session = session
        return local.template, local.adapter

    def post_once(self, body: dict) -> Outcome:
        """One POST, classified; never raises for network or HTTP trouble."""
        template, adapter = self._sender()
        data = json.dumps(body).encode("utf-8")
        request = requests.PreparedRequest()  # template.copy() would also copy a cookie jar per call
        request.method, request.url, request.hooks = template.method, template.url, template.hooks
        request.headers = template.headers.copy()
        request.headers["Content-Length"] = str(len(data))
        request.body = data
        connect_timeout, read_timeout = self.timeout
        exchange = _Exchange(time.monotonic() + connect_timeout + read_timeout, read_timeout)
        _CURRENT.exchange = exchange
        self._watchdog.watch(exchange)
        try:
            return self._exchange(adapter, request, exchange)
        finally:
            self._watchdog.release(exchange)
            _CURRENT.exchange = None

    def _exchange(self, adapter: requests.adapters.HTTPAdapter, request: requests.PreparedRequest,
                  exchange: _Exchange) -> Outcome:
        """Send, read the answer within the caps, and classify it."""
        try:
            response = adapter.send(request, timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 - whatever ended it, the outcome must say what is known
            return self._no_answer(exc, exchange)
        status = response.status_code
        decision = decide(status)
        content_type = response.headers.get("Content-Type") or ""
        problem = hint = ""  # what went wrong reading the body; a hint when it says the server is not the API
        try:
            body = _read_body(response)
        except _TooBig:
            body, problem = b"", f"the answer was larger than {MAX_BODY // 2**20} MB"
            hint = "; check --base-url"
        except _Unsupported:
            encoding = _one_line(response.headers.get("Content-Encoding") or "", 40)
            body, problem = b"", f"the answer came in {encoding!r} encoding, which was not asked for"
            hint = "; check --base-url"
        except zlib.error:
            body, problem = b"", "the compressed answer cannot be decoded"
            hint = "; check --base-url"
        except Exception as exc:  # noqa: BLE001 - a reset, a timeout, a shut socket: the answer is incomplete
            body, problem = b"", f"the answer broke off ({describe_exception(exc)})"
        if exchange.expired:  # our own shutdown can look like a short answer (EOF ends the headers)
            problem, hint = _overdue(exchange), ""
        if problem:
            response.close()  # the rest of the body is unread: this connection cannot be reused
        if decision is Decision.ACCEPTED:
            if problem:
                return Outcome(Decision.UNKNOWN, status, error=self.scrub(
                    f"the server answered {status} but {problem}; the message may have been taken{hint}"))
            message, what = read_message(body, content_type)
            if message is None:
                return Outcome(Decision.UNKNOWN, status, error=self.scrub(
                    f"the server answered {status} but not as the Fone Dynamics API does ({what}); "
                    "check --base-url"))
            sender_id, segments = sanitised_fields(message)
            return Outcome(decision, status, message, message_sid=message["MessageSid"], sender_id=sender_id,
                           num_segments=segments)
        code, text = parse_error(status, response.reason or "", body)
        if problem:
            text = f"{text} ({problem})"
        if 300 <= status < 400:
            text += "; check --base-url"
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return Outcome(decision, status, error_code=_one_line(self.scrub(code), MAX_ERROR_CODE),
                       error=self.scrub(text), retry_after=retry_after)

    def _no_answer(self, exc: BaseException, exchange: _Exchange) -> Outcome:
        """The outcome of a request that got no status line."""
        connecting = exchange.connecting
        if exchange.expired:  # the watchdog shut the socket: whatever error that caused is not the cause
            if connecting:
                return Outcome(Decision.RETRY, error=self.scrub(
                    f"could not connect: {self._host} took longer than {sum(self.timeout):g} s to connect"))
            return Outcome(Decision.UNKNOWN, error=self.scrub(f"no answer: {_overdue(exchange)}"))
        decision = decide(None, exc, connecting=connecting)
        if decision is Decision.FATAL:
            return Outcome(decision, error=self.scrub(self._tls_text(exc, connecting)))
        kind = "could not connect" if decision is Decision.RETRY else "no answer"
        return Outcome(decision, error=self.scrub(f"{kind}: {describe_exception(exc)}"))

    def _tls_text(self, exc: BaseException, connecting: bool) -> str:
        failure = _tls_failure(exc, connecting)
        if isinstance(failure, ssl.SSLCertVerificationError):
            detail = f"certificate verify failed: {failure.verify_message or failure.reason or 'refused'}"
        elif isinstance(failure, _HostnameError):
            detail = f"certificate verify failed: {failure}"
        elif isinstance(failure, ssl.SSLError):
            detail = failure.reason.replace("_", " ").lower() if failure.reason else str(failure)
        else:
            detail = type(exc).__name__
        return f"TLS handshake with {self._host} failed: {detail}; check --base-url or the machine's CA certificates"

    def send(self, body: dict, stop: threading.Event | None = None) -> Outcome:
        """POST with retries on outcomes that prove the message was not taken.

        When ``stop`` is set the retries end early and the outcome stays RETRY: the
        message was never taken, so the caller may release the row for a later run.
        """
        stopping = stop.is_set if stop is not None else (lambda: False)
        sleep = self._sleep or (stop.wait if stop is not None else time.sleep)
        attempts = 0

        def attempt() -> Outcome:
            nonlocal attempts
            attempts += 1
            return self.post_once(body)

        outcome = attempt()
        if outcome.decision is Decision.RETRY and self.max_attempts > 1 and not stopping():
            # The rare case: tenacity drives the retries (the first answer is replayed to it, so the
            # common case of one attempt costs no retry machinery).
            replay = [outcome]

            def wait(state: RetryCallState) -> float:
                return backoff_seconds(state.attempt_number, state.outcome.result().retry_after)

            retrying = Retrying(
                stop=stop_after_attempt(self.max_attempts), wait=wait, sleep=sleep,
                retry=retry_if_result(lambda o: o.decision is Decision.RETRY and not stopping()),
                retry_error_callback=lambda state: state.outcome.result(),
            )
            outcome = retrying(lambda: replay.pop() if replay else attempt())
        outcome.attempts = attempts
        if outcome.decision is Decision.RETRY and not stopping():  # out of attempts, provably never taken
            outcome.decision = Decision.FAILED
            outcome.error = f"{outcome.error or 'not accepted'} (gave up after {attempts} attempts; never taken)"
        return outcome

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()


def describe_exception(exc: BaseException) -> str:
    """A short cause for a network failure: a fixed phrase or a type name, never the exception's text.

    Exception texts can carry URLs (with credentials, if one ever held them) and
    header values; none of that may reach a file.
    """
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "timed out waiting for the answer"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "timed out connecting"
    text = str(exc)
    for marker in ("Connection refused", "Connection reset", "RemoteDisconnected", "Connection aborted",
                   "Name or service not known", "Temporary failure in name resolution", "BadStatusLine",
                   "IncompleteRead", "Broken pipe"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
