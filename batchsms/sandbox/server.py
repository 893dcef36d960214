"""A local HTTP server that behaves like the Fone Dynamics API, with fault injection.

Raw asyncio HTTP/1.1 with keep-alive, one write per response and TCP_NODELAY: the
stock ``ThreadingHTTPServer`` stalls ~43 ms a response on loopback (Nagle plus
delayed ACK), and a sandbox slower than the client would hide the client's speed.

Faults are drawn per message request: ``429`` and ``503`` refuse without taking the
message (with Retry-After), ``reset`` drops the connection before taking it, while
``500``, ``timeout`` and ``lost`` take the message and then fail to answer properly, as a
real server can: those are the cases a client must never resend blindly, and the
messages it must later find in the list call to settle them. A BatchMessages request
draws one fault for the whole batch; without one, each of its messages is taken or
refused on its own, and the answer has one item per message, in order.

``latency_ms`` is a network round trip: a request is processed half of it after it
arrived, and its answer leaves when all of it has passed (see ``_post_messages``).

After the send it plays the rest of a message's life on ``clock`` (``time.time`` unless a
test passes a ``ManualClock``): Processing until its Schedule, Submitted, then Delivered
(or, for the ``undelivered`` share, Failed) ``DELIVERY_DELAY`` later, and for the
``replies`` share an inbound reply a few seconds after that, with the webhooks each step
calls. Message times are all on that clock; connection deadlines stay on monotonic time.

It is also a network service anyone on its network segment may talk to (``--host
0.0.0.0``), so bytes no client would send get an HTTP answer, never a traceback: a bad
request line, header or ``Content-Length`` is a 400, chunked bodies a 411, a header
block over 64 KB a 431, a body over the endpoint's cap a 413 (decided from the headers,
after the credentials are checked, before a byte of body is read), and a request that
stops arriving a 408 after ``request_timeout``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import heapq
import json
import logging
import math
import random
import re
import secrets
import socket
import struct
import threading
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from itertools import accumulate, count
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..segments import count as count_segments
from .network import is_loopback_host
from .validation import E164, ApiError, validate

FAULT_KINDS = ("429", "503", "reset", "500", "timeout", "lost")  # new kinds last: old seeds draw as before
TAKING_FAULTS = frozenset({"500", "timeout", "lost"})  # the message is taken, the answer is not given
MAX_LEASES = 5
LEASE_SECONDS = 30 * 24 * 3600
DELIVERY_DELAY = 1.0  # seconds from submission to the (simulated) delivery receipt
REPLY_DELAY = (2.0, 10.0)  # a reply comes this many seconds (drawn evenly) after delivery
UNDELIVERED_CODE = "Undeliverable"  # the ErrorCode of a message the undelivered rate made Failed
#: What drawn replies say, with weights: mostly ordinary answers, a share of opt-outs in the
#: spellings people use, and now and then START (an opt-in again) to keep a reader honest.
REPLY_TEXTS: tuple[tuple[str, int], ...] = (
    ("Thanks!", 30), ("See you then", 25), ("Ok", 10), ("Who is this?", 4),
    ("STOP", 8), ("Stop", 4), ("stop.", 3), ("STOP ALL", 2), ("UNSUBSCRIBE", 3), ("opt out", 3),
    ("START", 1),
)
LIST_DEFAULT, LIST_MAX = 50, 1000  # Results_Count when absent, and the most one list call returns

MAX_HEAD = 64 * 1024  # request line and headers; a real client sends well under 1 KB
MAX_MESSAGE_BODY = 1 << 20  # one message is a few KB at most; anything near this is not a message
MAX_BATCH_BODY = 16 << 20  # BatchMessages carries many messages in one body
REQUEST_TIMEOUT = 10.0  # seconds from a request's first byte to its last
IDLE_TIMEOUT = 60.0  # seconds a keep-alive connection may wait for its next request
LINGER = 2.0  # seconds to keep reading (and dropping) input after an error answer

_log = logging.getLogger(__name__)
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # RFC 9110 token: a method or a header name
_REQUEST_LINE = re.compile(rf"({_TOKEN}) ([\x21-\x7e]+) HTTP/1\.[0-9]\r\n")
# The whole head in one match (one C call, not one per line): request line, then "Name: value"
# lines whose names are tokens, so no "Name :" (a smuggling trick), no folded " continuation".
_HEAD = re.compile(rf"({_TOKEN}) ([\x21-\x7e]+) HTTP/1\.[0-9]\r\n((?:{_TOKEN}:[^\r\n]*\r\n)*)\r\n")
_DIGITS = re.compile(r"[0-9]+")


class ManualClock:
    """A clock that moves only when told: pass it as ``Sandbox(clock=...)`` to run a day in a test.

    ``ManualClock(start)`` reads ``start`` (epoch seconds; the real time now when omitted)
    until ``advance(seconds)`` moves it on. It never goes back: a message's times must not
    run backwards any more than the provider's do.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move on by ``seconds`` (0 or more); returns the new time."""
        if not seconds >= 0:
            raise ValueError(f"a clock only moves forward: advance({seconds!r}) needs 0 or more seconds")
        with self._lock:
            self._now += seconds
            return self._now


