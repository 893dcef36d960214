"""The check by columns gives exactly the row-by-row check's verdicts, report and preview.

A generated sheet of tens of thousands of rows carries every problem a CSV file can: numbers
in every way people write them (valid, invalid, landlines, foreign, placeholders, two in a
cell, letters, invisible characters), empty and invisible texts, look-alikes forcing UCS-2,
texts too long, empty variables, duplicates with the same and another text, more than five
leased messages to one number, opt-outs, a Country column (filled, empty, naming no country),
formula-like cells, empty rows, a title above the header and a row longer than the header.
Each run is checked both ways (``check(by_columns=...)``) and compared whole: every row's
status, body, issues (in order), text and segments, the summary, the preview's figures, and
the report and preview files byte for byte.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from batchsms.check import CheckOptions, check
from batchsms.columnar import ColumnarReport
from batchsms.preview import Preview
from batchsms.pricing import Prices
from batchsms.sheet import ColumnRows, StreamedRows, load
from batchsms.template import MessageTemplate

from .helpers import workbook_parts

NOW = 1_800_000_000.0
ROWS = 16_000

FIRST = ["Olivia", "Jack", "Mia", "Leo", "Zoë 🌸", "José’s", "Chloé ❤", "Ngoc—Anh", "Bob;=cmd|' /C calc'!A0",
         "=SUM(A1:A2)", "@handle", "-1+2", "+tricky", " ", "", "\u200b", "Tab\tName", "Ann", "Łukasz", "A" * 500]
CLINICS = ["Bondi Dental", "Parramatta Dental", "Manly Dental", "", "Newtown – Dental", "Café ☕"]
COUNTRIES = ["", "", "", "", "", "", "NZ", "New Zealand", "au", "Narnia", "+64", "US"]


def _number(rng: random.Random, recent: list[str]) -> str:
    r = rng.random()
    if r < 0.05 and recent:
        return rng.choice(recent)
    digits = f"4{rng.randint(0, 9)}{rng.randint(0, 9999999):07d}"
    if r < 0.60:
        form = rng.randrange(10)
        number = (f"0{digits[:3]} {digits[3:6]} {digits[6:]}", f"+61 {digits[:3]} {digits[3:6]} {digits[6:]}",
                  f"61{digits}", f"0{digits}", f"(0{digits[:3]}) {digits[3:]}", f"+61-{digits}",
                  f"  0{digits}  ", f"0{digits[:3]}.{digits[3:6]}.{digits[6:]}", f"+61 (0) {digits}",
                  f"0011 61 {digits}")[form]
        if len(recent) < 300:
            recent.append(number)
        return number
    return rng.choice([
        "", "   ", "n/a", "none", "-", f"0412 345 6{rng.randint(0, 9)}", f"12345{rng.randint(0, 99)}",
        f"04{rng.randint(0, 99999999):08d}X", f"+61 2{rng.randint(0, 999):03d}", "0412 345 678", "0400 000 000",
        "0412 345 678; 0413 456 789", f"02 9{rng.randint(0, 9999999):07d}", f"+64 21 {rng.randint(0, 999999):06d}",
        f"6421{rng.randint(0, 999999):06d}", f"+1 415 555 {rng.randint(0, 9999):04d}",
        f"021 {rng.randint(0, 999999):06d}",
        "0412\u00a0345\u00a0679", "\u200b0412345680", "'0412345681", "0412-345-682 ext 5", "+61 412 345 6789",
        f"1300 {rng.randint(0, 999999):06d}", f"1800{rng.randint(0, 999999):06d}", "04 1234 5678", "+610412345683",
        "+ 61 412 345 684", "0061412345685", "+6141234568", "04123456789012345678", "٠٤١٢٣٤٥٦٧٨",
    ])


def _sheet_rows(count: int, seed: int, *, country: bool) -> list[list[str]]:
    rng = random.Random(seed)
    recent: list[str] = []
    header = ["First Name", "Last Name", "Mobile", "Clinic", "ExternalId", "Text"] + (["Country"] if country else [])
    rows: list[list[str]] = [["Campaign list"], [], header]
    for i in range(count):
        if rng.random() < 0.01:
            rows.append([])  # an empty row stays a row number
            continue
        if rng.random() < 0.003:
            rows.append([" ", "", "  "] + [""] * (len(header) - 3))  # a row of blanks: not a row
            continue
        text = rng.choice(["Hello there", "", "\u200b\u200b", "Hi ’ello – it’s us…" * rng.randint(1, 9),
                           "x" * rng.randint(150, 1700), "Reminder: see you soon", "€5 off {today}"])
        row = [rng.choice(FIRST), rng.choice(["Smith", "Nguyen", "", "O'Brien"]), _number(rng, recent),
               rng.choice(CLINICS), rng.choice(["", f"c{i}", f" id{i % 50} "]), text]
        if country:
            row.append(rng.choice(COUNTRIES))
        if rng.random() < 0.002:
            row += ["beyond", "the header"]
        rows.append(row)
    return rows


def _write(path: Path, rows: list[list[str]], delimiter: str = ",", quoting: bool = False) -> Path:
    lines = []
    for row in rows:
        cells = [('"' + c.replace('"', '""') + '"') if quoting and (delimiter in c or c.startswith("O")) else c
                 for c in row]
        lines.append(delimiter.join(cells))
    if quoting:  # a stray quote near the end: its row is an error, the lines it swallowed rows of their own
        lines.insert(len(lines) - 5, '"Ann,Smith,0412345690,Bondi Dental,,hello')
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


@pytest.fixture(scope="module")
def sheets(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("columnar")
    return {
        "plain": _write(folder / "plain.csv", _sheet_rows(ROWS, 7, country=False)),
        "country": _write(folder / "country.csv", _sheet_rows(ROWS // 8, 11, country=True), delimiter=";"),
        "quoted": _write(folder / "quoted.csv", _sheet_rows(ROWS // 10, 13, country=False), quoting=True),
        "small": _write(folder / "small.csv", _sheet_rows(ROWS // 8, 17, country=False)),
    }


DELIMITERS = {"plain": ",", "country": ";", "quoted": ",", "small": ","}
TEMPLATE = "Hi {{ First_Name }}, your {{ Clinic }} appointment is confirmed. Reply STOP to opt out."


def _options(sheet, kind: str, **extra) -> CheckOptions:
    if kind == "plain":
        template = MessageTemplate(TEMPLATE, sheet.header, name="t.txt")
    elif kind in ("constant", "empty"):  # a template that reads no cell
        template = MessageTemplate("Hello there. Reply STOP to opt out." if kind == "constant" else "", sheet.header,
                                   name="c.txt")
    elif kind == "jinja":
        template = MessageTemplate("Hi {{ First_Name | default('there', true) }} {{ Last_Name | upper }} "
                                   "{{ Text }}", sheet.header, name="j.txt")
    else:
        template = None
    return CheckOptions(template=template, now=NOW, **extra)


def _compare(path: Path, kind: str, tmp_path: Path, prices: Prices | None = None, helpers=None,
             **extra) -> ColumnarReport:
    by_rows_sheet = load(path, columnar=False, delimiter=DELIMITERS[path.stem])
    by_columns_sheet = load(path, columnar=True, delimiter=DELIMITERS[path.stem])
    rows = check(by_rows_sheet, _options(by_rows_sheet, kind, **extra), by_columns=False)
    columns = check(by_columns_sheet, _options(by_columns_sheet, kind, **extra), helpers=helpers, by_columns=True)
    assert isinstance(columns, ColumnarReport)
    assert type(rows) is not ColumnarReport
    zone = ZoneInfo("Australia/Sydney")
    # the files and figures first, from the columns (before anything builds RowResults)
    assert columns.summary() == rows.summary()
    assert columns.ok == rows.ok
    assert [i.record() for i in columns.issues()] == [i.record() for i in rows.issues()]
    columns.write(tmp_path / "c.report.csv")
    rows.write(tmp_path / "r.report.csv")
    assert (tmp_path / "c.report.csv").read_bytes() == (tmp_path / "r.report.csv").read_bytes()
    preview_columns = Preview.build(columns, zone, prices)
    preview_rows = Preview.build(rows, zone, prices)
    assert preview_columns.figures() == preview_rows.figures()
    assert preview_columns.summary_rows() == preview_rows.summary_rows()
    preview_columns.write(tmp_path / "c.preview.csv")
    preview_rows.write(tmp_path / "r.preview.csv")
    assert (tmp_path / "c.preview.csv").read_bytes() == (tmp_path / "r.preview.csv").read_bytes()
    if isinstance(by_columns_sheet.rows, StreamedRows):  # all that without holding the rows
        assert by_columns_sheet.rows._rows is None
    # then every row, as RowResults
    assert len(columns.results) == len(rows.results)
    for mine, theirs in zip(columns.results, rows.results, strict=True):
        assert mine == theirs, (mine, theirs)
    return columns


def test_the_generated_sheet_is_read_by_columns_and_has_every_problem(sheets):
    sheet = load(sheets["plain"], columnar=True, delimiter=",")
    assert isinstance(sheet.rows, ColumnRows)
    report = check(sheet, _options(sheet, "plain"), by_columns=True)
    assert {i.code for i in report.issues()} == {
        "avoidable-ucs2", "duplicate-message", "duplicate-recipient", "empty-variable", "invalid-phone", "lease-limit",
        "missing-recipient", "not-mobile", "placeholder-number", "read-as-international", "two-numbers"}
    assert report.settled.sum() > ROWS // 3  # most rows settled by columns, the rest per distinct cell


def test_template_rows_equal(sheets, tmp_path):
    _compare(sheets["plain"], "plain", tmp_path)


def test_workbook_preview_equal(sheets, tmp_path):
    by_columns = load(sheets["small"], columnar=True, delimiter=",")
    rows = check(load(sheets["small"], columnar=False, delimiter=","), _options(by_columns, "plain"),
                 by_columns=False)
    zone = ZoneInfo("Australia/Sydney")
    Preview.build(check(by_columns, _options(by_columns, "plain"), by_columns=True), zone).write(
        tmp_path / "c.preview.xlsx")  # a workbook preview of a check by columns: from its RowResults
    Preview.build(rows, zone).write(tmp_path / "r.preview.xlsx")
    assert workbook_parts(tmp_path / "c.preview.xlsx") == workbook_parts(tmp_path / "r.preview.xlsx")


def test_text_column_with_prices_dedupe_and_opt_outs_equal(sheets, tmp_path):
    suppress = frozenset({"+61412345678", "+61400000000", "+64211234567"})
    prices = Prices({"AU": Decimal("0.0575"), "NZ": Decimal("0.09")}, None)
    report = _compare(sheets["small"], "text", tmp_path, prices, dedupe=True, suppress=suppress,
                      max_segments=4, allow_landlines=True)
    assert {i.code for i in report.issues()} >= {"duplicate-skipped", "too-many-segments", "empty-text"}


def test_jinja_template_and_other_countries_equal(sheets, tmp_path, monkeypatch):
    from batchsms import columnar, sheet

    monkeypatch.setattr(sheet, "PANDAS_CSV_BYTES", 0)  # read as big files are: pandas' C parser
    monkeypatch.setattr(sheet, "PANDAS_CSV_LINES", 0)
    monkeypatch.setattr(columnar, "FACTORIZE_ROWS", 0)  # ... and their distinct cells found by pandas
    _compare(sheets["small"], "jinja", tmp_path, countries=("AU", "NZ"))


def test_country_column_equal(sheets, tmp_path):
    report = _compare(sheets["country"], "plain", tmp_path, countries=("NZ",))
    assert report.special  # filled Country cells are checked row by row
    assert "invalid-country" in {i.code for i in report.issues()}


def test_quoted_sheet_read_by_csv_equal(sheets, tmp_path):
    sheet = load(sheets["quoted"], columnar=True, delimiter=",")
    assert not isinstance(sheet.rows, ColumnRows)  # quotes: pandas is not the reader of record
    report = _compare(sheets["quoted"], "plain", tmp_path)
    assert "unclosed-quote" in {i.code for i in report.issues()}
    assert report.special


@pytest.fixture
def small_pieces(monkeypatch):
    """Sheets stream as if too big to hold, in small pieces, chunks and blocks (their boundaries fall anywhere),
    and their previews are written by two processes."""
    from batchsms import columnar, columnar_preview, sheet

    monkeypatch.setattr(sheet, "STREAM_BYTES", 1)
    monkeypatch.setattr(sheet, "PIECE_BYTES", 4099)
    monkeypatch.setattr(columnar, "CHUNK_ROWS", 1009)
    monkeypatch.setattr(columnar_preview, "BLOCK", 997)
    monkeypatch.setattr(columnar_preview, "PARALLEL_ROWS", 1000)  # the preview's second half by a fork
    monkeypatch.setattr(columnar, "SPLIT_ROWS", 500)  # each chunk's recipients judged in two halves


@pytest.mark.parametrize("name,kind", [("small", "plain"), ("country", "plain"), ("small", "text")])
def test_a_sheet_too_big_to_hold_is_streamed_with_the_same_verdicts(sheets, tmp_path, small_pieces, name, kind):
    sheet = load(sheets[name], delimiter=DELIMITERS[name])
    assert isinstance(sheet.rows, StreamedRows)
    assert sheet.rows._rows is None
    report = _compare(sheets[name], kind, tmp_path, dedupe=name == "small")
    assert isinstance(report.sheet.rows, StreamedRows)


def test_a_helper_process_judges_half_the_recipients_with_the_same_verdicts(sheets, tmp_path, monkeypatch):
    """With helpers passed to the check (the Python API takes them), the second half of the recipient
    column is judged in a helper process: every verdict and file is still the row-by-row one."""
    from batchsms import background, columnar
    from batchsms.parallel import start_helpers

    monkeypatch.setattr(columnar, "SPLIT_ROWS", 1000)
    made = []
    init = background.Elsewhere.__init__
    monkeypatch.setattr(background.Elsewhere, "__init__",
                        lambda self, *a, **k: made.append(self) or init(self, *a, **k))
    helpers = start_helpers(2)
    if helpers is None:
        pytest.skip("no forkserver on this platform")
    with helpers:
        _compare(sheets["plain"], "plain", tmp_path, helpers=helpers)
    assert len(made) == 1
    assert made[0]._future is not None and made[0]._future.exception() is None  # the helper answered


FORKED_CLI = """
import os, sys
from batchsms import background, check, cli, columnar, columnar_preview, sheet
check.COLUMNAR_MIN_ROWS, columnar.SPLIT_ROWS, columnar_preview.PARALLEL_ROWS = 1000, 1000, 1000
sheet.COLUMNAR_CSV_BYTES = sheet.PANDAS_CSV_BYTES = sheet.PANDAS_CSV_LINES = 0  # pandas: columns parsed when read
sheet.COLUMNAR_CSV_LINES = 0
background.MIN_ROWS = 1000
me, ways = os.getpid(), []
result = background.Elsewhere.result
def where(self):
    ways.append("helper" if self._future is not None else "fork" if self._pid else "here")
    return result(self)
