"""Work a forked copy of this process does while this one goes on: the machine's second core, for big files.

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

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def can_fork() -> bool:
    """Whether work can go to a forked copy: fork exists and no other thread runs in this process."""
    return hasattr(os, "fork") and threading.active_count() == 1


class Forked:
    """``work()`` run by a forked copy of this process (see the module docstring); :meth:`wait` joins it.

    ``work`` must only write files: anything else it changes stays in the copy.
    """

    def __init__(self, work: Callable[[], object], *, fork: bool = True) -> None:
        self._work = work
        self._pid = 0
        if not (fork and can_fork()):
            work()
            return
        pid = os.fork()
        if pid == 0:  # the copy: do the work, and leave without running anything of the parent's (atexit, flushes)
            code = 1
            try:
                work()
                code = 0
            finally:
                os._exit(code)
        self._pid = pid

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
        if os.waitstatus_to_exitcode(status) != 0 and redo:
            self._work()


@contextmanager
def alongside(work: Callable[[], object] | None) -> Iterator[Forked | None]:
    """Run ``work`` in a forked copy while the ``with`` body runs here; joined when the body ends. If the body
    fails, the copy is still waited for (never left running; what it writes is whole), and the body's error is
    the one raised. ``None``: nothing to do."""
    if work is None:
        yield None
        return
    forked = Forked(work)
    try:
        yield forked
    except BaseException:
        forked.wait(redo=False)
        raise
    forked.wait()
