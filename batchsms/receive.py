"""The webhook receiver behind ``batchsms receive``: delivery receipts into the journals, replies into the opt-outs.

The API calls ``DeliveryReceiptWebhookUri`` and ``WebhookUri`` with a payload nobody has
documented (the Message resource's fields are the likely shape), by POST or GET as the
send said. So the receiver takes a Message as JSON (bare, under ``Message``, or a list
or ``Messages`` of them), as a form body or as a GET query, keys in any case, and:

- a **delivery receipt** (MessageSid with Status Processing/Submitted/Delivered/Failed,
  Direction Transmit or none) is recorded in the journal that holds that MessageSid (the
  registered journals, :func:`batchsms.state.journals`, and any given with ``--journal``),
  through :meth:`Journal.record_delivery`. A journal locked by a running send (or a
  ``status``) is not waited on: the receipt is kept in the log as ``pending`` and applied
  by the receiver's own retry (at start, every ``retry_every`` seconds, and at stop), or by
  :func:`apply_pending` from whoever holds that journal next;
- a **reply** (Direction Receive, or Status Received) goes through the opt-out rules
  (:mod:`batchsms.replies`, :func:`batchsms.optouts.add_optouts`);
- anything else on the secret path is **kept raw** in the log (base64 when it is not
  UTF-8), never dropped: the payload's real shape is learnt from it.

It is a network service (meant to sit behind the user's reverse proxy), so: it binds
127.0.0.1 unless told otherwise; only ``/hooks/<secret>`` answers, every other path is a
404 that logs nothing; a body is at most ``MAX_BODY`` (64 KB, a Message is under 2 KB),
the request line and headers ``MAX_HEAD`` together; a client has ``REQUEST_TIMEOUT``
seconds per request; at most ``MAX_CONNECTIONS`` are served at once (more are closed at
once, so a flood cannot start a thread each); and a malformed request gets an HTTP error,
never a traceback (tests send garbage bytes, truncated bodies, bad lengths, huge bodies,
non-UTF-8).

http.server rather than asyncio: webhooks come a few a second at most. One request per
connection (HTTP/1.0), so no connection is held between webhooks; measured here, ~990
webhooks/s on loopback, each on a new connection and logged (``disable_nagle_algorithm``
is set as DESIGN.md "A trap measured here" says; with a close after every answer it made
~850 → ~990 here, not the 23 → 1,900 of a kept-alive connection).

The log is JSON lines (``receive.log`` in the state folder unless ``--log``): every
receipt, reply, unrecognised payload and refused body, with the time received.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import fcntl
import hmac
import json
import logging
import os
import re
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .endpoint import is_loopback_host
from .errors import ConfigError, JournalError
from .journal import Journal
from .optouts import Result, add_optouts, entries_from
from .phones import PhoneBook
from .replies import Reply, is_inbound, message_fields, near_miss, reply_of, shown_text, text_field, time_field
from .scrub import one_line

MAX_BODY = 64 * 1024
MAX_HEAD = 16 * 1024
REQUEST_TIMEOUT = 10.0
MAX_CONNECTIONS = 64
LINGER = 1.0  # seconds to read and drop a client's remaining input after an error answer
MAX_LINGER_BYTES = 1 << 20  # and at most this much of it
RETRY_EVERY = 30.0  # seconds between attempts to apply receipts whose journal was busy
HOOK_PREFIX = "/hooks/"
SETUP_FILE = "receive.json"  # in the state folder: the secret path and the URLs, for `send --webhook auto`
LOG_FILE = "receive.log"
DELIVERY_STATUSES = {s.casefold(): s for s in ("Processing", "Submitted", "Delivered", "Failed")}
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,128}")

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the secret path and its URL


@dataclass(frozen=True)
class Setup:
    """What ``receive`` last listened on, kept in the state folder so ``send --webhook auto`` can name it."""

    secret: str
    local_url: str | None = None  # http://127.0.0.1:8090 as bound
    public_url: str | None = None  # https://hooks.example.com, the reverse proxy in front of it

    @property
    def path(self) -> str:
        return HOOK_PREFIX + self.secret

    @property
    def webhook_url(self) -> str | None:
        """The URL to give the API: the public one when known, else the local one (only a sandbox reaches that)."""
        base = self.public_url or self.local_url
        return base.rstrip("/") + self.path if base else None


def setup_path(state: Path | None = None) -> Path:
    if state is None:
        from .state import state_dir

        state = Path(state_dir())
    return Path(state) / SETUP_FILE


def read_setup(state: Path | None = None) -> Setup | None:
    """The receiver's setup from the state folder, or None when ``receive`` never ran (or the file is damaged)."""
    path = setup_path(state)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    secret = data.get("secret") if isinstance(data, dict) else None
    if not isinstance(secret, str) or not _SECRET.fullmatch(secret):
        return None
    urls = [data.get(k) if isinstance(data.get(k), str) else None for k in ("local_url", "public_url")]
    return Setup(secret, *urls)