background.Elsewhere.result = where
forked = background.Forked.__init__
def counted(self, work, **kwargs):
    forked(self, work, **kwargs)
    ways.append("copy" if self.forked else "here")
background.Forked.__init__ = counted
sys.argv = ["batchsms"] + sys.argv[1:]
try:
    cli.main()
finally:
    if os.getpid() == me:
        sys.stderr.write(f"ways={ways}\\n")
"""


def test_the_cli_with_every_fork_writes_what_the_row_by_row_check_writes(sheets, tmp_path):
    """`batchsms check` on a big sheet has a share of the recipients judged by a forked copy (which parses
    the recipient column itself), the report written by another beside the preview, and half of the
    preview by a third: its report and preview are byte for byte the row-by-row check's."""
    import os
    import subprocess
    import sys

    import batchsms

    env = dict(os.environ, PYTHONPATH=str(Path(batchsms.__file__).resolve().parents[1]))
    env.pop("BATCHSMS_CHECK", None)
    (tmp_path / "sheet").mkdir()
    plain = _with_ids(sheets["plain"], tmp_path / "sheet")  # its columns parsed when first read, in both copies
    written = {}
    for way in ("columns", "rows"):
        folder = tmp_path / way
        folder.mkdir()
        argv = [sys.executable, "-c", FORKED_CLI, "check", str(plain),
                "--template", str(_template_file(tmp_path)), "--report", str(folder / "r.csv"),
                "--preview", str(folder / "p.csv"), "--json", "--delimiter", ","]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                              env=dict(env, BATCHSMS_CHECK=way, BATCHSMS_STATE=str(tmp_path / "state")))
        assert done.returncode == 1, done.stderr  # the sheet has errors on purpose
        written[way] = (folder / "r.csv").read_bytes(), (folder / "p.csv").read_bytes(), done.stderr
    assert written["columns"][:2] == written["rows"][:2]
    # recipients' second half by a fork, then the report and the preview's second half by forked copies
    assert "ways=['fork', 'copy', 'copy']" in written["columns"][2]
    assert "ways=['copy']" in written["rows"][2]  # row by row: the report beside the preview


