"""background.py: work done by a forked copy, joined, redone here when the copy fails, never left running.

Each case runs in a fresh interpreter (the test process runs sandbox threads, and a process
with threads never forks): what it prints says which process did the work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from batchsms import background

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")


def run(code: str, tmp_path) -> str:
    env = dict(os.environ, PYTHONPATH=str(Path(background.__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def another_thread():
    """A second thread running for the ``with`` body (a process with one never forks)."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        yield
    finally:
        stop.set()
        other.join()


def test_the_copy_does_the_work_while_this_process_goes_on(tmp_path):
    out = run("""
        import os
        from batchsms import background
        me = os.getpid()
        def work():
            with open("made.txt", "w") as fh:
                fh.write("copy" if os.getpid() != me else "here")
        with background.alongside(work) as forked:
            print("forked" if forked.forked else "inline")
        print(open("made.txt").read())
    """, tmp_path)
    assert out.split() == ["forked", "copy"]


def test_a_failed_copy_is_redone_here_and_its_error_is_this_process_s(tmp_path):
    out = run("""
        import os
        from batchsms import background
        me = os.getpid()
        def work():
            if os.getpid() != me:
                raise OSError("the copy's disk is full")
            open("made.txt", "w").write("here")
        with background.alongside(work):
            pass
        print(open("made.txt").read())
        def always():
            raise OSError("no space left on the device")
        try:
            with background.alongside(always):
                pass
        except OSError as exc:
            print("raised:", exc)
    """, tmp_path)
    assert out.splitlines() == ["here", "raised: no space left on the device"]


def test_an_error_in_the_body_waits_for_the_copy_and_is_the_one_raised(tmp_path):
    out = run("""
        import os, time
        from batchsms import background
        def work():
            time.sleep(0.3)
            open("made.txt", "w").write("whole")
        try:
            with background.alongside(work):
                raise ValueError("the preview failed")
        except ValueError as exc:
            print(exc)
        print(open("made.txt").read())
        try:
            os.waitpid(-1, os.WNOHANG)
            print("a child left")
        except ChildProcessError:
            print("no child left")
    """, tmp_path)
    assert out.splitlines() == ["the preview failed", "whole", "no child left"]


def test_with_another_thread_running_the_work_is_done_here_at_once(tmp_path):
    with another_thread():
        assert not background.can_fork()
        made = []
        with background.alongside(lambda: made.append(os.getpid())) as forked:
            assert made == [os.getpid()] and not forked.forked


def test_a_result_worked_out_by_a_forked_copy_comes_back_whole(tmp_path):
    out = run("""
        import os
        from batchsms import background
        me = os.getpid()
        def work(n):
            return {"by": "copy" if os.getpid() != me else "here", "squares": [i * i for i in range(n)]}
        found = background.Elsewhere(work, 100_000).result()
        print(found["by"], len(found["squares"]), found["squares"][-1])
        def failing(n):
            if os.getpid() != me:
                raise MemoryError("the copy ran out")
            return n
        print(background.Elsewhere(failing, 7).result())
    """, tmp_path)
    assert out.split() == ["copy", "100000", str(99_999 ** 2), "7"]


def test_a_pool_that_cannot_take_the_work_leaves_it_to_this_process(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(1)
    pool.shutdown()
    with another_thread():  # and no fork: a thread runs
        found = background.Elsewhere(sorted, [3, 1, 2], pool=pool)
        assert found.result() == [1, 2, 3]


def test_a_small_sheet_s_work_is_done_here(tmp_path):
    out = run("""
        import os
        from batchsms import background
        me = os.getpid()
        made = []
        with background.alongside(lambda: made.append(os.getpid()), rows=background.MIN_ROWS - 1) as forked:
            print(forked.forked, made == [me])
        with background.alongside(lambda: None, rows=background.MIN_ROWS) as forked:
            print(forked.forked)
    """, tmp_path)
    assert out.split() == ["False", "True", "True"]


def test_a_copy_ends_on_ctrl_c_without_running_this_process_s_handlers(tmp_path):
    """In a copy, Ctrl-C and SIGTERM end it outright (their default): no KeyboardInterrupt can unwind this
    process's stack there; this process's own handling of them is left as it was."""
    out = run("""
        import os, signal
        from batchsms import background
        def work():
            with open("seen.txt", "w") as fh:
                fh.write(f"{signal.getsignal(signal.SIGINT) is signal.SIG_DFL} "
                         f"{signal.getsignal(signal.SIGTERM) is signal.SIG_DFL}")
        with background.alongside(work) as forked:
            pass
        print(forked is not None, open("seen.txt").read())
        print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        print(background.Elsewhere(lambda: signal.getsignal(signal.SIGINT) is signal.SIG_DFL).result())
    """, tmp_path)
    assert out.split() == ["True", "True", "True", "True", "True"]


@pytest.mark.parametrize("kernel", ["copies", "refuses at once", "stops halfway", "absent"])
def test_a_half_written_elsewhere_is_appended_whole(tmp_path, monkeypatch, kernel):
    """The preview's second half (a file a forked copy wrote) is appended by the kernel where it can, and
    by reading it here where it cannot, even from where the kernel stopped: the same bytes each way."""
    from batchsms import tables

    half = tmp_path / "half"
    half.write_bytes(bytes(range(256)) * 40_000 + b"end")
    real = getattr(os, "copy_file_range", None)
    if kernel == "refuses at once":
        def refused(*args):
            raise OSError(18, "Invalid cross-device link")
        monkeypatch.setattr(os, "copy_file_range", refused, raising=False)
    elif kernel == "stops halfway":
        calls = []

        def halfway(source, target, count):
            calls.append(count)
            if len(calls) > 1:
                raise OSError(38, "Function not implemented")
            return real(source, target, 1_000_001) if real else os.write(target, os.pread(source, 1_000_001, 0))
        monkeypatch.setattr(os, "copy_file_range", halfway, raising=False)
    elif kernel == "absent":
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    with open(tmp_path / "whole", "wb") as fh:
        fh.write(b"head,")
        tables.append_file(fh, half)
        fh.write(b",tail")
    assert (tmp_path / "whole").read_bytes() == b"head," + half.read_bytes() + b",tail"
