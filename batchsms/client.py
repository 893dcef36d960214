"""The Fone Dynamics API client: auth, JSON bodies, error parsing, and the retry decision.

The API has no idempotency key, so a retry is only safe when the outcome proves
the message was not taken: the connection could not be opened, or the server
answered 429 or 503. Anything that may have been taken (a read timeout, a
connection dropped after the request went out, 500/502/504) is ``unknown`` and
is never retried silently. :func:`decide` holds that rule in one pure function.

Retries are a plain loop in :meth:`Client.send` around two pure functions,
:func:`should_retry` and :func:`backoff_seconds`, as in stripe-python: the policy
reads in ten lines. tenacity, which drove it before, made no difference to speed
(one attempt, the common path: under 1 µs a call either way with the POST stubbed
out, next to ~400 µs for the POST) but needed the first answer replayed to it, and
let one more POST out after a Ctrl-C during its sleep.

Nothing the server says is trusted further than it proves: a 2xx counts as
taken only when its body is the API's ``{"Message": {"MessageSid": ...}}``, every
answer is read with a size cap and a deadline for the whole answer
(:mod:`batchsms.transport`), and every error text is trimmed and scrubbed of the
credentials (:mod:`batchsms.scrub`) before it can reach the results file, the
journal or the terminal. The base URL and the credentials are checked before the
first request (:mod:`batchsms.endpoint`).
"""

from __future__ import annotations

import base64
import json
import math
import random
import re
import ssl
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode, urlsplit

import requests
import requests.adapters
import urllib3

from .endpoint import DEFAULT_BASE_URL, check_base_url, check_credentials
from .errors import BatchSmsError
from .outcome import STOP_DECISIONS, BatchOutcome, Decision, Outcome, encode_batch, encode_body, join_batch
from .scrub import MAX_ERROR_TEXT, one_line, scrub_text
from .transport import (
    ACCEPT_ENCODING,
    MAX_BODY,
    BodyTooBig,
    Exchange,
    UnsupportedEncoding,
    Watchdog,
    read_body,
    use_watched_connections,
)

__all__ = [  # the names other modules import from here, scrub_text and MAX_ERROR_TEXT re-exported
    "DEFAULT_BASE_URL", "MAX_ERROR_TEXT", "STOP_DECISIONS", "BatchOutcome", "Client", "Decision", "ListError",
    "ListedMessage", "Listing", "Lookup", "Outcome", "backoff_seconds", "encode_batch", "join_batch", "read_batch",
    "read_batch_item", "says_too_large",
    "check_base_url", "decide", "describe_exception", "encode_body", "parse_error", "parse_retry_after",
    "parse_listing", "read_message", "sanitised_fields", "scrub_text", "should_retry", "should_retry_get",
]

try:  # urllib3's own hostname check (when it, not the ssl module, matches the name)
    from urllib3.util.ssl_match_hostname import CertificateError as _HostnameError
except ImportError:  # pragma: no cover - older urllib3
    _HostnameError = ssl.CertificateError  # type: ignore[misc,assignment]

USER_AGENT = "batchsms/0.1 (+https://github.com/batchsms)"

MAX_ERROR_CODE = 64
MAX_MESSAGE_SID = 200
MAX_SENDER_ID = 32  # E.164 is at most 16 characters, an alphanumeric sender 11
MAX_SEGMENTS = 255  # the most parts a concatenated SMS can have


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


@dataclass(slots=True)
class _Answer:
    """An answer with a status line, its body read within the caps (``problem`` says what cut it short)."""

    status: int
    reason: str
    body: bytes
    content_type: str
    problem: str
    hint: str
    retry_after: float | None


@dataclass
class Lookup:
    """The result of one GET (after its retries): the parsed JSON of a 2xx answer, or why there is none.

    ``transient`` says the trouble may pass (no connection, a timeout or reset, 429, a 5xx,
    an answer that broke off): asking again is safe, as a GET changes nothing.
    """

    decision: Decision  # ACCEPTED: ``data`` holds the answer; FAILED: a 4xx or not the API; AUTH, FATAL; UNKNOWN
    status: int | None = None
    data: Any = None
    error: str = ""
    attempts: int = 1
    retry_after: float | None = None
    transient: bool = False

    @property
    def ok(self) -> bool:
        return self.decision is Decision.ACCEPTED

    @property
    def stops_run(self) -> bool:
        """True when every further request would fail the same way (credentials refused, TLS failed)."""
        return self.decision in STOP_DECISIONS