def write_setup(setup: Setup, state: Path | None = None) -> Path:
    """Save the setup (mode 600: the secret path is what keeps strangers from posting opt-outs)."""
    path = setup_path(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"secret": setup.secret, "local_url": setup.local_url, "public_url": setup.public_url}, fh)
    os.replace(tmp, path)
    return path


def choose_secret(option: str, state: Path | None = None) -> str:
    """``--path-secret``: ``auto`` reuses the secret of the last ``receive`` (URLs already handed to the API
    keep working) or makes a new random one; anything else must be 16-128 of A-Z a-z 0-9 _ -."""
    if option == "auto":
        found = read_setup(state)
        return found.secret if found is not None else secrets.token_urlsafe(24)
    if not _SECRET.fullmatch(option or ""):
        raise ConfigError("--path-secret: write 16 to 128 letters, digits, _ or -, or auto for a random one")
    return option


def check_public_url(url: str | None) -> str | None:
    """``--public-url``: an absolute http(s) URL without query or fragment (the hook path is added to it)."""
    if url is None:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"--public-url {one_line(url, 80)}: write the address the API reaches this receiver at, "
                          "such as https://hooks.example.com (the /hooks/<secret> path is added)")
    return url.strip().rstrip("/")


def webhook_url(state: Path | None = None, *, public: bool = False) -> str:
    """The URL ``send --webhook auto`` puts in DeliveryReceiptWebhookUri and WebhookUri.

    It is what the last ``batchsms receive`` wrote to the state folder: its ``--public-url``
    plus the secret path, else its local address (which only a sandbox on this machine can
    call). ``public=True`` (a real API) refuses the local address. ConfigError, saying what
    to run, when no receiver was ever started.
    """
    setup = read_setup(state)
    if setup is None or setup.webhook_url is None:
        raise ConfigError("--webhook auto: no webhook receiver is set up; start one with "
                          "`batchsms receive --public-url https://<your reverse proxy>` and leave it running")
    if public and not setup.public_url:
        raise ConfigError(f"--webhook auto: the receiver listens on {setup.local_url} only, which the API cannot "
                          "reach; restart it with --public-url https://<the address your reverse proxy serves>")
    return setup.webhook_url


# --------------------------------------------------------------------------- the log


def _now_iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventLog:
    """The receiver's JSON-lines log: one ``write`` per line with O_APPEND, so lines never interleave."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8", "replace")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def records(self) -> list[dict[str, Any]]:
        """Every line that is a JSON object (a torn or foreign line is skipped)."""
        out = []
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    with contextlib.suppress(ValueError):
                        record = json.loads(line)
                        if isinstance(record, dict):
                            out.append(record)
        except FileNotFoundError:
            pass
        return out


def _raw(body: bytes) -> dict[str, Any]:
    """A body as the log keeps it: the text when it is UTF-8 without control characters, else base64."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        return {"body": text}
    return {"body_base64": base64.b64encode(body).decode("ascii")}


# --------------------------------------------------------------------------- receipts


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt: which message, its status, when it was delivered, the API's error code."""

    sid: str
    status: str  # Processing, Submitted, Delivered or Failed
    delivered_at: float | None = None
    error: str | None = None

    def as_log(self) -> dict[str, Any]:
        return {"MessageSid": self.sid, "Status": self.status, "Delivered": self.delivered_at, "ErrorCode": self.error}


