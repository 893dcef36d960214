"""Hostile review of the "second core" work (background.py, the split recipient column, the report written by a
forked copy, the preview in two halves, os.writev, the streamed first-byte scan).

PASS tests pin what holds: the check by columns, with every fork and split forced on tiny sheets, writes the
row-by-row check's report and preview byte for byte (edge sheets), and leaves no child and no stray file; the
same without fork or os.writev (Windows); a short os.writev is redone; the streamed scan finds csv's empty rows.

The review's findings, now regressions: a fork that fails (EAGAIN/ENOMEM) leaves the work to this process
instead of aborting the run; a forked half-column judge is stopped and reaped when this process's half fails;
a report path that cannot be written is refused before anything is written; a killed report copy's temp file
is removed; and the report's "other readings" text no longer changes with PYTHONHASHSEED.

Real forks happen only in child interpreters (a pytest process may run threads, and then never forks).
"""

from __future__ import annotations

import errno
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import batchsms
from batchsms import background, columnar, columnar_preview, tables
from batchsms import check as check_module
from batchsms import sheet as sheet_module

ROOT = Path(batchsms.__file__).resolve().parents[1]
needs_fork = pytest.mark.skipif(not hasattr(os, "fork") or not Path("/proc/self/fd").exists(),
                                reason="needs fork and /proc")


def run_child(code: str, cwd: Path, **env: str) -> str:
    """Run ``code`` in a fresh interpreter (no threads: it forks for real); its stdout."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), BATCHSMS_STATE=str(cwd / "state"), **env)
    environment.pop("BATCHSMS_CHECK", None)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=environment)
    assert done.returncode == 0, done.stderr
    return done.stdout


# --------------------------------------------------------------------------- PASS: what holds

EDGE_SHEETS = r'''
H = "First Name,Mobile,Text\r\n"
SHEETS = {
    "one row": (H + "Ann,0412345678,hello\r\n", {}),
    "all invalid": (H + "".join(f"N{i},12345{i},hi\r\n" for i in range(9)), {}),
    "other readings": (H + "".join(f"N{i},+64 21 12345{i},hi\r\n" for i in range(5))
                       + "".join(f"M{i},0212345{i:02d},hi\r\n" for i in range(7)), {"countries": ("AU", "NZ")}),
    "dedupe and opt-outs": (H + "".join(f"N{i},041234567{i % 3},hi\r\n" for i in range(9)),
                            {"dedupe": True, "suppress": frozenset({"+61412345670"})}),
    "leases": (H + "".join(f"N{i},0412345678,hi {i % 2}\r\n" for i in range(9)), {}),
    "semicolons": (H.replace(",", ";") + "".join(f"N{i};041234567{i};hi, there\r\n" for i in range(7)), {}),
    "LF only": (H.replace("\r\n", "\n") + "".join(f"=N{i},+61 41234567{i},@hi\n" for i in range(7)), {}),
    "country, all special": ("First Name,Mobile,Text,Country\r\n"
                             + "".join(f"N{i},0212345{i:02d},hi,{['AU', 'NZ', 'Narnia'][i % 3]}\r\n" for i in range(9)),
                             {"countries": ("NZ",)}),
    "blank lines": (H + "Ann,0412345678,hello\r\n\r\n , , \r\n\u00a0,\u3000,\r\n\u2003,,\r\n\u200b,,\r\n"
                    "\u00a0Bob,0412345679,hi\r\n\u3000,0412345670,hi\r\n\r\n", {}),
    "long and short rows": (H + "".join(f"N{i},041234567{i},{'x' * 400 * (i % 2)},extra\r\n" for i in range(5))
                            + "Cy,0412345671\r\n", {"max_segments": 2}),
}
'''

EQUIVALENCE = EDGE_SHEETS + r'''
import json, os
from pathlib import Path
from zoneinfo import ZoneInfo
from batchsms import background, columnar, columnar_preview, sheet as S
from batchsms.check import CheckOptions, check
from batchsms.preview import Preview
from batchsms.sheet import load
from batchsms.template import MessageTemplate

forks = []
real_fork = os.fork
def counting_fork():
    forks.append(1)
    return real_fork()
os.fork = counting_fork
background.MIN_ROWS, columnar.SPLIT_ROWS, columnar_preview.PARALLEL_ROWS = 0, 2, 2
columnar_preview.BLOCK, columnar.CHUNK_ROWS, S.PIECE_BYTES = 3, 4, 16
found = {}
for name, (text, extra) in SHEETS.items():
    for stream in (False, True):
        folder = Path(f"case{len(found)}")
        folder.mkdir()
        path = folder / "s.csv"
        path.write_bytes(text.encode("utf-8"))
        files = {}
        for way in ("rows", "columns"):
            S.STREAM_BYTES = 1 if stream and way == "columns" else 256 * 2**20
            sheet = load(path, columnar=way == "columns", delimiter=";" if "semicolons" in name else ",")
            template = MessageTemplate("Hi {{ First_Name }} {{ Text }}", sheet.header, name="t.txt")
            report = check(sheet, CheckOptions(template=template, now=1.8e9, **extra), by_columns=way == "columns")
            out = folder / way
            out.mkdir()
            with background.alongside(lambda: report.write(out / "r.csv"), rows=len(sheet.rows)):
                Preview.build(report, ZoneInfo("Australia/Sydney")).write(out / "p.csv")
            files[way] = [(out / n).read_bytes().hex() for n in ("r.csv", "p.csv")] + [sorted(os.listdir(out))]
        try:
            os.waitpid(-1, os.WNOHANG)
            left = True
        except ChildProcessError:
            left = False
        found[f"{name} ({'streamed' if stream else 'held'})"] = (files["rows"] == files["columns"], left,
                                                                  type(report).__name__, files["columns"][2])
print(json.dumps({"cases": found, "forks": len(forks)}))
'''


@needs_fork
def test_every_fork_and_split_on_edge_sheets_writes_the_row_by_row_bytes(tmp_path):
    """One row, all invalid, other readings, --dedupe with opt-outs, leases, ';', LF, a filled Country column on
    every row, non-ASCII spaces at line starts, long and short rows; held and streamed. Recipients judged in
    two halves by a forked copy, the report by another, the preview's second half by a third."""
    import json

    result = json.loads(run_child(EQUIVALENCE, tmp_path))
    assert result["forks"] >= 40  # the forks did happen (3 per columnar case, 1 per row-by-row report)
    assert len(result["cases"]) == 20
    for name, (same, child_left, kind, files) in result["cases"].items():
        assert (same, child_left, kind, files) == (True, False, "ColumnarReport", ["p.csv", "r.csv"]), name