def should_retry_get(lookup: Lookup, attempts: int, max_attempts: int) -> bool:
    """True when a GET should be asked again: the trouble may pass and fewer than ``max_attempts`` were made.

    Unlike a send, a GET is safe to repeat whatever happened to it: no connection, a
    timeout or a reset, 429 and 503 (with Retry-After), any other 5xx, an answer that broke
    off. A 4xx, refused credentials, a TLS failure or a 2xx that is not the API's answer
    would only come back the same.
    """
    return lookup.transient and attempts < max_attempts


class ListError(BatchSmsError):
    """The message list call failed or answered in a shape batchsms does not know."""


class ListedMessage(NamedTuple):
    """One Message resource of the list call, its fields read defensively (None when absent or not usable)."""

    sid: str
    to: str | None
    text: str | None
    created: float | None
    direction: str | None
    status: str | None
    sender: str | None
    segments: int | None


@dataclass
class Listing:
    """What the list call holds for a date window: messages by MessageSid, and whether that is all of them.

    ``complete`` is False when some part of the window may hold more than was read (a page
    full even after splitting the window down to one second, the call budget spent, items
    that could not be read); ``gaps`` says why, in plain English.
    """

    messages: dict[str, ListedMessage] = field(default_factory=dict)
    complete: bool = True
    gaps: list[str] = field(default_factory=list)
    calls: int = 0


def should_retry(outcome: Outcome, attempts: int, max_attempts: int) -> bool:
    """True when ``outcome`` proves the message was not taken and fewer than ``max_attempts`` were made.

    Only RETRY qualifies: an UNKNOWN outcome may have been taken (a resend could text
    the person twice), and FAILED, AUTH and FATAL would only fail again.
    """
    return outcome.decision is Decision.RETRY and attempts < max_attempts


def backoff_seconds(attempt: int, retry_after: float | None, *, base: float = 0.5, cap: float = 30.0,
                    jitter: Callable[[], float] = random.random) -> float:
    """The wait after attempt number ``attempt`` (1 for the first) before the next one.

    With a Retry-After, that many seconds (at most 4 × ``cap``, two minutes) plus up
    to 0.1 s, so workers told the same second do not all come back at once. Without
    one, exponential with *equal* jitter: uniform between half and all of
    ``min(cap, base * 2 ** (attempt - 1))``. Not full jitter (0 to the step): a
    server that just said 429 answers a retry sent at once with another 429.
    ``jitter`` returns a number in [0, 1); tests pass a constant.
    """
    if retry_after is not None:
        return min(retry_after, cap * 4) + jitter() * 0.1
    return min(cap, base * 2 ** (attempt - 1)) * (0.5 + jitter() / 2)


# --- what the server says --------------------------------------------------------------------------------------

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


def read_batch(body: bytes, content_type: str, count: int) -> tuple[list[Any] | None, str]:
    """The items of a 2xx BatchMessages answer, or ``(None, what the answer was instead)``.

    Only a JSON list with exactly one item per message sent (``count``) can be mapped back
    to the rows: a list one item short cannot say which message it left out, so any other
    answer leaves the whole batch unknown.
    """
    if not body.strip():
        return None, "an empty body"
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        html = "html" in content_type.lower() or body.lstrip()[:1] == b"<"
        return None, "an HTML page" if html else "not JSON"
    if not isinstance(data, list):
        return None, "a JSON object, not a list" if isinstance(data, dict) else "not a JSON list"
    if len(data) != count:
        items = f"{len(data):,} item{'s' if len(data) != 1 else ''}"
        return None, f"{items} for {count:,} message{'s' if count != 1 else ''}"
    return data, ""