def receipt_of(payload: object) -> Receipt | None:
    """The delivery receipt a payload is, or None (a reply, or not a Message with MessageSid and a status)."""
    fields = message_fields(payload)
    if fields is None or is_inbound(fields):
        return None
    direction = fields.get("direction")
    if direction is not None and not (isinstance(direction, str) and direction.strip().casefold() == "transmit"):
        return None
    sid = text_field(fields, "messagesid", 200)
    status = fields.get("status")
    status = DELIVERY_STATUSES.get(status.strip().casefold()) if isinstance(status, str) else None
    if sid is None or status is None or not sid.isprintable():
        return None
    error = text_field(fields, "errorcode", 64)
    delivered = time_field(fields, "delivered") if status == "Delivered" else None
    return Receipt(sid.strip(), status, delivered, one_line(error, 64) if error else None)


def journal_holding(sid: str, journals: Iterable[Path]) -> Path | None:
    """The first journal whose rows hold MessageSid ``sid`` (read-only, lock-free; unreadable ones skipped)."""
    for path in journals:
        try:
            db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        except (sqlite3.Error, OSError, ValueError):
            continue
        try:
            if db.execute("SELECT 1 FROM rows WHERE message_sid = ? LIMIT 1", (sid,)).fetchone():
                return Path(path)
        except sqlite3.Error:
            continue
        finally:
            db.close()
    return None


def record_receipts(journal: Journal, receipts: Iterable[Receipt], checked: float) -> int:
    """Record receipts in an open journal (idempotent, never backwards); returns the rows changed."""
    return journal.record_deliveries([(r.sid, r.status, r.delivered_at, r.error, checked) for r in receipts])


def pending_receipts(log: Path) -> list[Receipt]:
    """Receipts the log keeps as ``pending`` (their journal was busy) and no later line marks applied."""
    pending: dict[tuple[str, str], Receipt] = {}
    for record in EventLog(log).records():
        kind, sid, status = record.get("kind"), record.get("MessageSid"), record.get("Status")
        if not isinstance(sid, str) or not isinstance(status, str):
            continue
        if kind == "receipt" and record.get("outcome") == "pending":
            delivered = record.get("Delivered")
            error = record.get("ErrorCode")
            pending[(sid, status)] = Receipt(sid, status, delivered if isinstance(delivered, (int, float)) else None,
                                             error if isinstance(error, str) else None)
        elif kind == "receipt-applied":
            pending.pop((sid, status), None)
    return list(pending.values())


def apply_pending(journal: Journal, log: Path, checked: float | None = None) -> int:
    """Apply the log's pending receipts that belong to ``journal`` (opened by its caller); returns how many.

    For ``batchsms status``: it holds the journal anyway, so the receipts a busy journal
    made the receiver keep are recorded then, without asking the API.
    """
    checked = time.time() if checked is None else checked
    mine = [r for r in pending_receipts(log)
            if journal.db.execute("SELECT 1 FROM rows WHERE message_sid = ? LIMIT 1", (r.sid,)).fetchone()]
    if not mine:
        return 0
    record_receipts(journal, mine, checked)
    events = EventLog(log)
    for receipt in mine:
        events.write({"at": _now_iso(checked), "kind": "receipt-applied", "MessageSid": receipt.sid,
                      "Status": receipt.status, "journal": str(journal.path)})
    return len(mine)


# --------------------------------------------------------------------------- one payload


@dataclass(frozen=True)
class Event:
    """What the receiver did with one request, for the terminal (``text``) and the tests."""

    kind: str  # receipt, reply, unrecognised, refused
    text: str
    outcome: str = ""