def test_without_fork_or_writev_the_same_bytes(tmp_path, monkeypatch):
    """Windows: no os.fork, no os.writev. The split, the two-part preview and write_pieces fall back to this
    process and one write, and give the row-by-row bytes (blocks big enough for the os.writev branch)."""
    from zoneinfo import ZoneInfo

    from batchsms.check import CheckOptions, check
    from batchsms.preview import Preview
    from batchsms.sheet import load

    monkeypatch.delattr(os, "fork", raising=False)
    monkeypatch.delattr(os, "writev", raising=False)
    monkeypatch.setattr(background, "MIN_ROWS", 0)
    monkeypatch.setattr(columnar, "SPLIT_ROWS", 2)
    monkeypatch.setattr(columnar_preview, "PARALLEL_ROWS", 2)
    assert not background.can_fork()
    rng = random.Random(5)
    lines = ["Mobile,Text"] + [f"{rng.choice(['0412345678', '12345', '021234567', '', '04123456' + str(i % 90)])},"
                               f"{rng.choice(['hi', '', '=1+2', 'x' * 200])}" for i in range(600)]
    path = tmp_path / "s.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    made = {}
    for way in ("rows", "columns"):
        sheet = load(path, columnar=way == "columns")
        report = check(sheet, CheckOptions(now=1.8e9), by_columns=way == "columns")
        target = tmp_path / f"{way}.r.csv"
        with background.alongside(lambda r=report, t=target: r.write(t), rows=len(sheet.rows)) as forked:
            assert not forked.forked
            Preview.build(report, ZoneInfo("UTC")).write(tmp_path / f"{way}.p.csv")
        made[way] = [(tmp_path / f"{way}.{n}.csv").read_bytes() for n in ("r", "p")]
    assert type(report).__name__ == "ColumnarReport"
    assert made["columns"] == made["rows"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["columns.p.csv", "columns.r.csv", "rows.p.csv",
                                                          "rows.r.csv", "s.csv"]


@pytest.mark.skipif(not hasattr(os, "writev"), reason="no os.writev")
def test_a_short_writev_is_written_again_whole(tmp_path, monkeypatch):
    """os.writev may write less than it was given; write_pieces notices (the file's position) and rewrites."""
    real = os.writev
    calls = []

    def short(fd, buffers):
        calls.append(len(buffers))
        if len(calls) == 2:  # the second batch: only part of its first buffer
            return os.write(fd, bytes(buffers[0])[:3])
        return real(fd, buffers)

    monkeypatch.setattr(os, "writev", short)
    pieces = [f"line {i},".encode() * (i % 4) + b"\r\n" for i in range(3000)]
    with open(tmp_path / "out", "wb") as fh:
        fh.write(b"head\r\n")
        tables.write_pieces(fh, pieces)
        fh.write(b"tail\r\n")
    assert calls == [1024, 1024, 952]
    assert (tmp_path / "out").read_bytes() == b"head\r\n" + b"".join(pieces) + b"tail\r\n"


def test_the_streamed_first_byte_scan_finds_csv_s_empty_rows(tmp_path, monkeypatch):
    """Lines of spaces, delimiters and every kind of non-ASCII space (lead bytes C2/E1/E2/E3), and lines that
    only start like one; few of them (the per-line branch) and many (the numpy branch); pieces shorter than
    a line: the streamed sheet's row numbers are csv's."""
    from batchsms.sheet import StreamedRows, load

    soft = [" ", "\t", ",", "\u00a0", "\u3000", "\u2003", "\u0085", "\u1680", "\u2028", "\u205f", "\x1c", "\x0b"]
    hard = ["\u200b", "\u00a1", "\u2010", "\u3001", "\u180e", "\ufeff", "é", "a", "0"]
    for seed in range(40):
        rng = random.Random(seed)
        blanky = (0.02, 0.5, 0.95)[seed % 3]
        lines = ["First Name,Mobile,Text"]
        for i in range(rng.choice([20, 400])):
            if rng.random() < blanky:
                pool = soft if rng.random() < 0.7 else soft + hard
                lines.append("".join(rng.choice(pool) for _ in range(rng.randint(0, 5))))
            else:
                lines.append(f"N{i},0412345678,hi")
        end = "\r\n" if seed % 2 else "\n"
        path = tmp_path / f"s{seed}.csv"
        path.write_bytes((end.join(lines) + end * (seed % 4 > 0)).encode())
        monkeypatch.setattr(sheet_module, "STREAM_BYTES", 256 * 2**20)
        by_csv = load(path, columnar=False, delimiter=",")
        monkeypatch.setattr(sheet_module, "STREAM_BYTES", 1)
        monkeypatch.setattr(sheet_module, "PIECE_BYTES", (5, 64, 4096)[seed % 3])
        streamed = load(path, delimiter=",")
        assert isinstance(streamed.rows, StreamedRows)
        assert list(streamed.row_numbers) == list(by_csv.row_numbers), seed


# --------------------------------------------------------------------------- the review's findings, fixed


def _valid_sheet(folder: Path, rows: int = 30) -> Path:
    path = folder / "s.csv"
    path.write_bytes(("Mobile,Text\r\n" + "".join(f"04123456{i:02d},hello\r\n" for i in range(rows))).encode())
    return path


def test_a_failed_fork_does_the_work_here(tmp_path, monkeypatch):
    """A 1M-row process (~750 MB) forked under vm.overcommit_memory=2, or at RLIMIT_NPROC, gets ENOMEM/EAGAIN:
    background.py promises the work is then done here; Forked, Elsewhere (and so _in_two) let the OSError out."""
    def no_fork():
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    monkeypatch.setattr(background, "can_fork", lambda: True)  # as in a process without threads
    monkeypatch.setattr(background, "MIN_ROWS", 0)
    monkeypatch.setattr(check_module, "COLUMNAR_MIN_ROWS", 1)
    monkeypatch.setattr(columnar, "SPLIT_ROWS", 2)
    monkeypatch.setattr(columnar_preview, "PARALLEL_ROWS", 2)
    from batchsms.cli import main

    sheet = _valid_sheet(tmp_path)
    result = CliRunner().invoke(main, ["check", str(sheet), "--report", str(tmp_path / "r.csv"),
                                       "--preview", str(tmp_path / "p.csv")])
    assert (result.exit_code, (tmp_path / "r.csv").exists(), (tmp_path / "p.csv").exists()) == (0, True, True), \
        result.output


@needs_fork
def test_a_failed_half_leaves_no_forked_judge_behind(tmp_path):
    out = run_child("""
        import os, time
        from pathlib import Path
        from batchsms import columnar
        from batchsms.check import CheckOptions, check
        from batchsms.sheet import load
        me = os.getpid()
        columnar.SPLIT_ROWS = 10
        judge = columnar._judge
        def failing(*args):
            if os.getpid() == me:  # this process's half fails (a MemoryError, a Ctrl-C sent to this pid only)
                raise MemoryError("out of memory")
            return judge(*args)
        columnar._judge = failing
        Path("s.csv").write_text("Mobile,Text\\n" + "".join(f"9{i:07d},hi\\n" for i in range(4000)))
        sheet = load(Path("s.csv"), columnar=True)
        def pipes():
            found = set()
            for fd in os.listdir("/proc/self/fd"):
                try:
                    if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                        found.add(fd)
                except FileNotFoundError:  # the listing's own descriptor, closed since
                    pass
            return found
        before = pipes()
        try:
            check(sheet, CheckOptions(now=1.8e9), by_columns=True)
        except MemoryError:
            pass
        state = "child still running"
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                state = "no child"
                break
            time.sleep(0.05)
        print(state, len(pipes() - before))
    """, tmp_path)
    assert out.split() == ["no", "child", "0"]


FORKING_CLI = """
import sys
from batchsms import background, check, cli, columnar, columnar_preview
check.COLUMNAR_MIN_ROWS, columnar.SPLIT_ROWS, columnar_preview.PARALLEL_ROWS, background.MIN_ROWS = 1, 2, 2, 0
sys.argv = ["batchsms"] + sys.argv[1:]
cli.main()
"""


@needs_fork
def test_a_report_that_cannot_be_written_leaves_no_preview(tmp_path):
    sheet = _valid_sheet(tmp_path)
    environment = dict(os.environ, PYTHONPATH=str(ROOT), BATCHSMS_STATE=str(tmp_path / "state"))
    done = subprocess.run([sys.executable, "-c", FORKING_CLI, "check", str(sheet), "--report", "r.txt",
                           "--preview", "p.csv"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env=environment)
    assert done.returncode == 2 and "the report must end in .csv, .xlsx or .json" in done.stderr
    assert not (tmp_path / "p.csv").exists()  # before today: the report failed first, nothing was written


@needs_fork
def test_a_killed_report_copy_leaves_no_temp_file(tmp_path):
    _valid_sheet(tmp_path)
    out = run_child("""
        import os, signal, sys
        from batchsms import background, cli, tables
        me = os.getpid()
        real = tables._atomically
        def dies_in_the_copy(path, mode, write):
            def writing(tmp):
                if os.getpid() != me and path.name == "r.csv":  # the report's copy, killed mid-write
                    os.kill(os.getpid(), signal.SIGKILL)
                write(tmp)
            real(path, mode, writing)
        tables._atomically = dies_in_the_copy
        background.MIN_ROWS = 0  # the report by a forked copy, as for a sheet of 50,000 rows
        sys.argv = ["batchsms", "check", "s.csv", "--report", "r.csv", "--preview", "p.csv"]
        try:
            cli.main()
        except SystemExit as exit:
            print(exit.code, sorted(name for name in os.listdir(".") if name.endswith("csv") or "csv." in name))
    """, tmp_path)
    assert out.splitlines()[-1] == "0 ['p.csv', 'r.csv', 's.csv']"  # redone here, but the copy's temp file stays


def test_the_report_is_the_same_bytes_on_every_run(tmp_path):
    numbers = ["+33 6 12 34 56 78", "+31 6 12345678", "+27 82 123 4567", "0682034176", "0412345678"]
    (tmp_path / "s.csv").write_bytes(("Mobile,Text\r\n" + "".join(f"{n},hi\r\n" for n in numbers)).encode())
    code = """
        from pathlib import Path
        from batchsms.check import CheckOptions, check
        from batchsms.sheet import load
        check(load(Path("s.csv")), CheckOptions(now=1.8e9), by_columns=False).write(Path("r.csv"))
        print([line for line in Path("r.csv").read_bytes().decode("utf-8-sig").splitlines() if "if this is" in line])
    """
    lines = {run_child(code, tmp_path, PYTHONHASHSEED=seed) for seed in ("0", "1")}
    assert all("South African mobile" in line for line in lines)  # the reading to be listed is there
    assert len(lines) == 1, lines