def read_batch_item(item: Any, scrub: Callable[[str], str] = lambda text: text) -> Outcome:
    """One item of a BatchMessages answer as the outcome of its message.

    An item succeeded when its MessageSid is not null: it must then be a short plain text,
    and From and NumSegments are kept only when :func:`sanitised_fields` can hold them.
    An item with a null MessageSid and an ErrorCode failed (the API refused that message,
    it was not taken). Anything else (not an object, neither field, a MessageSid that is
    no text) cannot be read either way: UNKNOWN, as a message that may have been taken.
    """
    if not isinstance(item, dict):
        return Outcome(Decision.UNKNOWN, error="the batch answer's item for this message is not an object")
    sid = item.get("MessageSid")
    if sid is not None:
        if not isinstance(sid, str) or not sid.strip() or len(sid) > MAX_MESSAGE_SID or not sid.isprintable():
            return Outcome(Decision.UNKNOWN, error="the batch answer's item for this message has a MessageSid "
                                                   "that is not a short plain text")
        sender_id, segments = sanitised_fields(item)
        return Outcome(Decision.ACCEPTED, message=item, message_sid=sid, sender_id=sender_id, num_segments=segments)
    code = item.get("ErrorCode")
    if isinstance(code, (str, int)) and not isinstance(code, bool) and str(code).strip():
        text = item.get("Message")
        text = str(text) if isinstance(text, (str, int, float)) and not isinstance(text, bool) else ""
        return Outcome(Decision.FAILED, error_code=one_line(scrub(str(code)), MAX_ERROR_CODE),
                       error=scrub(text) or "the API refused this message of the batch")
    return Outcome(Decision.UNKNOWN, error="the batch answer's item for this message holds neither a MessageSid "
                                          "nor an ErrorCode")


_SIZE_WORDS = re.compile(r"too ?(large|big|many)|exceed|maximum|at most|limit")
_BATCH_WORDS = re.compile(r"batch|messages|items|size|payload|entity|body")


def says_too_large(status: int, code: str, text: str) -> bool:
    """True when a 4xx answer to a BatchMessages request says the batch is too large.

    413 always does. A 400 does only when its ErrorCode or Message names both a limit
    (too large, too many, exceeded, maximum, at most, limit) and the batch (batch,
    messages, items, size, payload, body): a 400 about one field of one message
    (``LeaseLimitExceeded`` names leases, not the batch) is not a size limit.
    """
    if status == 413:
        return True
    if status != 400:
        return False
    said = f"{code} {text}".lower()
    return bool(_SIZE_WORDS.search(said) and _BATCH_WORDS.search(said))


def parse_error(status: int, reason: str, body: bytes) -> tuple[str, str]:
    """ErrorCode and Message from ``{"ResponseStatus": {...}}``, or a clear text for any other body.

    The texts are not yet scrubbed or trimmed: :meth:`Client.scrub` does both.
    """
    reason = f"HTTP {status} {one_line(reason or '', 60)}".strip()
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
        code = one_line(str(code), MAX_ERROR_CODE) if isinstance(code, (str, int)) and str(code) else str(status)
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


def _field(item: dict[str, Any], name: str) -> Any:
    """``item[name]``, matching the key's case loosely (the list call's shape is known only second-hand)."""
    if name in item:
        return item[name]
    lower = name.lower()
    return next((v for k, v in item.items() if isinstance(k, str) and k.lower() == lower), None)


def _text(value: Any, limit: int = 5000) -> str | None:
    return value if isinstance(value, str) and len(value) <= limit else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def parse_listing(data: Any, where: str) -> tuple[list[ListedMessage], int]:
    """The messages in a list call's answer, and how many items were not readable as messages.

    The answer must be a JSON object with a list under ``Messages`` (any case); anything
    else raises :class:`ListError` saying what came instead. Items are read field by field:
    an item that is not an object or has no MessageSid is counted, not guessed at.
    """
    if not isinstance(data, dict):
        kind = "a JSON list" if isinstance(data, list) else f"a JSON {type(data).__name__}"
        raise ListError(f"{where}: the message list answered {kind}, not an object with a Messages list; "
                        "the list call is known only from third-party use, so batchsms cannot read it here")
    items = _field(data, "Messages")
    if not isinstance(items, list):
        keys = ", ".join(sorted(str(k)[:40] for k in data)[:8]) or "no keys"
        raise ListError(f"{where}: the message list answered an object without a Messages list ({keys}); "
                        "the list call is known only from third-party use, so batchsms cannot read it here")
    messages: list[ListedMessage] = []
    unreadable = 0
    for item in items:
        sid = _field(item, "MessageSid") if isinstance(item, dict) else None
        if not isinstance(sid, str) or not sid.strip() or len(sid) > MAX_MESSAGE_SID or not sid.isprintable():
            unreadable += 1
            continue
        segments = _field(item, "NumSegments")
        messages.append(ListedMessage(
            sid, _text(_field(item, "To"), 64), _text(_field(item, "Text"), 100_000), _number(_field(item, "Created")),
            _text(_field(item, "Direction"), 32), _text(_field(item, "Status"), 32),
            _text(_field(item, "From"), MAX_SENDER_ID),
            segments if type(segments) is int and 1 <= segments <= MAX_SEGMENTS else None))
    return messages, unreadable


