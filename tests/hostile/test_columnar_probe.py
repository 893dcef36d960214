"""Probes of the check by columns against the row-by-row check (verdicts, report and preview, byte for byte).

Each test loads the same file twice (``load(columnar=True)`` / ``columnar=False``), checks it
both ways (``check(by_columns=True/False)``) and compares the summary, every issue, the report
and preview files and every RowResult; one drives the real CLI in a subprocess with
``BATCHSMS_CHECK=rows|columns``. Probing found one difference, now mended: the example mobile of a
country whose national numbers are under 8 digits (Tokelau) went unflagged by columns.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from batchsms.check import CheckOptions, check
from batchsms.columnar import ColumnarReport
from batchsms.preview import Preview
from batchsms.pricing import Prices
from batchsms.sheet import load
from batchsms.template import MessageTemplate

NOW = 1_800_000_000.0
ZONE = ZoneInfo("Australia/Sydney")


def _both(path: Path, template: str | None, tmp_path: Path, *, delimiter: str | None = None,
          prices: Prices | None = None, **extra) -> tuple:
    """(rows report, columns report, rows files, columns files), each file as bytes."""
    made = {}
    for way in ("rows", "columns"):
        sheet = load(path, columnar=way == "columns", delimiter=delimiter)
        compiled = MessageTemplate(template, sheet.header, name="t.txt") if template is not None else None
        report = check(sheet, CheckOptions(template=compiled, now=NOW, **extra), by_columns=way == "columns")
        report.write(tmp_path / f"{way}.report.csv")
        preview = Preview.build(report, ZONE, prices)
        preview.write(tmp_path / f"{way}.preview.csv")
        made[way] = (report, preview.figures(), (tmp_path / f"{way}.report.csv").read_bytes(),
                     (tmp_path / f"{way}.preview.csv").read_bytes())
    return made["rows"], made["columns"]


def _assert_equal(path: Path, template: str | None, tmp_path: Path, **kwargs) -> ColumnarReport:
    (rows, rows_figures, rows_report, rows_preview), (columns, figures, report, preview) = _both(
        path, template, tmp_path, **kwargs)
    assert isinstance(columns, ColumnarReport) and not isinstance(rows, ColumnarReport)
    assert columns.summary() == rows.summary()
    assert [i.record() for i in columns.issues()] == [i.record() for i in rows.issues()]
    assert report == rows_report
    assert figures == rows_figures
    assert preview == rows_preview
    assert columns.results == rows.results
    return columns


# ----------------------------------------------------------------------------------------- findings


def test_tokelau_example_number_is_a_placeholder_both_ways(tmp_path):
    path = tmp_path / "tk.csv"
    path.write_text("Name,Mobile\nAnn,7290\nBob,7291\n", encoding="utf-8")
    columns = _assert_equal(path, "Hi {{ Name }}", tmp_path, country="TK")
    assert [i.code for i in columns.issues()] == ["placeholder-number"]


def test_tokelau_example_number_by_rows_is_a_placeholder(tmp_path):
    """What the row-by-row check says of the same sheet (the reference the test above holds the columns to)."""
    path = tmp_path / "tk.csv"
    path.write_text("Name,Mobile\nAnn,7290\nBob,7291\n", encoding="utf-8")
    sheet = load(path, columnar=False)
    report = check(sheet, CheckOptions(template=MessageTemplate("Hi {{ Name }}", sheet.header), now=NOW,
                                       country="TK"), by_columns=False)
    assert [(i.row, i.code) for i in report.issues()] == [(2, "placeholder-number")]


# ------------------------------------------------------------------ shapes probed equal (pinned here)


FIRST = ["Olivia", "", " ", "Zoë 🌸", "=SUM(A1)", "+x", "-1", "@h", "José’s", "\u200b", "A" * 300, "line\nbreak",
         'qu"ote', "a,b;c"]
CLINICS = ["Bondi", "", "Parra, matta", "Café ☕"]


def _number(rng: random.Random, recent: list[str]) -> str:
    if recent and rng.random() < 0.15:
        return rng.choice(recent)  # repeats: duplicates and more than five leases to one number
    d = f"4{rng.randint(0, 9)}{rng.randint(0, 9999999):07d}"
    if rng.random() < 0.6:
        number = rng.choice([f"0{d[:3]} {d[3:6]} {d[6:]}", f"+61 {d}", f"61{d}", f"(0{d[:3]}) {d[3:]}", f" 0{d} ",
                             f"+61 (0) {d}", f"0011 61 {d}", f"0{d[:3]}-{d[3:6]}-{d[6:]}"])
        if len(recent) < 40:
            recent.append(number)
        return number
    return rng.choice(["", "n/a", "0412 345 678", "0400 000 000", "0412345678; 0413456789", "02 9123 4567",
                       f"+64 21 {rng.randint(0, 999999):06d}", f"021 {rng.randint(0, 999999):06d}", "+1 415 555 0100",
                       "0412\u00a0345\u00a0679", "\u200b0412345680", "'0412345681", "٠٤١٢٣٤٥٦٧٨", "=0412345678",
                       "07700 900123", "0061412345685", "1300 123456"])


def _rows(count: int, seed: int, *, country: bool) -> list[list[str]]:
    rng = random.Random(seed)
    recent: list[str] = []
    rows = [["First Name", "Mobile", "Clinic", "ExternalId", "Text"] + (["Country"] if country else [])]
    for i in range(count):
        if rng.random() < 0.01:
            rows.append([])
            continue
        row = [rng.choice(FIRST), _number(rng, recent), rng.choice(CLINICS), rng.choice(["", f"c{i}", "=id", " x "]),
               rng.choice(["Hello", "", "x" * rng.randint(100, 1600), "Hi ’ello…", "Emoji 😀 " * rng.randint(1, 40),
                           "=1+1", "\u200b"])]
        if country:
            row.append(rng.choice(["", "", "", "NZ", "New Zealand", "au", "Narnia", " nz "]))
        rows.append(row)
    return rows


def _write_csv(path: Path, rows: list[list[str]], delimiter: str, line_end: str, bom: bool) -> Path:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=line_end).writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8"))
    return path


JINJA = ("{% if Clinic %}Hi {{ First_Name | default('you', true) | title }} at {{ row['Clinic'] | upper }}"
         "{% else %}Hello{% endif %} {% for c in First_Name[:3] %}{{ c }}.{% endfor %}")


@pytest.mark.parametrize("template,extra", [
    ("Hi {{ First_Name }} at {{ Clinic }}. Reply STOP to opt out.", {}),
    (JINJA, {"dedupe": True, "suppress": frozenset({"+61412345678", "+61412345682"})}),
    (None, {"max_segments": 2, "allow_landlines": True, "countries": ("AU", "NZ")}),
    ("{{ First_Name ~ (1 / 0 if Clinic == 'Bondi' else '') }} {{ Nope }}", {"country": "NZ"}),
])
def test_quoted_bom_crlf_semicolon_sheet_with_a_country_column_equal(tmp_path, template, extra):
    """Quoted cells with delimiters and line breaks, a BOM, CRLF, ';', a Country column (filled on some rows,
    some naming no country), repeats past the lease limit, formula-like cells, long and emoji texts: a plain
    template, a Jinja one with filters/loops/row[...], the Text column, and templates that fail on some rows."""
    path = _write_csv(tmp_path / "s.csv", _rows(1500, 22, country=True), ";", "\r\n", bom=True)
    _assert_equal(path, template, tmp_path, delimiter=";", **extra)


def test_tab_sheet_with_a_title_and_invisible_header_characters_equal(tmp_path):
    rows = [["Contacts"], []] + [["First\u00a0Name ", " MOBILE\u200b", "Clinic", "External Id", "text"]] \
        + _rows(1500, 23, country=False)[1:]
    path = _write_csv(tmp_path / "t.csv", rows, "\t", "\n", bom=False)
    prices = Prices({"AU": Decimal("0.0575"), "NZ": Decimal("0.09")}, None)
    report = _assert_equal(path, "Hi {{ First_Name }} {{ Clinic }}", tmp_path, delimiter="\t", prices=prices,
                           dedupe=True)
    assert report.external is not None  # the External Id column feeds ExternalId


def test_workbook_with_number_date_error_cells_hidden_rows_and_countries_equal(tmp_path):
    """Number cells (with formats), dates, Excel errors and formulas without values, hidden rows and a Country
    column: the file's problems and hidden rows go row by row, the rest by columns, with the same verdicts."""
    import datetime

    rng = random.Random(5)
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["Campaign"])
    ws.append([])
    ws.append(["Name", "Mobile", "Amount", "When", "Country"])
    for i in range(1200):
        number = rng.choice(["0412 345 699", "0412345700", 61412345701, 412345702, "#N/A", "=A1", "+64 21 123 4567",
                             f"04{rng.randint(10_000_000, 99_999_999)}"])
        ws.append([rng.choice(["Ann", "#REF!", "=1+1", "", f"N{i}"]), number, rng.choice([12.5, 3, 0.1 + 0.2, None]),
                   rng.choice([datetime.datetime(2026, 1, 5, 10, 30), datetime.date(2026, 3, 4), None]),
                   rng.choice(["", "", "", "NZ", "bogus", "Australia"])])
        row = ws.max_row
        ws.cell(row, 3).number_format = rng.choice(['"$"#,##0.00', "0%", "General"])
        ws.cell(row, 4).number_format = rng.choice(["dd/mm/yyyy", "yyyy-mm-dd h:mm", "General"])
        if isinstance(number, int):
            ws.cell(row, 2).number_format = rng.choice(["0", "General", '"+"0'])
        if rng.random() < 0.05:
            ws.row_dimensions[row].hidden = True
    path = tmp_path / "w.xlsx"
    book.save(path)
    report = _assert_equal(path, "Hi {{ Name }}, {{ Amount }} due {{ When }}", tmp_path,
                           suppress=frozenset({"+61412345700"}))
    codes = {i.code for i in report.issues()}
    assert {"hidden-row", "invalid-country", "suppressed", "lease-limit"} <= codes