def _payloads(method: str, content_type: str, body: bytes, query: str) -> tuple[list[object] | None, str]:
    """The Message objects a request carries (None when it cannot be read) and how it was read."""
    ctype = content_type.split(";")[0].strip().casefold()
    if method == "GET" or (not body.strip() and query):
        if not query:
            return None, "empty"
        pairs = _pairs(query)
        return ([dict(pairs)] if pairs else None), "query"
    if not body.strip():
        return None, "empty"
    if ctype in ("", "application/json", "text/json", "text/plain") or ctype.endswith("+json"):
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        if data is not None:
            if isinstance(data, dict):
                fields = {str(k).casefold(): v for k, v in data.items()}
                if isinstance(fields.get("messages"), list):
                    return list(fields["messages"]), "json"
                return [data], "json"
            if isinstance(data, list):
                return data, "json"
            return None, "json"
    if ctype in ("", "application/x-www-form-urlencoded", "text/plain"):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None, "form"
        if "=" in text:
            pairs = _pairs(text.strip())
            return ([dict(pairs)] if pairs else None), "form"
    return None, ctype or "unknown"


def _pairs(text: str) -> list[tuple[str, str]]:
    """``a=1&b=2`` as pairs; none when a value is not UTF-8 once %-decoded (then the payload is kept raw)."""
    try:
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        return []


