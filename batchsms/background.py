"""Work another process does while this one goes on: the machine's second core, for big sheets.

A million-row check ends in three files' worth of work that do not depend on each other once
the verdicts are known: the report, and the two halves of the preview. Threads cannot share
that work (it is Python code, one at a time under the GIL); a forked copy can, and it needs
nothing sent to it, since it starts with everything this process knows. What it writes is
the same bytes this process would write: it runs the very same function.

Where there is no fork (Windows), or this process runs other threads (a fork copies only the
calling thread; a lock another thread held would stay held in the copy forever), the work is
done here, at once. If the copy fails, the work is done again here, so its failure shows as
this process's own error, with its own message.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def _fork() -> int:
    """os.fork with SIGINT and SIGTERM held back across it; the copy lets them end it outright. A Ctrl-C
    landing just after the fork could otherwise raise in the copy before its work began, and unwind this
    process's own stack there (click's "Aborted!", atexit, a second flush of unwritten output)."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows has no fork either
        return os.fork()
    held = {signal.SIGINT, signal.SIGTERM}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        pid = os.fork()
        if pid == 0:
            with contextlib.suppress(ValueError):  # only the main thread may set handlers
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
    return pid


def _in_copy(run: Callable[[], object]) -> int:
    """A forked copy of this process that runs ``run`` and leaves (exit 0, or 1 if it raised) without running
    anything of this process's (atexit, flushes); its pid here. OSError where no copy can be made."""
    pid = _fork()
    if pid == 0:
        code = 1
        try:
            run()
            code = 0
        finally:
            os._exit(code)
    return pid


def can_fork() -> bool:
    """Whether work can go to a forked copy: fork exists and no other thread runs in this process."""
    return hasattr(os, "fork") and threading.active_count() == 1


class Forked:
    """``work()`` run by a forked copy of this process (see the module docstring); :meth:`wait` joins it.

    ``work`` must only write files: anything else it changes stays in the copy.
    """

    def __init__(self, work: Callable[[], object], *, fork: bool = True, leaves: Sequence[Path] = ()) -> None:
        self._work = work
        self._leaves = leaves
        self._pid = 0
        if not (fork and can_fork()):
            work()
            return
        try:
            self._pid = _in_copy(work)
        except OSError:  # no memory or no process slot for a copy (ENOMEM, EAGAIN): the work is done here
            work()

    @property
    def forked(self) -> bool:
        """Whether a copy is doing the work (False once joined, or when it was done here)."""
        return self._pid != 0

    def wait(self, redo: bool = True) -> None:
        """Wait for the copy; if it failed, do the work here (whose error, if any, is raised) unless not ``redo``."""
        if not self._pid:
            return
        pid, self._pid = self._pid, 0
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            for path in map(Path, self._leaves):  # a copy killed mid-write leaves its temp file (named by its pid)
                for stray in path.parent.glob(f".{path.name}.{pid}.*"):
                    stray.unlink(missing_ok=True)
            if redo:
                self._work()


#: Rows of a sheet from which a forked copy pays for itself (below, forking costs more than it saves).
MIN_ROWS = 50_000


@contextmanager
def alongside(work: Callable[[], object] | None, *, rows: int | None = None,
              leaves: Sequence[Path] = ()) -> Iterator[Forked | None]:
    """Run ``work`` in a forked copy while the ``with`` body runs here; joined when the body ends. If the body
    fails, the copy is still waited for (never left running; what it writes is whole), and the body's error is
    the one raised. ``None``: nothing to do. ``rows``: the size of the sheet the work is about; below
    :data:`MIN_ROWS` the work is done here, at once."""
    if work is None:
        yield None
        return
    forked = Forked(work, fork=rows is None or rows >= MIN_ROWS, leaves=leaves)
    try:
        yield forked
    except BaseException:
        forked.wait(redo=False)
        raise
    forked.wait()


class Elsewhere:
    """``fn(*args)`` worked out in another process while this one goes on; :meth:`result` returns it.

    By a helper process of ``pool`` (a ProcessPoolExecutor: arguments and result are pickled),
    else by a forked copy (which has the arguments already; the result comes back pickled
    through a pipe), else here at once. Whatever goes wrong elsewhere, the result is worked
    out here instead, so an error is this process's own. ``fn`` must not change anything
    but what it returns.
    """

    def __init__(self, fn: Callable[..., object], *args: object, pool: object = None) -> None:
        self._fn, self._args = fn, args
        self._future = None
        self._pid = 0
        self._done = False
        self._value: object = None
        if pool is not None:
            try:
                self._future = pool.submit(fn, *args)  # type: ignore[attr-defined]
                return
            except Exception:  # a pool shut down or broken: try the other ways
                self._future = None
        if can_fork():
            with contextlib.suppress(OSError):  # no pipe, memory or process slot for a copy: worked out here
                self._fork(fn, args)
                return
        self._value, self._done = fn(*args), True

    def _fork(self, fn: Callable[..., object], args: tuple) -> None:
        read, write = os.pipe()

        def send() -> None:  # in the copy: the result, pickled through the pipe
            os.close(read)
            with os.fdopen(write, "wb") as out:
                pickle.dump(fn(*args), out, protocol=pickle.HIGHEST_PROTOCOL)

        try:
            pid = _in_copy(send)
        except OSError:
            os.close(read)
            os.close(write)
            raise
        os.close(write)
        self._pid, self._read = pid, read

    def cancel(self) -> None:
        """Give up on the result (this process failed meanwhile): a forked copy is stopped and reaped, its pipe
        closed; a helper's task is cancelled if it has not started."""
        if self._future is not None:
            self._future.cancel()
        elif self._pid:
            os.close(self._read)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = 0
        self._done = True

    def result(self) -> object:
        """The result (worked out here if the other process failed)."""
        if self._done:
            return self._value
        value, ok = None, False
        if self._future is not None:
            with contextlib.suppress(Exception):  # the helper failed or died: worked out here below
                value, ok = self._future.result(), True
        elif self._pid:
            with os.fdopen(self._read, "rb") as pipe:
                data = pipe.read()
            _, status = os.waitpid(self._pid, 0)
            self._pid = 0
            if os.waitstatus_to_exitcode(status) == 0:
                value, ok = pickle.loads(data), True
        if not ok:
            value = self._fn(*self._args)
        self._value, self._done = value, True
        return value