def _template_file(folder: Path) -> Path:
    path = folder / "t.txt"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


def test_a_sheet_read_row_by_row_gives_each_column_once(tmp_path):
    """A sheet the csv module read (rows, not columns) hands the check by columns each column once: asked
    once per distinct message, it kept a 60,000-row send with a Jinja template checking for minutes."""
    from batchsms.sheet import Sheet

    class CountedRows(list):
        walks = 0

        def __iter__(self):
            CountedRows.walks += 1
            return super().__iter__()

    header = ["Name", "Mobile", "Clinic"]
    rows = CountedRows([[f"Name{i}", f"04{10_000_000 + i:08d}", "Bondi"] for i in range(3000)])
    sheet = Sheet(tmp_path / "s.csv", header, rows, list(range(2, 3002)), "csv", raw_header=header)
    from batchsms.sheet import map_columns

    sheet.columns = map_columns(sheet, ())
    template = MessageTemplate("Hi {{ Name | upper }} at {{ Clinic }}", header, name="j.txt")  # Jinja: reads any cell
    report = check(sheet, CheckOptions(template=template, now=NOW), by_columns=True)
    assert isinstance(report, ColumnarReport)
    assert report.summary()["rows_valid"] == 3000
    assert CountedRows.walks <= 10  # a few passes over the rows, not one per distinct message (3,000)