class _Watch:
    """A connection's current deadline, checked by the ticker (every 0.1 s) rather than by a timer.

    A timer per wait (``asyncio.timeout``/``wait_for``), created and cancelled twice per
    request, added ~17 µs of CPU to a request that otherwise costs the sandbox ~55 µs;
    storing a float costs nothing, and timeouts 0.1 s late do not matter. When a deadline
    passes the ticker cancels the connection's task and sets ``expired``, which tells that
    cancellation from a shutdown.
    """

    __slots__ = ("deadline", "expired", "task")

    def __init__(self, task: asyncio.Task) -> None:
        self.task, self.deadline, self.expired = task, math.inf, False

    def caught(self) -> bool:
        """After a CancelledError: True (and the task usable again) if it was this deadline's doing."""
        if not self.expired:
            return False
        self.expired = False
        uncancel = getattr(self.task, "uncancel", None)  # Python 3.11+: undo the cancel request's count
        if uncancel is not None:
            uncancel()
        return True


class _Refusal(Exception):
    """A request answered with an HTTP error before it reaches the API emulation.

    ``close`` says whether the connection must end after the answer: it must whenever the
    request's body was not read (its bytes would be taken for the next request).
    """

    def __init__(self, status: int, code: str, message: str, *, close: bool = True,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.close = status, close
        self.body = ApiError(status, code, message).body()
        self.headers = {**(headers or {}), **({"Connection": "close"} if close else {})}


class _Request(NamedTuple):
    method: str
    path: str
    parts: list[str]  # the path's non-empty segments
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    query: str = ""  # the target's query string, undecoded


def _content_length(value: str | None) -> int:
    """The body length a ``Content-Length`` value declares, or a 400 for anything not one number.

    ``int()`` alone would take ``+5``, `` 5``, ``²`` and ``1_000`` and raise on 5,000 digits;
    repeated or listed values must agree (a proxy and this server could otherwise disagree on
    where the body ends).
    """
    if value is None:
        return 0
    if value.isdigit() and value.isascii() and len(value) <= 18:  # every real request
        return int(value)
    values = {v.strip(" \t") for v in value.split(",")}
    if len(values) != 1:
        raise _Refusal(400, "BadRequest", "conflicting Content-Length values")
    (text,) = values
    if not _DIGITS.fullmatch(text):
        raise _Refusal(400, "BadRequest", f"Content-Length must be a whole number of bytes, not {text[:20]!r}")
    return int(text) if len(text) <= 18 else 10**18  # over any cap: a 413, without a 5,000-digit int()


def parse_faults(spec: str | None) -> dict[str, float]:
    """``"429=0.05,reset=0.01"`` → ``{"429": 0.05, "reset": 0.01}``; raises ValueError with the fix.

    What each kind does to a message request, and whether the message is taken (kept in
    ``state.messages`` and returned by the list call, so a client can settle it later):

    - ``429``, ``503``: refused with Retry-After: 1; not taken.
    - ``reset``: the connection is reset (RST) without an answer; not taken.
    - ``500``: taken, then answered with an HTML 500 page (no MessageSid).
    - ``timeout``: taken, then held without an answer for ``timeout_hold`` seconds and closed.
    - ``lost``: taken, then the connection is reset (RST) at once without an answer: to the
      client it looks exactly like ``reset``, which is why it may never resend either blindly.

    A request the API refuses (a 400 for its body, the lease limit) is not taken whatever
    the fault. In a BatchMessages request the fault applies to the whole request.
    """
    faults: dict[str, float] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        kind, sep, rate = part.partition("=")
        kind = kind.strip().lower()
        if kind not in FAULT_KINDS or not sep:
            raise ValueError(f"{part.strip()!r}: write KIND=RATE with KIND one of {', '.join(FAULT_KINDS)}")
        try:
            value = float(rate)
        except ValueError:
            raise ValueError(f"{part.strip()!r}: the rate must be a number between 0 and 1") from None
        if not 0 <= value <= 1:
            raise ValueError(f"{part.strip()!r}: the rate must be between 0 and 1")
        faults[kind] = value
    if sum(faults.values()) > 1:
        raise ValueError("the fault rates add up to more than 1")
    return faults


def _new_sid() -> str:
    return "M" + secrets.token_hex(16).upper()[:31]


#: A Message resource's fields, in the order the API lists them (the sandbox's own keys start with ``_``).
_PUBLIC_KEYS = ("MessageSid", "AccountSid", "PropertySid", "From", "To", "Text", "DeliveryReceipt", "NumSegments",
                "Status", "Direction", "Scheduled", "Created", "Submitted", "Delivered", "Received", "ErrorCode",
                "ExternalId")


def _created(message: dict) -> int:
    return message["Created"]


_SIGNED = re.compile(r"-?[0-9]{1,18}")  # bounded: int() of thousands of digits raises
_COUNT = re.compile(r"[0-9]{1,18}")
_LIST_PARAMETERS = {name.lower(): name for name in ("Date_From", "Date_To", "Results_Count")}
_REPLY_WORDS = tuple(text for text, _ in REPLY_TEXTS)
_REPLY_CUMULATIVE = tuple(accumulate(weight for _, weight in REPLY_TEXTS))


def _whole(params: dict[str, str], name: str, pattern: re.Pattern, what: str) -> int | None:
    """A list-call parameter as an int (None when absent), or the API's 400 naming it."""
    value = params.get(name)
    if value is None:
        return None
    if not pattern.fullmatch(value):
        raise ApiError(400, f"Invalid{name}", f"{name} must be {what}, not {value[:20]!r}")
    return int(value)


def _is_loopback(url: str) -> bool:
    """True when the URL's host is a loopback address (not a name that merely starts with 127.)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return host is not None and is_loopback_host(host)


@dataclass
class SandboxState:
    """What the sandbox has taken and done; shared with tests (read it under ``lock``)."""

    messages: dict[str, dict] = field(default_factory=dict)  # MessageSid -> Message resource
    taken: list[dict] = field(default_factory=list)  # every message body taken, in order
    leases: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    stats: Counter = field(default_factory=Counter)
    webhook_calls: list[dict] = field(default_factory=list)  # kind ("receipt"/"reply"), url, method, MessageSid, status
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_lease: int = 0


class Sandbox:
    """The emulated API. ``start()`` runs it on a daemon thread (also as a context manager); ``stop()`` ends it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, account_sid: str = "ACSANDBOX",
                 auth_token: str | None = None, faults: dict[str, float] | None = None,
                 latency_ms: float = 0.0, rate: float | None = None, seed: int | None = None,
                 timeout_hold: float = 60.0, request_timeout: float = REQUEST_TIMEOUT,
                 idle_timeout: float = IDLE_TIMEOUT, clock: Callable[[], float] = time.time,
                 undelivered: float = 0.0, replies: float = 0.0, max_batch: int | None = None) -> None:
        """``request_timeout``: seconds from a request's first byte until all of it has arrived
        (else 408 and close); ``idle_timeout``: seconds a kept-alive connection may sit unused
        (then it is closed quietly). Both bound what a client that stops talking can hold, on
        real (monotonic) time.

        ``clock``: epoch seconds for everything about messages (Created, the Schedule window,
        when a message is due, Submitted, Delivered, replies, the list call's dates); the
        background ticker reads it every 0.1 s, so a ``ManualClock`` advanced by a test is
        noticed within ~0.1 s. ``undelivered``: the share of sent messages (with receipts on)
        that end Failed instead of Delivered; ``replies``: the share of delivered messages
        (submitted, with receipts off) sent from a number that get an inbound reply. Both
        are drawn once per message when it is taken, from ``seed``, on a stream of their own
        (so turning them on does not move the fault draws).

        ``max_batch``: the most messages one BatchMessages request may hold; a larger batch is
        refused whole (400 ``BatchTooLarge``, nothing taken). The real API's maximum is not
        documented, so by default there is none (only the 16 MB body cap, a 413).
        """
        for name, value in (("undelivered", undelivered), ("replies", replies)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name}={value!r}: the rate must be between 0 and 1")
        self.host, self.port = host, port
        self.request_timeout, self.idle_timeout = request_timeout, idle_timeout
        self.account_sid = account_sid
        self.auth_token = auth_token or secrets.token_hex(16)
        self.faults = faults or {}
        self.latency = latency_ms / 1000.0
        self.rate = rate
        self.timeout_hold = timeout_hold
        self.random = random.Random(seed)
        self.clock = clock
        self.undelivered, self.replies = undelivered, replies
        self.max_batch = max_batch
        self._fates = random.Random(None if seed is None else f"fates:{seed}")  # str seeds are stable
        self.state = SandboxState()
        self._expected_auth = "Basic " + base64.b64encode(f"{account_sid}:{self.auth_token}".encode()).decode()
        self._bucket = (float(rate or 0), time.monotonic())
        # (clock time, tie-break, "receipt" | "reply", MessageSid): what happens to taken messages
        # later; read and changed under state.lock.
        self._events: list[tuple[float, int, str, str]] = []
        self._sequence = count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task] = set()
        self._watches: set[_Watch] = set()  # one per open connection

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal needs brackets
        return f"http://{host}:{self.port}"

    def start(self) -> Sandbox:
        """Serve on a daemon thread; returns once the port is open."""
        self._thread = threading.Thread(target=self._run_loop, name="batchsms-sandbox", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._server is None:
            raise OSError(f"the sandbox could not listen on {self.host}:{self.port}")
        return self

    def _run_loop(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._open())
        except OSError:
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._close())
        self._loop.close()

    async def _open(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=1024,
                                                  limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]
        self._spawn(self._ticker())

    async def _close(self) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ HTTP
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: requests in turn (keep-alive) until the client closes, errs or idles."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.current_task()
        watch = _Watch(task)
        self._tasks.add(task)
        self._watches.add(watch)
        clock = asyncio.get_running_loop().time
        try:
            while True:
                # Waiting for a request's first byte has its own, longer deadline, and ends quietly:
                # an idle keep-alive connection has asked nothing, so it gets no answer.
                watch.deadline = clock() + self.idle_timeout
                try:
                    first = await reader.read(1)
                except asyncio.CancelledError:
                    if watch.caught():
                        return
                    raise
                if not first:
                    return
                watch.deadline = clock() + self.request_timeout
                try:
                    request = await self._read_request(first, reader, writer)
                except asyncio.CancelledError:
                    if not watch.caught():
                        raise
                    refusal = _Refusal(408, "RequestTimeout",
                                       f"the request did not arrive in full within {self.request_timeout:g} s")
                except _Refusal as exc:
                    refusal = exc
                else:
                    watch.deadline = math.inf  # answering may take long on purpose (latency, timeout fault)
                    if request is None:  # blank lines between requests
                        continue
                    action = await self._respond(request, writer)
                    if action == "close" or request.headers.get("connection", "").lower() == "close":
                        break
                    if action == "reset":
                        if sock is not None:  # RST, not FIN: the client sees "connection reset"
                            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        writer.transport.abort()
                        return
                    continue
                watch.deadline = math.inf
                self._count("requests", str(refusal.status))
                self._write(writer, refusal.status, refusal.body, refusal.headers)
                if refusal.close:
                    await self._linger(reader, writer)
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:  # the sandbox is stopping: end quietly (re-raising makes Python
            writer.transport.abort()     # < 3.11.8 log a traceback per held connection, gh-113538)
        except Exception:  # a bug here, not the client's doing: say so once, drop this connection only
            _log.exception("sandbox: internal error on a connection; it is closed")
            writer.transport.abort()
        finally:
            self._tasks.discard(task)
            self._watches.discard(watch)
            if not writer.is_closing():
                writer.close()

    def _expire_waits(self) -> None:
        """Cancel every connection wait whose deadline has passed (see ``_Watch``)."""
        now = asyncio.get_running_loop().time()
        for watch in self._watches:
            if watch.deadline <= now:
                watch.deadline, watch.expired = math.inf, True
                watch.task.cancel()

    async def _read_request(self, first: bytes, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> _Request | None:
        """Read and check one request, in the order that keeps a stranger from costing memory.

        Request line and headers (at most ``MAX_HEAD``), then framing (``Content-Length``
        only), then credentials (a 401 without reading the body), then the body's size
        against the endpoint's cap (a 413 without reading it), then the body. Raises
        ``_Refusal`` for any failure; None for a blank line between requests.
        """
        try:
            head = first + await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise _Refusal(431, "RequestHeaderFieldsTooLarge",
                           f"the request line and headers exceed {MAX_HEAD // 1024} KB") from None
        except asyncio.IncompleteReadError:
            raise _Refusal(400, "BadRequest", "the connection ended before the request's headers did") from None
        text = head.decode("latin-1").lstrip("\r\n")  # blank lines before a request are allowed
        if not text:
            return None
        match = _HEAD.fullmatch(text)
        if match is None:
            if not _REQUEST_LINE.match(text):
                raise _Refusal(400, "BadRequest", "malformed request line: expected METHOD /path HTTP/1.1")
            raise _Refusal(400, "BadRequest", "malformed header line: expected Name: value")
        method, target, block = match.groups()
        headers: dict[str, str] = {}
        for line in block[:-2].split("\r\n") if block else ():
            name, _, value = line.partition(":")
            key, value = name.lower(), value.strip(" \t")
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        if "transfer-encoding" in headers:
            raise _Refusal(411, "LengthRequired",
                           "Transfer-Encoding (chunked) is not supported: send the body with a Content-Length")
        length = _content_length(headers.get("content-length"))
        try:
            split = urlsplit(target)
            path, query = split.path, split.query
        except ValueError:
            raise _Refusal(400, "BadRequest", "malformed request target") from None
        parts = [p for p in path.split("/") if p]
        if headers.get("authorization") != self._expected_auth:
            raise _Refusal(401, "Unauthorized", "Invalid AccountSid or auth token",
                           close=length > 0 or headers.get("connection", "").lower() == "close",
                           headers={"WWW-Authenticate": 'Basic realm="api"'})
        batch = method == "POST" and len(parts) == 4 and parts[:2] == ["v2", "Properties"] \
            and parts[3] == "BatchMessages"
        cap = MAX_BATCH_BODY if batch else MAX_MESSAGE_BODY
        if length > cap:
            raise _Refusal(413, "PayloadTooLarge",
                           f"the body declares {length} bytes; this endpoint takes at most {cap}")
        if not length:
            return _Request(method, path, parts, headers, b"", query)
        if headers.get("expect", "").lower() == "100-continue":  # curl waits for this before a big body
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            body = await reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise _Refusal(400, "BadRequest",
                           f"the connection ended after {len(exc.partial)} of {length} body bytes") from None
        return _Request(method, path, parts, headers, body, query)

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Close after an error answer without destroying it.

        Closing a socket that still has unread input makes the kernel send RST, and a client
        still uploading (a 413, a 401 before the body) may then lose the answer it has not
        read yet. So: send FIN, drop whatever still arrives for a moment, then close.
        """
        if writer.is_closing():
            return
        writer.write_eof()
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            await asyncio.wait_for(self._discard(reader), min(LINGER, self.request_timeout))

    @staticmethod
    async def _discard(reader: asyncio.StreamReader) -> None:
        while await reader.read(1 << 16):
            pass

    @staticmethod
    def _write(writer: asyncio.StreamWriter, status: int, payload, extra: dict | None = None) -> None:
        if isinstance(payload, bytes):  # JSON encoded already (while the answer waited for its latency)
            data, ctype = payload, "application/json; charset=utf-8"
        elif isinstance(payload, (dict, list)):
            data, ctype = json.dumps(payload).encode(), "application/json; charset=utf-8"
        else:
            data, ctype = str(payload).encode(), "text/html"
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Content-Type: {ctype}",
                f"Content-Length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)

    async def _respond(self, request: _Request, writer: asyncio.StreamWriter) -> str | None:
        """Answer an authenticated, fully read request as the API would."""
        method, path, parts, body = request.method, request.path, request.parts, request.body
        with self.state.lock:
            self.state.stats["requests"] += 1
        if method == "GET" and len(parts) == 3 and parts[:2] == ["v2", "Messages"]:
            message = self._get_message(parts[2])
            if message is None:
                self._write(writer, 404, ApiError(404, "NotFound", f"No message {parts[2]}").body())
            else:
                self._write(writer, 200, {"Message": message})
            return None
        if method == "GET" and len(parts) == 4 and parts[:2] == ["v2", "Properties"] and parts[3] == "Messages":
            try:
                self._write(writer, 200, {"Messages": self._list_messages(parts[2], request.query)})
            except ApiError as exc:
                self._count(str(exc.status), exc.code)
                self._write(writer, exc.status, exc.body())
            return None
        if method == "POST" and len(parts) == 4 and parts[:2] == ["v2", "Properties"] \
                and parts[3] in ("Messages", "BatchMessages"):
            return await self._post_messages(parts[2], parts[3] == "BatchMessages", body, writer)
        self._write(writer, 404, ApiError(404, "NotFound", f"No resource {method} {path}").body())
        return None

    def _limited(self) -> bool:
        """True when this request is over ``--rate`` (a token bucket one second deep)."""
        if not self.rate:
            return False
        tokens, last = self._bucket
        now = time.monotonic()
        tokens = min(self.rate, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._bucket = (tokens, now)
            return True
        self._bucket = (tokens - 1, now)
        return False

    def _draw_fault(self) -> str | None:
        if not self.faults:
            return None
        r = self.random.random()
        for kind in FAULT_KINDS:
            rate = self.faults.get(kind, 0.0)
            if r < rate:
                return kind
            r -= rate
        return None

    async def _post_messages(self, property_sid: str, batch: bool, body: bytes,
                             writer: asyncio.StreamWriter) -> str | None:
        """A send or a batch, with ``latency`` emulated as a network's round trip.

        The request reaches the API half the latency after it arrived and is processed then
        (taken, refused, or met by a fault); its answer leaves when the whole latency has
        passed since it arrived. So the sandbox's own processing time (~1 ms for a batch of
        100) is hidden inside the latency, as a real server's runs in parallel with other
        requests: processed after the whole wait, batches answered at the same moment
        queued behind each other on the sandbox's one thread and added ~6 ms to a 50 ms
        latency (measured: 13,400 against 15,600 msg/s, 8 connections, batches of 100).
        """
        loop = asyncio.get_running_loop()
        due = loop.time() + self.latency
        if self.latency:
            await asyncio.sleep(self.latency / 2)  # on its way to the API
        action = self._process(property_sid, batch, body)
        if self.latency:
            await asyncio.sleep(max(0.0, due - loop.time()))  # the answer's way back
        if action == "timeout":  # taken, and the answer never comes
            await asyncio.sleep(self.timeout_hold)
            return "close"
        if action == "reset":
            return "reset"
        self._write(writer, *action)
        return None

    def _process(self, property_sid: str, batch: bool, body: bytes) -> tuple | str:
        """What the API does with a send or a batch: the answer to write, or ``"reset"`` / ``"timeout"``."""
        if self._limited():
            self._count("429", "rate-limited")
            return 429, ApiError(429, "TooManyRequests", "Rate limit exceeded").body(), {"Retry-After": "1"}
        fault = self._draw_fault()
        if fault in ("429", "503"):
            self._count(fault, f"fault {fault}")
            return int(fault), ApiError(int(fault), "TryAgain", "Please retry later").body(), {"Retry-After": "1"}
        if fault == "reset":
            self._count("reset", "fault reset")
            return "reset"
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return 400, ApiError(400, "InvalidRequest", "The body is not valid JSON").body()
        except RecursionError:  # "[[[[…" a few thousand deep: valid JSON in principle, never a message
            return 400, ApiError(400, "InvalidRequest", "The body's JSON is nested too deeply").body()
        if batch:
            items = payload.get("Messages") if isinstance(payload, dict) else None
            if not isinstance(items, list):
                return 400, ApiError(400, "InvalidRequest", "Messages must be a list").body()
            if self.max_batch is not None and len(items) > self.max_batch:
                self._count("400", "BatchTooLarge")
                return 400, ApiError(400, "BatchTooLarge", f"A batch can hold at most {self.max_batch} messages; "
                                                           f"this one has {len(items)}").body()
            result: tuple = (200, json.dumps(self._take_batch(property_sid, items)).encode())
        else:
            try:
                result = (200, {"Message": self._take(property_sid, payload)})
            except ApiError as exc:
                self._count(str(exc.status), exc.code)
                result = (exc.status, exc.body())
        if fault == "500":  # taken, and then the server falls over
            self._count("500", "fault 500 (taken)")
            return 500, "<html><body><h1>500 Internal Server Error</h1></body></html>"
        if fault == "timeout":
            self._count("timeout", "fault timeout (taken)")
            return "timeout"
        if fault == "lost":  # taken, and the connection drops before the answer goes out
            self._count("lost", "fault lost (taken)")
            return "reset"
        return result

    def _count(self, *keys: str) -> None:
        with self.state.lock:
            for key in keys:
                self.state.stats[key] += 1

    # ------------------------------------------------------------------ the API's behaviour
    def _take(self, property_sid: str, body: object) -> dict:
        now = self.clock()
        validate(body, now)
        with self.state.lock:
            sender = body.get("From") or ""
            to = body["To"]
            if not sender:
                active = [(n, exp) for n, exp in self.state.leases.get(to, []) if exp > now]
                if len(active) >= MAX_LEASES:
                    self.state.leases[to] = active
                    raise ApiError(400, "LeaseLimitExceeded",
                                   f"There are already {MAX_LEASES} active leases to {to}")
                self.state.next_lease += 1
                sender = f"+6140{self.state.next_lease:07d}"
                active.append((sender, now + LEASE_SECONDS))
                self.state.leases[to] = active
            sid = _new_sid()
            schedule = body.get("Schedule")
            due = max(now, schedule) if schedule is not None else now
            receipts = body.get("DeliveryReceipt", True)
            # Only plain values (its body is found by its place in ``taken``): a dict of them is not
            # tracked by the cyclic collector. Holding the body dict made every kept message one
            # more container each full collection walked; with a benchmark's hundreds of thousands
            # kept, those pauses held up every answer (50 ms, batches of 100 on 8 connections:
            # batchsms's own client reached 88–92% of the ideal rate, 93–94% without them).
            message = {
                "MessageSid": sid, "AccountSid": self.account_sid, "PropertySid": property_sid,
                "From": sender, "To": to, "Text": body["Text"], "DeliveryReceipt": receipts,
                "NumSegments": count_segments(body["Text"]).parts, "Status": "Processing",
                "Direction": "Transmit", "Scheduled": schedule, "Created": int(now), "Submitted": None,
                "Delivered": None, "Received": None, "ErrorCode": None, "ExternalId": body.get("ExternalId"),
                "_due": due, "_taken": len(self.state.taken), "_failed": False,
            }
            if self.undelivered or self.replies:
                self._draw_fate(message)
            self.state.messages[sid] = message
            self.state.taken.append(body)
            self.state.stats["taken"] += 1
            if receipts and body.get("DeliveryReceiptWebhookUri"):
                self._later(due + DELIVERY_DELAY, "receipt", sid)
            return self._public(message)

    def _take_batch(self, property_sid: str, items: list) -> list[dict]:
        """A BatchMessages answer: one item per message, in order, each taken or refused on its own.

        A taken message's item is its Message resource with ``ErrorCode`` and ``Message``
        null; a refused one has a null MessageSid, the ErrorCode and the error text.
        """
        answer = []
        refused = 0
        for item in items:
            try:
                message = self._take(property_sid, item)
            except ApiError as exc:
                refused += 1
                answer.append({"MessageSid": None, "ErrorCode": exc.code, "Message": exc.message})
            else:
                message["Message"] = None  # its ErrorCode is null already
                answer.append(message)
        if refused:
            self._count_many("items refused", refused)
        return answer

    def _count_many(self, key: str, n: int) -> None:
        with self.state.lock:
            self.state.stats[key] += n

    def _draw_fate(self, message: dict) -> None:
        """Decide now, once, whether the message will fail and whether it will be answered.

        Drawn at take time (not when someone looks) so that a GET, the list call and the
        webhooks tell one story, from a stream of their own seeded by ``seed``.
        """
        draw = self._fates.random
        fail_draw, reply_draw = draw(), draw()
        receipts = message["DeliveryReceipt"]
        message["_failed"] = failed = bool(receipts) and fail_draw < self.undelivered
        # An alphanumeric sender cannot be replied to; a failed message was never read.
        if not failed and reply_draw < self.replies and E164.match(message["From"]):
            final = message["_due"] + (DELIVERY_DELAY if receipts else 0.0)
            message["_reply"] = _REPLY_WORDS[bisect_right(_REPLY_CUMULATIVE, draw() * _REPLY_CUMULATIVE[-1])]
            self._later(final + REPLY_DELAY[0] + draw() * (REPLY_DELAY[1] - REPLY_DELAY[0]), "reply",
                        message["MessageSid"])

    def _later(self, at: float, kind: str, sid: str) -> None:
        """Queue an event for the clock time ``at`` (caller holds ``state.lock``)."""
        heapq.heappush(self._events, (at, next(self._sequence), kind, sid))

    def _advance(self, message: dict, now: float) -> None:
        """Processing until due, then Submitted, then Delivered or Failed (when receipts are on)."""
        if message["Status"] == "Processing" and now >= message["_due"]:
            message["Status"], message["Submitted"] = "Submitted", int(message["_due"])
        if message["Status"] == "Submitted" and message["DeliveryReceipt"] and now >= message["_due"] + DELIVERY_DELAY:
            if message["_failed"]:
                message["Status"], message["ErrorCode"] = "Failed", UNDELIVERED_CODE
            else:
                message["Status"], message["Delivered"] = "Delivered", int(message["_due"] + DELIVERY_DELAY)

    @staticmethod
    def _public(message: dict) -> dict:
        """The Message resource, without the sandbox's own ``_`` keys (a fresh dict the caller may change)."""
        return {k: message[k] for k in _PUBLIC_KEYS}

    def _settle(self, now: float) -> list[tuple[str, str, str, dict]]:
        """Play every event due by ``now``, in time order: the webhook calls to make, as
        (kind, url, method, payload). Replies are recorded here, at their own time."""
        calls: list[tuple[str, str, str, dict]] = []
        with self.state.lock:
            while self._events and self._events[0][0] <= now:
                at, _, kind, sid = heapq.heappop(self._events)
                message = self.state.messages[sid]
                body = self.state.taken[message["_taken"]]
                if kind == "receipt":
                    self._advance(message, now)
                    calls.append(("receipt", body["DeliveryReceiptWebhookUri"],
                                  body.get("DeliveryReceiptWebhookMethod", "POST"), self._public(message)))
                else:
                    reply = self._record_reply(message["PropertySid"], message["To"], message["From"],
                                               message["_reply"], at)
                    if body.get("WebhookUri"):
                        calls.append(("reply", body["WebhookUri"], body.get("WebhookMethod", "POST"), reply))
        return calls

    def _settle_and_call(self, now: float) -> None:
        """``_settle`` and start its webhook calls (on the sandbox's own loop)."""
        for call in self._settle(now):
            self._spawn(self._call_webhook(*call))

    def _record_reply(self, property_sid: str, sender: str, to: str, text: str, at: float) -> dict:
        """Keep an inbound message (caller holds ``state.lock``); returns its resource."""
        sid = _new_sid()
        reply = {
            "MessageSid": sid, "AccountSid": self.account_sid, "PropertySid": property_sid,
            "From": sender, "To": to, "Text": text, "DeliveryReceipt": False,
            "NumSegments": count_segments(text).parts, "Status": "Received", "Direction": "Receive",
            "Scheduled": None, "Created": int(at), "Submitted": None, "Delivered": None, "Received": int(at),
            "ErrorCode": None, "ExternalId": None,
        }
        self.state.messages[sid] = reply
        self.state.stats["replies"] += 1
        return dict(reply)

    def add_reply(self, from_number: str, text: str, *, to: str | None = None, property_sid: str | None = None,
                  at: float | None = None) -> dict:
        """Record an inbound SMS, as if ``from_number`` had replied; returns its Message resource.

        ``to`` and ``property_sid`` default to the sending number and property of the latest
        message sent to ``from_number`` (the latest from ``to`` / on ``property_sid`` when
        those are given); with no such message both must be given. ``at`` (epoch seconds)
        defaults to the clock's now. When that latest message's send carried ``WebhookUri``,
        the reply webhook is called with the inbound message, as for drawn replies.
        """
        for name, value in (("from_number", from_number), ("text", text)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"add_reply: {name} must be non-empty text, not {value!r}")
        when = self.clock() if at is None else at
        with self.state.lock:
            latest = next((m for m in reversed(self.state.messages.values())
                           if m["Direction"] == "Transmit" and m["To"] == from_number
                           and (to is None or m["From"] == to)
                           and (property_sid is None or m["PropertySid"] == property_sid)), None)
            if latest is None and (to is None or property_sid is None):
                raise ValueError(f"add_reply: no message was sent to {from_number}; give to= and property_sid= "
                                 "for a message out of the blue")
            reply = self._record_reply(property_sid or latest["PropertySid"], from_number, to or latest["From"],
                                       text, when)
            body = self.state.taken[latest["_taken"]] if latest is not None else {}
        if body.get("WebhookUri"):
            self._call_soon("reply", body["WebhookUri"], body.get("WebhookMethod", "POST"), reply)
        return reply

    def _call_soon(self, kind: str, url: str, method: str, payload: dict) -> None:
        """Start a webhook call from any thread (the caller's, in a test)."""
        loop = self._loop
        if loop is not None and loop.is_running():
            with contextlib.suppress(RuntimeError):  # the loop closed in between: as if it were not running
                loop.call_soon_threadsafe(lambda: self._spawn(self._call_webhook(kind, url, method, payload)))
                return
        with self.state.lock:
            self.state.webhook_calls.append({"kind": kind, "url": url, "method": method,
                                             "MessageSid": payload["MessageSid"],
                                             "status": "not called: the sandbox is not running"})

    def _get_message(self, sid: str) -> dict | None:
        now = self.clock()
        self._settle_and_call(now)
        with self.state.lock:
            message = self.state.messages.get(sid)
            if message is None:
                return None
            self._advance(message, now)
            return self._public(message)

    def _list_messages(self, property_sid: str, query: str) -> list[dict]:
        """The list call: the property's messages with Created in [Date_From, Date_To], newest first."""
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            name = _LIST_PARAMETERS.get(key.lower())  # ServiceStack reads query names in any case
            if name is None:
                continue
            if name in params:
                raise ApiError(400, f"Invalid{name}", f"{name} is given more than once")
            params[name] = value
        low = _whole(params, "Date_From", _SIGNED, "a whole number of seconds since the epoch")
        high = _whole(params, "Date_To", _SIGNED, "a whole number of seconds since the epoch")
        limit = _whole(params, "Results_Count", _COUNT, "a whole number, 0 or more")
        limit = LIST_DEFAULT if limit is None else min(limit, LIST_MAX)
        low = -math.inf if low is None else low
        high = math.inf if high is None else high
        now = self.clock()
        self._settle_and_call(now)
        with self.state.lock:
            # Newest first; among equal seconds the one kept later first (nlargest is a stable sort).
            found = heapq.nlargest(limit, (m for m in reversed(self.state.messages.values())
                                           if m["PropertySid"] == property_sid and low <= m["Created"] <= high),
                                   key=_created)
            for message in found:
                self._advance(message, now)
            return [self._public(m) for m in found]

    async def _ticker(self) -> None:
        """Time out stalled connections; play due events on the clock (receipts, replies) and call their webhooks."""
        while True:
            await asyncio.sleep(0.1)
            self._expire_waits()
            self._settle_and_call(self.clock())

    async def _call_webhook(self, kind: str, url: str, method: str, message: dict) -> None:
        """Call one webhook (loopback only) and record it in ``state.webhook_calls``."""
        record = {"kind": kind, "url": url, "method": method, "MessageSid": message["MessageSid"], "status": None}
        if not _is_loopback(url):
            record["status"] = "not called: the sandbox calls loopback webhooks only"
        else:
            try:
                record["status"] = await asyncio.wait_for(self._http(url, method, message), 5)
            except (OSError, asyncio.TimeoutError) as exc:
                record["status"] = f"failed: {exc!r}"
            except (ValueError, IndexError):  # the listener answered, but not with an HTTP status line
                record["status"] = "failed: the webhook's answer is not HTTP"
        with self.state.lock:
            self.state.webhook_calls.append(record)

    @staticmethod
    async def _http(url: str, method: str, message: dict) -> int:
        parts = urlsplit(url)
        fields = {k: v for k, v in message.items() if v is not None}
        path = parts.path or "/"
        if method == "GET":
            query = "&".join(filter(None, [parts.query, urlencode(fields)]))
            head, data = f"GET {path}?{query} HTTP/1.1\r\nHost: {parts.netloc}\r\n", b""
        else:
            data = json.dumps(fields).encode()
            head = (f"POST {path}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n")
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        try:
            writer.write((head + "Connection: close\r\n\r\n").encode() + data)
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
        return int(status_line.split()[1])

    # ------------------------------------------------------------------ reporting
    def summary(self) -> str:
        """One line: requests, taken, each refusal and fault, then how the taken messages ended."""
        now = self.clock()
        with self.state.lock:
            stats = Counter(self.state.stats)
            for message in self.state.messages.values():
                self._advance(message, now)
                stats[message["Status"].lower()] += 1  # delivered, failed (and submitted, ... not shown)
        keys = ["requests", "taken", "401", "400", "items refused", "408", "411", "413", "431", "429", "503", "reset",
                "500", "timeout", "lost", "delivered", "failed", "replies"]
        shown = ", ".join(f"{k} {stats[k]}" for k in keys if stats.get(k))
        return f"sandbox: {shown or 'no requests'}"