# --- the client ------------------------------------------------------------------------------------------------

def _overdue(exchange: Exchange) -> str:
    return f"timed out, the whole answer took longer than the read timeout ({exchange.read_timeout:g} s)"


class Client:
    """Sends single messages to one property. Thread-safe: one ``requests.Session`` per thread.

    ``sleep`` and ``jitter`` are for tests: ``sleep(seconds)`` replaces the backoff's
    wait (which is otherwise ``stop.wait``, so Ctrl-C ends it), ``jitter()`` the
    random number in [0, 1) that spreads the waits (see :func:`backoff_seconds`).
    """

    def __init__(self, base_url: str, account_sid: str, auth_token: str, property_sid: str, *,
                 connect_timeout: float = 5.0, read_timeout: float = 30.0, max_attempts: int = 5,
                 sleep: Callable[[float], Any] | None = None, jitter: Callable[[], float] = random.random,
                 allow_insecure: bool = False) -> None:
        check_credentials(account_sid, auth_token, property_sid)
        self.base_url = check_base_url(base_url, allow_insecure=allow_insecure)
        self.property_sid = property_sid
        self.url = f"{self.base_url}/v2/Properties/{property_sid}/Messages"
        self.batch_url = f"{self.base_url}/v2/Properties/{property_sid}/BatchMessages"
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
        self._jitter = jitter
        self._local = threading.local()
        self._watchdog = Watchdog()

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
                "Accept-Encoding": ACCEPT_ENCODING})
            adapter = session.get_adapter(self.url)
            assert isinstance(adapter, requests.adapters.HTTPAdapter)
            use_watched_connections(adapter)
            local.template = session.prepare_request(request)
            local.adapter = adapter
            local.session = session
        return local.template, local.adapter

    def post_once(self, body: dict) -> Outcome:
        """One POST, classified; never raises for network or HTTP trouble."""
        template, adapter = self._sender()
        data = encode_body(body)
        request = requests.PreparedRequest()  # template.copy() would also copy a cookie jar per call
        request.method, request.url, request.hooks = template.method, template.url, template.hooks
        request.headers = template.headers.copy()
        request.headers["Content-Length"] = str(len(data))
        request.body = data
        with self._watchdog.exchange(*self.timeout) as exchange:
            return self._exchange(adapter, request, exchange)

    def _read(self, adapter: requests.adapters.HTTPAdapter, request: requests.PreparedRequest,
              exchange: Exchange) -> _Answer | Outcome:
        """Send and read the answer within the caps; an Outcome when no status line came."""
        try:
            response = adapter.send(request, timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 - whatever ended it, the outcome must say what is known
            return self._no_answer(exc, exchange)
        content_type = response.headers.get("Content-Type") or ""
        problem = hint = ""  # what went wrong reading the body; a hint when it says the server is not the API
        try:
            body = read_body(response)
        except BodyTooBig:
            body, problem = b"", f"the answer was larger than {MAX_BODY // 2**20} MB"
            hint = "; check --base-url"
        except UnsupportedEncoding:
            encoding = one_line(response.headers.get("Content-Encoding") or "", 40)
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
        return _Answer(response.status_code, response.reason or "", body, content_type, problem, hint,
                       parse_retry_after(response.headers.get("Retry-After")))

    def _exchange(self, adapter: requests.adapters.HTTPAdapter, request: requests.PreparedRequest,
                  exchange: Exchange) -> Outcome:
        """Send, read the answer within the caps, and classify it."""
        answer = self._read(adapter, request, exchange)
        if isinstance(answer, Outcome):
            return answer
        status, body, content_type, problem, hint = (answer.status, answer.body, answer.content_type,
                                                     answer.problem, answer.hint)
        decision = decide(status)
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
        code, text = self._error_of(answer)
        return Outcome(decision, status, error_code=code, error=text, retry_after=answer.retry_after)

    def _error_of(self, answer: _Answer) -> tuple[str, str]:
        """ErrorCode and text of a non-2xx answer, scrubbed and trimmed."""
        code, text = parse_error(answer.status, answer.reason, answer.body)
        if answer.problem:
            text = f"{text} ({answer.problem})"
        if 300 <= answer.status < 400:
            text += "; check --base-url"
        return one_line(self.scrub(code), MAX_ERROR_CODE), self.scrub(text)

    def _no_answer(self, exc: BaseException, exchange: Exchange) -> Outcome:
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
        """POST ``body``, again while the outcome proves it was not taken (:func:`should_retry`).

        ``stop`` (the sender's Ctrl-C) ends a backoff at once and no further POST
        goes out: the outcome stays RETRY, so the caller releases the row, never
        taken, for a later run. Out of attempts, a RETRY becomes FAILED.
        """
        return self._retrying(lambda: self.post_once(body), stop)

    # ------------------------------------------------------------------ sending: BatchMessages
    def _batch_sender(self) -> tuple[requests.PreparedRequest, requests.adapters.HTTPAdapter]:
        """This thread's prepared BatchMessages request and its adapter (the sends' session and pool)."""
        local = self._local
        _, adapter = self._sender()
        if getattr(local, "batch_template", None) is None:
            request = requests.Request("POST", self.batch_url, auth=self._auth, data=b"{}", headers={
                "Accept": "application/json", "Content-Type": "application/json", "User-Agent": USER_AGENT,
                "Accept-Encoding": ACCEPT_ENCODING})
            local.batch_template = local.session.prepare_request(request)
        return local.batch_template, adapter

    def post_batch_once(self, bodies: list[dict], encoded: list[bytes] | None = None) -> BatchOutcome:
        """One BatchMessages POST of ``bodies``, classified; never raises for network or HTTP trouble.

        The whole request decides for every message when there is no answer (RETRY when
        it provably never went out, else UNKNOWN), a non-2xx status (as :func:`decide`
        says, with ``too_large`` when :func:`says_too_large`), or a 2xx that is not one
        item per message (UNKNOWN: they may have been taken). Otherwise each item decides
        for its own message (:func:`read_batch_item`). ``encoded``: the bodies as
        :func:`encode_body` wrote them (for the journal), sent as they are.
        """
        if encoded is not None and len(encoded) != len(bodies):
            raise ValueError(f"post_batch_once: {len(encoded)} encoded bodies for {len(bodies)} messages")
        template, adapter = self._batch_sender()
        data = encode_batch(bodies) if encoded is None else join_batch(encoded)
        request = requests.PreparedRequest()
        request.method, request.url, request.hooks = template.method, template.url, template.hooks
        request.headers = template.headers.copy()
        request.headers["Content-Length"] = str(len(data))
        request.body = data
        with self._watchdog.exchange(*self.timeout) as exchange:
            answer = self._read(adapter, request, exchange)
        if isinstance(answer, Outcome):  # no status line
            return BatchOutcome(answer.decision, error=answer.error)
        status = answer.status
        decision = decide(status)
        if decision is Decision.ACCEPTED:
            if answer.problem:
                return BatchOutcome(Decision.UNKNOWN, status, error=self.scrub(
                    f"the server answered {status} but {answer.problem}; the batch may have been taken{answer.hint}"))
            items, what = read_batch(answer.body, answer.content_type, len(bodies))
            if items is None:
                return BatchOutcome(Decision.UNKNOWN, status, error=self.scrub(
                    f"the server answered {status} to the batch but not as the Fone Dynamics API does ({what}); "
                    "the batch may have been taken; check --base-url"))
            outcomes = [read_batch_item(item, self.scrub) for item in items]
            _unknown_if_shared(outcomes)
            for outcome in outcomes:
                outcome.status = status
            return BatchOutcome(decision, status, items=outcomes)
        code, text = self._error_of(answer)
        return BatchOutcome(decision, status, error_code=code, error=text, retry_after=answer.retry_after,
                            too_large=decision is Decision.FAILED and says_too_large(status, code, text))

    def send_batch(self, bodies: list[dict], stop: threading.Event | None = None, *,
                   encoded: list[bytes] | None = None) -> BatchOutcome:
        """POST ``bodies`` as one BatchMessages request, retried whole as :meth:`send` retries one message.

        Only an answer that proves nothing was taken (no connection, 429, 503) is sent
        again, and then the whole batch: the items of an answer are final.
        """
        outcome = self._retrying(lambda: self.post_batch_once(bodies, encoded), stop)
        for item in outcome.items:
            item.attempts = outcome.attempts
        return outcome

    def _retrying(self, once: Callable[[], Outcome], stop: threading.Event | None) -> Any:
        """Run ``once`` again while :func:`should_retry` says so, with :func:`backoff_seconds` between."""
        stop = stop if stop is not None else threading.Event()
        attempts = 0
        while True:
            attempts += 1
            outcome = once()
            if not should_retry(outcome, attempts, self.max_attempts):
                break
            self._pause(backoff_seconds(attempts, outcome.retry_after, jitter=self._jitter), stop)
            if stop.is_set():  # Ctrl-C before or during the backoff: nothing more goes out
                break
        outcome.attempts = attempts
        if outcome.decision is Decision.RETRY and not stop.is_set():
            outcome.decision = Decision.FAILED
            tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
            outcome.error = f"{outcome.error or 'not accepted'} (gave up after {tries}; never taken)"
        return outcome

    # ------------------------------------------------------------------ reading: GET
    def _getter(self) -> tuple[requests.PreparedRequest, requests.adapters.HTTPAdapter]:
        """This thread's prepared GET (auth and headers; the URL is set per call) and its adapter."""
        local = self._local
        _, adapter = self._sender()  # the same session and connection pool as the sends
        if getattr(local, "get_template", None) is None:
            request = requests.Request("GET", self.base_url + "/", auth=self._auth, headers={
                "Accept": "application/json", "User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING})
            local.get_template = local.session.prepare_request(request)
        return local.get_template, adapter

    def get_once(self, path: str) -> Lookup:
        """One GET of ``path`` (below the base URL, already quoted), classified; never raises for network trouble.

        The same caps, whole-answer deadline and scrubbing as a send: an answer is read up
        to :data:`MAX_BODY`, within the read timeout, and every error text is scrubbed.
        """
        template, adapter = self._getter()
        request = requests.PreparedRequest()
        request.method, request.hooks = "GET", template.hooks
        request.url = self.base_url + path
        request.headers = template.headers.copy()
        request.body = None
        with self._watchdog.exchange(*self.timeout) as exchange:
            answer = self._read(adapter, request, exchange)
        if isinstance(answer, Outcome):  # no status line: the request may never have arrived, or timed out
            return Lookup(answer.decision if answer.stops_run else Decision.UNKNOWN, error=answer.error,
                          transient=not answer.stops_run)
        status = answer.status
        if 200 <= status < 300:
            if answer.problem:
                return Lookup(Decision.UNKNOWN, status, error=self.scrub(
                    f"the server answered {status} but {answer.problem}{answer.hint}"), transient=not answer.hint)
            try:
                data = json.loads(answer.body)
            except (ValueError, RecursionError):
                html = "html" in answer.content_type.lower() or answer.body.lstrip()[:1] == b"<"
                what = "an empty body" if not answer.body.strip() else "an HTML page" if html else "not JSON"
                return Lookup(Decision.FAILED, status, error=self.scrub(
                    f"the server answered {status} but not as the Fone Dynamics API does ({what}); check --base-url"))
            return Lookup(Decision.ACCEPTED, status, data)
        code, text = self._error_of(answer)
        transient = status in RETRY_STATUSES or status >= 500
        decision = decide(status)
        if decision not in STOP_DECISIONS:
            decision = Decision.UNKNOWN if transient else Decision.FAILED  # a 3xx or 4xx: asking again won't help
        return Lookup(decision, status, error=f"{code}: {text}" if code else text, retry_after=answer.retry_after,
                      transient=transient)

    def get(self, path: str, stop: threading.Event | None = None) -> Lookup:
        """GET ``path``, again while :func:`should_retry_get` says so, with the sends' backoff."""
        stop = stop if stop is not None else threading.Event()
        attempts = 0
        while True:
            attempts += 1
            lookup = self.get_once(path)
            if not should_retry_get(lookup, attempts, self.max_attempts):
                break
            self._pause(backoff_seconds(attempts, lookup.retry_after, jitter=self._jitter), stop)
            if stop.is_set():
                break
        lookup.attempts = attempts
        if not lookup.ok and lookup.transient and attempts > 1:
            lookup.error = f"{lookup.error} (gave up after {attempts} attempts)"
        return lookup

    def get_message(self, sid: str, stop: threading.Event | None = None) -> Lookup:
        """``GET /v2/Messages/{sid}``: on success ``data`` is the Message object (a dict), as it came.

        A 2xx whose body is not ``{"Message": {...}}`` is FAILED, saying what it was instead.
        """
        lookup = self.get(f"/v2/Messages/{quote(sid, safe='')}", stop)
        if lookup.ok:
            message = lookup.data.get("Message") if isinstance(lookup.data, dict) else None
            if not isinstance(message, dict):
                what = "a JSON list" if isinstance(lookup.data, list) else "no Message object"
                return Lookup(Decision.FAILED, lookup.status, error=self.scrub(
                    f"the server answered {lookup.status} but not as the Fone Dynamics API does ({what}); "
                    "check --base-url"), attempts=lookup.attempts)
            lookup.data = message
        return lookup

    def list_page(self, date_from: int, date_to: int, count: int,
                  stop: threading.Event | None = None) -> tuple[list[ListedMessage], int]:
        """One list call: the messages it holds and how many items could not be read as messages.

        Raises :class:`ListError` when the call fails or its answer has no list of messages
        under a ``Messages`` key (any case): the call is known only from third-party use.
        """
        query = urlencode({"Date_From": int(date_from), "Date_To": int(date_to), "Results_Count": int(count)})
        path = f"/v2/Properties/{quote(self.property_sid, safe='')}/Messages?{query}"
        lookup = self.get(path, stop)
        where = f"{self.base_url}/v2/Properties/{self.property_sid}/Messages"
        if lookup.stops_run:
            raise ListError(f"{where}: {lookup.error}")
        if not lookup.ok:
            raise ListError(f"{where}: the message list could not be read ({lookup.error})")
        return parse_listing(lookup.data, where)

    def list_messages(self, date_from: float, date_to: float, count: int = 1000, *, max_calls: int = 64,
                      stop: threading.Event | None = None) -> Listing:
        """Every message the list call holds between ``date_from`` and ``date_to`` (epoch seconds).

        How the API pages beyond Results_Count is unknown, so a page that comes back full
        (``count`` items) may be missing some: its window is split in two (the halves
        share their middle second, whichever way the API reads the bounds) and each half
        is asked again, down to one second and at most ``max_calls`` calls. Messages are
        de-duplicated by MessageSid. Where a window stays full, the listing says it is
        not complete rather than pretend.
        """
        listing = Listing()
        windows = [(math.floor(date_from), math.ceil(date_to))]
        while windows:
            low, high = windows.pop()
            if listing.calls >= max_calls:
                listing.complete = False
                listing.gaps.append(f"stopped after {max_calls} list calls; the list from "
                                    f"{low} to {high} (epoch seconds) was not read")
                continue
            page, unreadable = self.list_page(low, high, count, stop)
            listing.calls += 1
            for message in page:
                listing.messages.setdefault(message.sid, message)
            if unreadable:
                listing.complete = False
                listing.gaps.append(f"{unreadable} item{'s' if unreadable != 1 else ''} of the list "
                                    "could not be read as messages")
            if len(page) + unreadable >= count:  # full: there may be more in this window
                if high - low < 2:
                    listing.complete = False
                    listing.gaps.append(f"{count} or more messages within {low}-{high} (epoch seconds), "
                                        "more than one list call returns")
                    continue
                middle = (low + high) // 2
                windows += [(middle, high), (low, middle)]
        return listing

    def _pause(self, seconds: float, stop: threading.Event) -> None:
        """The backoff: ``stop.wait``, which a Ctrl-C ends at once, unless a test gave its own ``sleep``."""
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            stop.wait(seconds)

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()


def _unknown_if_shared(outcomes: list[Outcome]) -> None:
    """Make UNKNOWN every accepted item whose MessageSid another item of the same answer also has.

    Two messages cannot be one message: such an answer cannot say which of them was taken.
    """
    seen: dict[str, int] = {}
    for outcome in outcomes:
        if outcome.message_sid is not None:
            seen[outcome.message_sid] = seen.get(outcome.message_sid, 0) + 1
    if len(seen) == sum(seen.values()):
        return
    for outcome in outcomes:
        if outcome.message_sid is not None and seen[outcome.message_sid] > 1:
            outcome.decision, outcome.message_sid, outcome.sender_id, outcome.num_segments = (
                Decision.UNKNOWN, None, None, None)
            outcome.error = "the batch answer gave this message's MessageSid to another message too"


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