@pytest.mark.parametrize("kind", ["constant", "empty"])
def test_a_template_without_variables_equal(sheets, tmp_path, kind):
    """One message for every row (a template that reads no cell crashed the check by columns)."""
    report = _compare(sheets["small"], kind, tmp_path)
    assert len(report.messages.texts) == 1


@pytest.mark.parametrize(("filled", "by_columns"), [(0.6, False), (0.4, True)])
def test_a_sheet_whose_rows_mostly_name_a_country_is_checked_row_by_row(tmp_path, monkeypatch, filled, by_columns):
    """Rows with a Country cell go through the row-by-row rules anyway: when they are most of the sheet, the
    row-by-row check is chosen (quicker), else the check by columns."""
    from batchsms import check as check_module

    monkeypatch.setattr(check_module, "COLUMNAR_MIN_ROWS", 100)
    rng = random.Random(5)
    lines = ["Name,Mobile,Country"] + [f"N{i},04{rng.randrange(10**8):08d},{'AU' if i < filled * 400 else ''}"
                                       for i in range(400)]
    path = tmp_path / "countries.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sheet = load(path)
    report = check(sheet, CheckOptions(template=MessageTemplate("Hi {{ Name }}", sheet.header), now=NOW))
    assert isinstance(report, ColumnarReport) is by_columns


