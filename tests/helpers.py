"""Make real contact sheets for the tests (CSV in any encoding and delimiter, .xlsx via openpyxl), run
``batchsms send`` against a sandbox, read what came back, and normalise output for golden comparisons."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import openpyxl
from click.testing import CliRunner

from batchsms.cli import main


def write_csv(path: Path, rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",") -> Path:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, rows: list[list[object]], *, title: str = "Sheet1", extra_sheets=(),
               formulas: bool = True) -> Path:
    """A workbook; with ``formulas=False`` a cell text starting with = is stored as text, not a formula."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
        if not formulas:
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"
    for name in extra_sheets:
        wb.create_sheet(name)
    wb.save(path)
    return path


def workbook_parts(path: Path) -> dict[str, bytes]:
    """Every part of a workbook, byte for byte, but for the times it was written: the created/modified dates
    differ between two writes a moment apart (the zip entries' own clock is not in the parts)."""
    with zipfile.ZipFile(path) as zf:
        return {name: re.sub(rb"<dcterms:(created|modified)[^<]*</dcterms:\1>", b"", zf.read(name))
                for name in zf.namelist()}


def add_cached_formula_values(path: Path, values: dict[str, str]) -> None:
    """openpyxl writes formulas without results; put in the cached values Excel would have saved."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                for ref, value in values.items():
                    text = re.sub(rf'(<c r="{ref}"[^>]*>)<f>(.*?)</f><v\s*/>', rf"\1<f>\2</f><v>{value}</v>", text)
                data = text.encode()
            dst.writestr(item, data)
    shutil.move(tmp, path)


# --------------------------------------------------------------------------- sending through the CLI


def contacts(n, start=0):
    """n valid, distinct recipients with an ExternalId to find each row in what the sandbox took."""
    return [["Mobile", "Name", "ExternalId"]] + [
        [f"04{12000000 + i:08d}", f"Name{i}", f"id{i}"] for i in range(start, start + n)
    ]


def drop(path: Path, rows: list[list[str]], age: float = 60.0) -> Path:
    """A CSV written a while ago (``age`` seconds: a drop folder takes it as fully written)."""
    write_csv(path, rows)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def env_for(server, tmp_path, token=None):
    """The environment that points ``batchsms send`` at ``server``, with no config file of the user's."""
    return {
        "BATCHSMS_BASE_URL": server.url, "BATCHSMS_ACCOUNT_SID": server.account_sid,
        "BATCHSMS_AUTH_TOKEN": token or server.auth_token, "BATCHSMS_PROPERTY_SID": "PS1",
        "XDG_CONFIG_HOME": str(tmp_path / "config"), "BATCHSMS_CONFIG": "",
    }


def send(server, tmp_path, *args, token=None, **kwargs):
    """``batchsms send ARGS --yes`` in this process (CliRunner)."""
    argv = ["send", *[str(a) for a in args]]
    if "--yes" not in argv:
        argv.append("--yes")
    return CliRunner().invoke(main, argv, env=env_for(server, tmp_path, token), catch_exceptions=False, **kwargs)


def send_held(server, tmp_path):
    """Two rows due in three hours sent with ``--hold`` (kept here, not yet handed over): (env, results path)."""
    at = int(time.time() + 3 * 3600)
    path = write_csv(tmp_path / "c.csv", [["Phone", "Name", "Schedule"], ["0412 555 120", "Ann", str(at)],
                                         ["0412 555 121", "Bo", str(at)]])
    env = env_for(server, tmp_path)
    r = CliRunner().invoke(main, ["send", str(path), "--text", "Hi {{ Name }}", "--yes", "--quiet", "--hold",
                                  "--timezone", "UTC"], env=env)
    assert r.exit_code == 0, r.output
    return env, tmp_path / "c.results.csv"


def start_send(server, tmp_path, sheet, *extra):
    """``batchsms send`` in a child process (for signals), 4 requests in flight at most."""
    env = {**os.environ, **env_for(server, tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-m", "batchsms", "send", str(sheet), "--text", "Hi {{ Name }}", "--yes", "--quiet",
         "--concurrency", "4", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_until(condition, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def read_results(path):
    """The results file as one dict per row, keyed by its header (CSV or .xlsx)."""
    if str(path).endswith(".xlsx"):
        ws = openpyxl.load_workbook(path).active
        rows = [["" if c.value is None else str(c.value) for c in row] for row in ws.iter_rows()]
    else:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
    header = rows[0]
    return [dict(zip(header, r, strict=True)) for r in rows[1:]]


def taken_ids(server):
    """The ExternalId of every message the sandbox took, in the order it took them."""
    with server.state.lock:
        return [b.get("ExternalId") for b in server.state.taken]


def requests_seen(server):
    """How many requests the sandbox has read (counted as each arrives, before any --latency)."""
    with server.state.lock:
        return server.state.stats["requests"]


# --------------------------------------------------------------------------- golden output


def normalise(text, tmp_path):
    """Output with what changes from run to run replaced: the test's folder, loopback ports, speeds."""
    text = text.replace(str(tmp_path), "<tmp>")
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)
    return re.sub(r"\(\d[\d,.]* msg/s\)", "(<speed> msg/s)", text)