CLI_TEMPLATE = "{% if Clinic %}{{ Clinic }}: {% endif %}Hi {{ First_Name | default('there', true) }}"


def test_the_cli_on_20000_rows_writes_the_same_both_ways(tmp_path):
    """The real CLI on 20,000 rows (a CSV over 2 MB: read by columns), with --external-id-column, --suppress,
    --price, --max-segments and --countries: same exit code, JSON summary, report and preview bytes."""
    import batchsms

    sheet = _write_csv(tmp_path / "big.csv", _rows(20_000, 31, country=False), ",", "\n", bom=False)
    assert sheet.stat().st_size > 2_000_000
    (tmp_path / "t.txt").write_text(CLI_TEMPLATE, encoding="utf-8")
    (tmp_path / "optouts.csv").write_text("Mobile\n0412 345 678\n+61 412 345 682\nnonsense\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(Path(batchsms.__file__).resolve().parents[1]),
               BATCHSMS_STATE=str(tmp_path / "state"))
    written = {}
    for way in ("columns", "rows"):
        folder = tmp_path / way
        folder.mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "batchsms", "check", str(sheet), "--template", str(tmp_path / "t.txt"),
             "--report", str(folder / "r.csv"), "--preview", str(folder / "p.csv"), "--json",
             "--external-id-column", "ExternalId", "--suppress", str(tmp_path / "optouts.csv"), "--price", "0.06",
             "--max-segments", "3", "--countries", "AU,NZ", "--timezone", "Australia/Sydney"],
            capture_output=True, text=True, timeout=120, env=dict(env, BATCHSMS_CHECK=way))
        summary = json.loads(done.stdout)
        summary.pop("report"), summary.pop("preview")  # the paths differ
        written[way] = done.returncode, summary, (folder / "r.csv").read_bytes(), (folder / "p.csv").read_bytes()
    assert written["columns"][0] == 1, written["columns"][1]  # the sheet has errors on purpose
    assert written["columns"] == written["rows"]
