"""Check a large sheet on every core: helper processes, the slices they get, and the results they send back.

Rows are independent (batch rules run afterwards, in sheet order), so slices can be
checked anywhere. Helpers come from a fork server and get their slice as ``marshal``
data: a plain fork of this process would share its gigabyte of rows copy-on-write,
and the page copies measured here slowed both processes by half. Small sheets, or a
machine without fork, run everything in this process.
"""

from __future__ import annotations

import marshal
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext

from .check import RowChecker
from .codes import Severity, Status
from .perf import gc_paused
from .phones import PhoneBook
from .report import Issue, RowResult
from .segments import Segments
from .sheet import Sheet

#: Below this many rows a second process costs more than it saves.
PARALLEL_MIN_ROWS = 50_000
#: The share of rows each helper process takes: it also pays for starting and for its results' transfer.
HELPER_SHARE = 0.42


def _pack(r: RowResult, offset: int) -> tuple:
    """A RowResult as plain tuples and strings, which ``marshal`` writes (it refuses enums and dataclasses)."""
    seg = tuple(r.segments) if r.segments else None
    issues = [(i.row, i.column, i.value, i.severity._value_, i.code, i.message) for i in r.issues] if r.issues else None
    return r.index + offset, r.row, r.status._value_, r.body, seg, issues, r.to, r.text  # .value is a slow property


#: The enum members by value: a dict lookup is ~10x faster than ``Status(value)``, per row read back.
_STATUS = {s.value: s for s in Status}
_SEVERITY = {s.value: s for s in Severity}


def _unpack(packed: tuple, segments_seen: dict[tuple, Segments]) -> RowResult:
    index, row, status, body, seg, issues, to, text = packed
    counted = None
    if seg is not None:  # one Segments object per distinct count, not one per row
        counted = segments_seen.get(seg)
        if counted is None:
            counted = segments_seen[seg] = Segments(*seg)
    issue_list = [Issue(r, c, v, _SEVERITY[s], code, m) for r, c, v, s, code, m in issues] if issues else []
    return RowResult(index, row, _STATUS[status], body, counted, issue_list, to, text)


def _check_slice(sheet: Sheet, rows: bytes, options, offset: int) -> bytes:
    """Run in a helper process: check a slice of the sheet, return packed results.

    Rows and results cross the process boundary as ``marshal`` data (plain lists,
    tuples, dicts and strings), which measured 8x faster to write than pickle here.
    """
    with gc_paused():
        sheet.rows = marshal.loads(rows)
        checker = RowChecker(sheet, options)
        return marshal.dumps([_pack(checker.check(i), offset) for i in range(len(sheet.rows))])


class Helpers:
    """Helper processes for a parallel check, started when the row-by-row check of a large sheet begins.

    Starting the fork server (a fresh interpreter importing batchsms) holds its caller
    ~0.3 s, so that is done by a thread while this process checks its own rows. They
    are not started before the sheet loads: on 2 cores their start-up slowed the load
    and a check by columns (which forks instead, see :mod:`batchsms.background`) by
    0.3-0.45 s, while the row-by-row check of a million rows took the same ~9 s with
    helpers started before the load or on demand (issue #13, third session).
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: ProcessPoolExecutor | None = None
        self._closing: bool | None = None  # set by close() before the pool exists: shut it down once made
        self._lock = threading.Lock()
        self._starter = threading.Thread(target=self._start, name="batchsms-helpers", daemon=True)
        self._starter.start()

    def _start(self) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["batchsms.parallel"])
        pool = ProcessPoolExecutor(self.count, mp_context=context)
        for _ in range(self.count):  # a first task makes the pool start its processes now
            pool.submit(_warm_up)
        with self._lock:
            self._pool = pool
            closing = self._closing
        if closing is not None:
            pool.shutdown(wait=closing, cancel_futures=True)

    @property
    def pool(self) -> ProcessPoolExecutor:
        """The pool, once the thread starting it is done."""
        self._starter.join()
        assert self._pool is not None
        return self._pool

    def ready_pool(self) -> ProcessPoolExecutor | None:
        """The pool once started, or None if starting it failed (the work is then done elsewhere)."""
        self._starter.join()
        return self._pool

    def close(self, wait: bool = True) -> None:
        """Stop the helpers; ``wait=False`` returns at once (they finish starting and leave on their own)."""
        with self._lock:
            pool = self._pool
            if pool is None:
                self._closing = wait
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)
        elif wait:
            self._starter.join()

    def __enter__(self) -> Helpers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _warm_up() -> None:
    PhoneBook("AU")  # loads the metadata this process will most likely need


def start_helpers(workers: int) -> Helpers | None:
    """Helpers for ``workers`` processes in all (this one included), or None where that is not possible."""
    if workers <= 1 or "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    return Helpers(workers - 1)


def check_rows(checker: RowChecker, workers: int = 1, helpers: Helpers | None = None) -> list[RowResult]:
    """Every row's verdict; with helpers, they check the tail while this process checks the head."""
    sheet = checker.sheet
    total = len(sheet.rows)
    if total < PARALLEL_MIN_ROWS or (helpers is None and workers <= 1):
        return [checker.check(i) for i in range(total)]
    if helpers is None:
        with start_helpers(workers) or nullcontext() as started:
            if started is None:
                return [checker.check(i) for i in range(total)]
            return check_rows(checker, workers, started)
    count = helpers.count
    share = min(HELPER_SHARE, 1 / (count + 1))
    size = int(total * share)
    own = total - size * count
    futures = []
    for k in range(count):
        lo, hi = own + k * size, own + (k + 1) * size if k < count - 1 else total
        part = Sheet(sheet.path, sheet.header, [], sheet.row_numbers[lo:hi], sheet.kind, columns=sheet.columns)
        futures.append(helpers.pool.submit(_check_slice, part, marshal.dumps(sheet.rows[lo:hi]), checker.options, lo))
    results = [checker.check(i) for i in range(own)]
    segments_seen: dict[tuple, Segments] = {}
    for future in futures:
        results.extend(_unpack(packed, segments_seen) for packed in marshal.loads(future.result()))
    return results