def _journal_busy(path: Path) -> bool:
    """True when a send or a status holds the journal's lock (see :class:`Journal`); not waited on."""
    try:
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class Receiver:
    """``batchsms receive`` as an object: ``start()`` serves on a thread, ``url`` is the hook URL, ``stop()`` ends it.

    ``journals`` gives the journals to search for a receipt's MessageSid (called per
    receipt, so a send started after the receiver is found too); ``clock`` is the time
    written to the log and the journal; ``on_event`` hears of every request handled.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, secret: str, optouts: Path, log: Path,
                 journals: Callable[[], Sequence[Path]] | Sequence[Path] = (), country: str = "AU",
                 clock: Callable[[], float] = time.time, on_event: Callable[[Event], None] | None = None,
                 retry_every: float = RETRY_EVERY, max_body: int = MAX_BODY, max_head: int = MAX_HEAD,
                 request_timeout: float = REQUEST_TIMEOUT, max_connections: int = MAX_CONNECTIONS) -> None:
        if not _SECRET.fullmatch(secret):
            raise ConfigError("the receiver's secret must be 16 to 128 letters, digits, _ or -")
        self.host, self.port = host, port
        self.path = HOOK_PREFIX + secret
        self.optouts = Path(optouts)
        self.log = EventLog(log)
        self._journals = journals
        self.book = PhoneBook(country)
        self.clock = clock
        self.on_event = on_event
        self.retry_every = retry_every
        self.max_body, self.max_head = max_body, max_head
        self.request_timeout = request_timeout
        self.pending: dict[tuple[str, str], Receipt] = {(r.sid, r.status): r for r in pending_receipts(self.log.path)}
        self.counts: dict[str, int] = {}
        self._counting = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._retrier: threading.Thread | None = None
        self._stop = threading.Event()
        self._work = threading.Lock()  # receipts and opt-outs one at a time (the journals and the file lock do too)
        self._slots = threading.BoundedSemaphore(max_connections)

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The full local webhook URL (what a reverse proxy forwards to, what a sandbox can call)."""
        return self.base_url + self.path

    def start(self) -> Receiver:
        self.log.path.parent.mkdir(parents=True, exist_ok=True)
        self._server = _Server((self.host, self.port), _Handler, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="batchsms-receive", daemon=True)
        self._thread.start()
        self._retrier = threading.Thread(target=self._retry_loop, name="batchsms-receive-retry", daemon=True)
        self._retrier.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in (self._thread, self._retrier):
            if thread is not None:
                thread.join(10)
        self.retry_pending()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def journals(self) -> list[Path]:
        found = self._journals() if callable(self._journals) else self._journals
        return list(dict.fromkeys(Path(p) for p in found))

    def _retry_loop(self) -> None:
        """Receipts kept for a busy journal: tried at start (those from an earlier run), then every ``retry_every``."""
        while True:
            try:
                self.retry_pending()
            except Exception:  # noqa: BLE001 - a retry that fails is tried again next round; the receipt stays logged
                _log.exception("receive: retrying pending receipts failed")
            if self._stop.wait(self.retry_every):
                return

    def _event(self, event: Event) -> Event:
        with self._counting:
            self.counts[event.kind] = self.counts.get(event.kind, 0) + 1
        if self.on_event is not None:
            with contextlib.suppress(Exception):
                self.on_event(event)
        return event

    # ------------------------------------------------------------------ what a request carries
    def handle(self, method: str, content_type: str, body: bytes, query: str) -> tuple[int, dict, list[Event]]:
        """One request on the secret path, already read: its status, its JSON answer and what was done."""
        now = self.clock()
        payloads, how = _payloads(method, content_type, body, query)
        if payloads is None:
            if how == "empty":
                return 200, {"ok": True, "received": 0}, []
            return 200, {"ok": True, "received": 0, "kept": "raw"}, [
                self._unrecognised(method, content_type, body, query, how, now)]
        if len(payloads) > 100:  # no webhook carries that many: keep it whole for a person to look at
            what = f"{how}, {len(payloads)} items"
            return 200, {"ok": True, "received": 0, "kept": "raw"}, [
                self._unrecognised(method, content_type, body, query, what, now)]
        events: list[Event] = []
        unread = 0
        for payload in payloads:
            event = self._one(payload, now)
            if event is None:
                unread += 1
            else:
                events.append(event)
        answer: dict[str, Any] = {"ok": True, "received": len(events)}
        if unread:  # the whole body, once, however many of its items were not read
            what = how if unread == len(payloads) else f"{how}, {unread} of {len(payloads)} items not read"
            events.append(self._unrecognised(method, content_type, body, query, what, now))
            answer["kept"] = "raw"
        if any(e.outcome == "error" for e in events):
            answer["ok"] = False
            return 503, answer, events
        return 200, answer, events

    def _one(self, payload: object, now: float) -> Event | None:
        receipt = receipt_of(payload)
        if receipt is not None:
            return self._receipt(receipt, payload, now)
        reply = reply_of(payload, self.book, now)
        if reply is not None:
            return self._reply(reply, payload, now)
        return None

    def _unrecognised(self, method: str, content_type: str, body: bytes, query: str, how: str, now: float) -> Event:
        self.log.write({"at": _now_iso(now), "kind": "unrecognised", "method": method,
                        "content_type": one_line(content_type, 100), "read_as": how,
                        "query": one_line(query, 2000), **_raw(body)})
        return self._event(Event("unrecognised", f"a {method} the receiver does not recognise ({how}); kept raw in "
                                 f"{self.log.path}", "kept"))

    def _receipt(self, receipt: Receipt, payload: object, now: float) -> Event:
        with self._work:
            outcome, where = self._apply_receipt(receipt, now)
        self.log.write({"at": _now_iso(now), "kind": "receipt", **receipt.as_log(), "outcome": outcome,
                        "journal": str(where) if where else None, "payload": _jsonable(payload)})
        text = {"applied": f"recorded in {where}",
                "pending": f"kept in the log: {where} is in use by a running send or status; applied when it is free",
                "unmatched": "no journal holds this MessageSid (kept in the log)",
                }.get(outcome, f"not recorded: {outcome}")
        return self._event(Event("receipt", f"receipt {receipt.sid} {receipt.status}: {text}", outcome))

    def _apply_receipt(self, receipt: Receipt, now: float) -> tuple[str, Path | None]:
        where = journal_holding(receipt.sid, self.journals())
        if where is None:
            return "unmatched", None
        if not _journal_busy(where):
            try:
                with Journal(where) as journal:
                    record_receipts(journal, [receipt], now)
                return "applied", where
            except JournalError as exc:
                if not _journal_busy(where):  # not taken in between: the journal itself is the trouble
                    return one_line(str(exc), 200), where
        self.pending[(receipt.sid, receipt.status)] = receipt
        return "pending", where

    def retry_pending(self) -> int:
        """Apply the kept receipts whose journal is free now; returns how many were applied."""
        applied = 0
        with self._work:
            for key, receipt in list(self.pending.items()):
                now = self.clock()
                outcome, where = self._apply_receipt(receipt, now)
                if outcome == "pending":
                    continue
                del self.pending[key]
                if outcome == "applied":
                    applied += 1
                    self.log.write({"at": _now_iso(now), "kind": "receipt-applied", "MessageSid": receipt.sid,
                                    "Status": receipt.status, "journal": str(where)})
                    self._event(Event("receipt", f"receipt {receipt.sid} {receipt.status}: recorded in {where} "
                                      "(kept while it was in use)", "applied"))
        return applied

    def _reply(self, reply: Reply, payload: object, now: float) -> Event:
        keyword = reply.keyword
        result: str = "—"
        outcome = "logged"
        if keyword is not None:
            try:
                with self._work:
                    applied = add_optouts(self.optouts, entries_from([reply]), country=self.book.country)
                result = str(applied[0].result) if applied else str(Result.NO_NUMBER)
                outcome = "applied"
            except Exception as exc:  # noqa: BLE001 - a full disk, a lock held too long: keep it, answer 503
                result, outcome = f"not applied ({one_line(str(exc), 160)})", "error"
        mention = near_miss(reply.text)
        self.log.write({"at": _now_iso(now), "kind": "reply", "From": reply.number, "To": reply.to,
                        "MessageSid": reply.sid, "Received": reply.at, "Text": shown_text(reply.text, 1000),
                        "keyword": keyword, "result": result, "mentions": mention,
                        "optouts": str(self.optouts), "payload": _jsonable(payload)})
        what = result if keyword is not None else (f"mentions {mention!r}, not a keyword: read it" if mention else "—")
        return self._event(Event("reply", f"reply from {reply.number} {shown_text(reply.text, 60)!r}: {what}",
                                 outcome))