def test_rows_are_ordered_by_recipient_stably_whatever_the_numbers():
    """The rules across rows rank rows by recipient key, earlier rows first: one sort of key-then-position
    where both fit in 63 bits, numpy's stable sort otherwise (keys of numbers too long for an int64 are
    negative); the same order either way."""
    import numpy as np

    from batchsms.columnar import _stable_order

    rng = np.random.default_rng(3)
    for count in (0, 1, 2, 7, 5000):
        for low, span in ((61_400_000_000, 1), (61_400_000_000, 1000), (61_400_000_000, 10**9), (0, 10**14),
                          (-50, 100), (-(2**62), 2**63 - 1)):
            values = rng.integers(0, span, count, dtype=np.int64) + low
            assert _stable_order(values).tolist() == np.argsort(values, kind="stable").tolist(), (count, span)


def _with_ids(path: Path, folder: Path, ends: str = "\r\n") -> Path:
    """``path`` (a sheet above, delimited by commas) with a first column of ids from its header on, so that
    few lines start like an empty row and a big file's reading parses its columns lazily (its own empty
    rows stay); ``ends``: its line ends, or "mixed"."""
    lines = [(f"r{i}," if i > 1 and any(c.strip() for c in line.split(",")) else "") + line
             for i, line in enumerate(path.read_bytes().decode("utf-8").split("\r\n")[:-1])]
    assert any(not line.replace(",", "").strip() for line in lines)
    if ends == "mixed":
        body = "".join(line + ("\n" if i % 3 else "\r\n") for i, line in enumerate(lines))
    else:
        body = ends.join(lines) + ends
    made = folder / path.name
    made.write_bytes(body.encode("utf-8"))
    return made


@pytest.mark.parametrize("ends", ["\r\n", "\n", "mixed"])
def test_a_file_parsed_column_by_column_writes_the_same_preview_whatever_its_line_ends(sheets, tmp_path, monkeypatch,
                                                                                       ends):
    """A big file's columns are parsed when first read and its preview lines cut from its bytes, at \\r\\n
    when every line ends so (found by the line scan), else at \\n: the same report and preview as row by row."""
    from batchsms import sheet as sheet_module
    from batchsms.sheet import LazyColumns

    monkeypatch.setattr(sheet_module, "PANDAS_CSV_BYTES", 0)
    monkeypatch.setattr(sheet_module, "PANDAS_CSV_LINES", 0)
    folder = tmp_path / ends.replace("\r", "r").replace("\n", "n")
    folder.mkdir()
    path = _with_ids(sheets["small"], folder, ends)
    sheet = load(path, columnar=True, delimiter=",")
    assert isinstance(sheet.rows.columns, LazyColumns)
    assert sheet.rows.source.crlf is (ends == "\r\n")
    _compare(path, "plain", folder)