def _jsonable(payload: object) -> object:
    """The payload as the log can hold it (form and query values are text already; JSON stays JSON)."""
    try:
        json.dumps(payload)
        return payload
    except (TypeError, ValueError):
        return repr(payload)[:2000]


# --------------------------------------------------------------------------- HTTP


class _HeadCap:
    """The request's input, with the request line and headers capped together at ``cap`` bytes.

    http.server caps each line at 64 KB and the headers at 100, which still lets one
    request send 6 MB of headers. Past the cap this hands back an over-long line, which
    http.server answers itself (414 for the request line, 431 for a header).
    """

    def __init__(self, raw, cap: int) -> None:
        self.raw, self.left = raw, cap

    def readline(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b"x" * (max(size, 65537) if size > 0 else 65537)
        limit = self.left + 1 if size < 0 else min(size, self.left + 1)
        line = self.raw.readline(limit)
        self.left -= len(line)
        if self.left < 0:
            return b"x" * (max(size, 65537) if size > 0 else 65537)
        return line

    def read(self, size: int = -1) -> bytes:
        return self.raw.read(size)

    def __getattr__(self, name: str):
        return getattr(self.raw, name)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address, handler, receiver: Receiver) -> None:
        self.receiver = receiver
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        """A thread per connection, up to the receiver's limit; beyond it the connection is closed at once."""
        if not self.receiver._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.receiver._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.receiver._slots.release()

    def handle_error(self, request, client_address) -> None:
        """A connection that broke (a reset, a bug): one line in the log, never a traceback on the terminal."""
        _log.debug("receive: connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "batchsms-receive"
    sys_version = ""
    protocol_version = "HTTP/1.0"  # one request per connection: nothing is held open between webhooks
    default_request_version = "HTTP/1.0"  # so even an answer to garbage starts with a status line
    disable_nagle_algorithm = True  # ~43 ms a response otherwise (DESIGN.md "A trap measured here")

    def setup(self) -> None:
        self.timeout = self.server.receiver.request_timeout
        super().setup()
        self.rfile = _HeadCap(self.rfile, self.server.receiver.max_head)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's name
        _log.debug("receive: " + format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, headers too large) as a short JSON answer."""
        self._answer(code, {"ok": False, "error": HTTPStatus(code).phrase})

    def finish(self) -> None:
        """After an error answer, read and drop what the client still sends, for a moment, before closing.

        Closing a socket with unread input makes the kernel send RST, and a client still
        sending (a body over the cap, a 70 KB request line) may then lose the answer.
        """
        super().finish()
        if not getattr(self, "_unread", False):
            return
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER)
            deadline, dropped = time.monotonic() + LINGER, 0
            while dropped < MAX_LINGER_BYTES and time.monotonic() < deadline:
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                dropped += len(chunk)

    def _answer(self, status: int, payload: dict) -> None:
        self._unread = status >= 400
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:
            pass  # the client went away; nothing to tell it
        self.close_connection = True

    def _on_hook_path(self) -> tuple[bool, str]:
        try:
            parts = urlsplit(self.path)
        except ValueError:
            return False, ""
        path = parts.path.rstrip("/") or "/"
        return hmac.compare_digest(path.encode("latin-1", "replace"),
                                   self.server.receiver.path.encode("latin-1")), parts.query

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        ok, query = self._on_hook_path()
        if not ok:
            return self._answer(404, {"ok": False, "error": "Not Found"})
        self._serve("GET", b"", query)

    def do_POST(self) -> None:  # noqa: N802
        ok, query = self._on_hook_path()
        if not ok:
            return self._answer(404, {"ok": False, "error": "Not Found"})
        receiver = self.server.receiver
        if "transfer-encoding" in self.headers:
            return self._answer(411, {"ok": False, "error": "send the body with a Content-Length"})
        lengths = {part.strip() for value in self.headers.get_all("Content-Length") or []
                   for part in value.split(",")}
        if not lengths:
            return self._answer(411, {"ok": False, "error": "Length Required"})
        if len(lengths) != 1 or not next(iter(lengths)).isdigit() or not next(iter(lengths)).isascii():
            return self._answer(400, {"ok": False, "error": "bad Content-Length"})
        length = int(next(iter(lengths))[:19])
        if length > receiver.max_body:
            receiver.log.write({"at": _now_iso(receiver.clock()), "kind": "refused", "method": "POST",
                                "reason": f"body of {length} bytes, over {receiver.max_body}"})
            receiver._event(Event("refused", f"a body of {length:,} bytes refused (the limit is "
                                  f"{receiver.max_body:,})", "refused"))
            return self._answer(413, {"ok": False, "error": "Payload Too Large"})
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            receiver.log.write({"at": _now_iso(receiver.clock()), "kind": "unrecognised", "method": "POST",
                                "read_as": "truncated", "declared": length, **_raw(body)})
            receiver._event(Event("unrecognised", f"a body cut off after {len(body)} of {length} bytes; kept raw",
                                  "kept"))
            return self._answer(400, {"ok": False, "error": "the body ended before its Content-Length"})
        self._serve("POST", body, query)

    def do_HEAD(self) -> None:  # noqa: N802
        ok, _ = self._on_hook_path()
        self._answer(200 if ok else 404, {})

    def _serve(self, method: str, body: bytes, query: str) -> None:
        receiver = self.server.receiver
        try:
            status, answer, _ = receiver.handle(method, self.headers.get("Content-Type", ""), body, query)
        except Exception:  # noqa: BLE001 - a bug must cost one request, never the receiver
            _log.exception("receive: internal error handling a request")
            with contextlib.suppress(Exception):
                receiver.log.write({"at": _now_iso(receiver.clock()), "kind": "unrecognised", "method": method,
                                    "read_as": "internal error", "query": one_line(query, 2000), **_raw(body)})
            status, answer = 500, {"ok": False, "error": "internal error; the payload is kept in the log"}
        self._answer(status, answer)


def decode_logged_body(record: dict[str, Any]) -> bytes:
    """The raw body a log line kept (for a person or a test reading the log)."""
    if "body_base64" in record:
        try:
            return base64.b64decode(record["body_base64"])
        except (binascii.Error, ValueError):
            return b""
    return str(record.get("body", "")).encode("utf-8")


@dataclass
class Listening:
    """What ``receive`` prints at start: where it listens and the URL to give the API."""

    local: str
    public: str | None
    exposed: bool = field(default=False)  # listening beyond this machine


def listening(receiver: Receiver, public_url: str | None) -> Listening:
    return Listening(receiver.url, public_url.rstrip("/") + receiver.path if public_url else None,
                     exposed=not is_loopback_host(receiver.host))
