"""Every workbook the tool writes goes through tables.write_table: these tests write real files and read
them back with openpyxl (and batchsms' own reader) to check what a person opening them would see:
types, fills, comments, the filter, the frozen header, widths, the Summary sheet; and the same rows
as CSV text."""

from __future__ import annotations

import csv
import datetime as dt
import os
import stat
import zipfile
from xml.etree import ElementTree

import openpyxl
import pytest

from batchsms import sheet as sheet_module
from batchsms import tables
from batchsms.codes import Severity, Status
from batchsms.tables import FILLS, MAX_WIDTH, MIN_WIDTH, Marked, write_table

HEADER = ["Row", "Name", "Mobile", "Appointment", "Day", "Time", "Segments", "Cost", "Opted in", "Formula",
          "Status", "Problem"]
WHEN = dt.datetime(2026, 12, 1, 9, 30)
NOTE = "the number has 9 digits; an Australian mobile has 10 (04XX XXX XXX)"
ROWS: list[list[object]] = [
    [3, "Ann", "+61 412 345 678", WHEN, dt.date(2026, 12, 1), dt.time(9, 30), 1, 0.055, True, "=SUM(A1:A3)",
     "ready", ""],
    [4, "Bo", Marked("041234567", Severity.ERROR, NOTE), WHEN, None, None, 2, 1.5, False, "@cmd", Status.INVALID, NOTE],
    [5, Marked("", "warning", "blank first name: the message starts 'Hi ,'"), "0413000111", None, None, None, 1,
     None, None, "-2+3", "warning", ""],
    [6, "Cy", "0413000112", None, None, None, 0, None, None, "", "SKIPPED (duplicate)", ""],
    [7, "Di", "0413000113", None, None, None, 0, None, None, "", "unknown", ""],
    [8, "Ed", "0413000114", None, None, None, 1, None, None, "", "Sent", ""],
    [9, "Fi", "0413000115", None, None, None, 1, None, None, "", "something else", ""],
    [10, "Gus", "0413000116", None, None, None, 1, None, None, "", Marked("failed", "error", "API said no"), ""],
]
SUMMARY = [("Rows read", 8), ("Segments", 7), ("Estimated cost (AUD)", 2.75), ("Checked at", WHEN), ("Zone", "AEDT")]
PREAMBLE = [["Campaign: December reminders"], []]


def argb(colour: str) -> str:
    return "FF" + colour


@pytest.fixture
def workbook(tmp_path):
    path = tmp_path / "preview.xlsx"
    write_table(path, HEADER, iter(ROWS), sheet="Preview", preamble=PREAMBLE, status_column=HEADER.index("Status"),
                summary=SUMMARY)
    return openpyxl.load_workbook(path)


def test_values_keep_their_types(workbook):
    ws = workbook["Preview"]
    assert workbook.active.title == "Preview" and workbook.sheetnames == ["Preview", "Summary"]
    assert [c.value for c in ws[1]][:1] == ["Campaign: December reminders"]
    assert [c.value for c in ws[3]] == HEADER
    row = ws[4]
    assert (row[0].value, row[0].data_type) == (3, "n")  # Row sorts as a number
    assert (row[6].value, row[6].data_type) == (1, "n")  # =SUM over Segments works
    assert (row[7].value, row[7].data_type) == (0.055, "n")
    assert (row[8].value, row[8].data_type) == (True, "b")
    assert (row[2].value, row[2].data_type) == ("+61 412 345 678", "s")
    assert row[3].is_date and row[3].value == WHEN and row[3].number_format == "yyyy-mm-dd hh:mm:ss"
    assert row[4].is_date and row[4].value == dt.datetime(2026, 12, 1) and row[4].number_format == "yyyy-mm-dd"
    assert row[5].value == dt.time(9, 30) and row[5].number_format == "hh:mm:ss"
    # Never a live formula: a formula-looking string is a string, whatever it starts with.
    assert [(ws.cell(r, 10).value, ws.cell(r, 10).data_type) for r in (4, 5, 6)] == [
        ("=SUM(A1:A3)", "s"), ("@cmd", "s"), ("-2+3", "s")]
    assert ws["E5"].value is None and ws["L4"].value is None
    assert ws["K5"].value == "invalid"  # a str Enum is its value
    assert [ws.cell(r, 1).value for r in range(4, 12)] == list(range(3, 11))


def test_marks_fill_and_comment(workbook):
    ws = workbook["Preview"]
    error, warning = ws["C5"], ws["B6"]
    assert (error.value, error.data_type) == ("041234567", "s")
    assert error.fill.fgColor.rgb == argb(FILLS["error"]) and error.comment.text == NOTE
    assert warning.value is None and warning.fill.fgColor.rgb == argb(FILLS["warning"])
    assert warning.comment.text == "blank first name: the message starts 'Hi ,'"
    assert ws["C4"].comment is None and ws["C4"].fill.fill_type is None
    marked = [(c.coordinate, c.comment.text) for row in ws.iter_rows() for c in row if c.comment]
    assert marked == [("C5", NOTE), ("B6", "blank first name: the message starts 'Hi ,'"), ("K11", "API said no")]


def test_status_column_coloured_by_value(workbook):
    ws = workbook["Preview"]
    fills = {ws.cell(r, 11).value: ws.cell(r, 11).fill for r in range(4, 12)}
    colour = {value: (fill.fgColor.rgb if fill.fill_type else None) for value, fill in fills.items()}
    assert colour == {
        "ready": argb(FILLS["good"]), "invalid": argb(FILLS["error"]), "warning": argb(FILLS["warning"]),
        "SKIPPED (duplicate)": argb(FILLS["muted"]), "unknown": argb(FILLS["unknown"]), "Sent": argb(FILLS["good"]),
        "something else": None, "failed": argb(FILLS["error"]),
    }
    assert ws["K3"].fill.fill_type is None  # the header is not a status


def test_header_filter_freeze_and_widths(workbook):
    ws = workbook["Preview"]
    assert all(c.font.b for c in ws[3]) and not ws["A4"].font.b
    assert ws.auto_filter.ref == "A3:L11"
    assert ws.freeze_panes == "A4"
    widths = {letter: dim.width for letter, dim in ws.column_dimensions.items()}
    assert set(widths) == {chr(ord("A") + i) for i in range(len(HEADER))}
    assert all(MIN_WIDTH <= w <= MAX_WIDTH for w in widths.values())
    assert widths["A"] == MIN_WIDTH + 1  # "Row" + room for the filter button
    assert widths["C"] == len("+61 412 345 678") + 2  # the longest cell, not the header
    assert widths["L"] == MAX_WIDTH  # a 67-character problem: capped
    assert widths["D"] >= 19  # a date-time shows in full


def test_summary_sheet(workbook):
    ws = workbook["Summary"]
    assert [[c.value for c in row] for row in ws.iter_rows()] == [list(pair) for pair in SUMMARY]
    assert [ws.cell(r, 2).data_type for r in range(1, 4)] == ["n", "n", "n"]
    assert ws["B4"].is_date and ws["B4"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert all(ws.cell(r, 1).font.b for r in range(1, 6)) and not ws["B1"].font.b
    assert ws.column_dimensions["A"].width == len("Estimated cost (AUD)") + 2
    assert ws.freeze_panes is None and ws.auto_filter.ref is None


def test_same_rows_as_csv_are_text_and_inert(tmp_path):
    path = tmp_path / "preview.csv"
    write_table(path, HEADER, ROWS, preamble=PREAMBLE, status_column=10, summary=SUMMARY)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[:3] == [["Campaign: December reminders"], [], HEADER]
    assert rows[3] == ["3", "Ann", "+61 412 345 678", "2026-12-01 09:30:00", "2026-12-01", "09:30:00", "1", "0.055",
                       "TRUE", "'=SUM(A1:A3)", "ready", ""]
    assert rows[4] == ["4", "Bo", "041234567", "2026-12-01 09:30:00", "", "", "2", "1.5", "FALSE", "'@cmd", "invalid",
                       NOTE]
    assert rows[5][:2] == ["5", ""] and rows[5][9] == "'-2+3"
    assert rows[10][10] == "failed" and len(rows) == 3 + len(ROWS)


def test_csv_numbers_as_excel_shows_them():
    values = [3, 3.0, 1.5, 0.1 + 0.2, -12.5, 1e20, 2.5e-7, True, None, WHEN, dt.date(2026, 1, 2), dt.time(7, 5),
              "x", Status.SENT, Marked(7, "error", "n")]
    assert [tables.cell_text(v) for v in values] == [
        "3", "3", "1.5", "0.3", "-12.5", "1e+20", "2.5e-07", "TRUE", "", "2026-12-01 09:30:00", "2026-01-02",
        "07:05:00", "x", "sent", "7"]
    # The same reading as the workbook loader's, so a CSV reads back as the workbook would.
    for value in values[:-3]:
        assert tables.cell_text(value) == sheet_module.cell_text(value)


def test_awkward_text_and_numbers_survive(tmp_path):
    path = tmp_path / "t.xlsx"
    aware = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=11)))
    rows = [
        ["  padded  ", "a\r\nb", "x & <y> \"z\"", "bell\x07 and \x00nul", "a | b", "\ttab"],
        [10**15, 123456789012345, float("nan"), aware, dt.date(1899, 1, 1), dt.timedelta(hours=30)],
        ["y" * 40_000, Marked("v", "warning", "n" * 5000), "Zoë 🌸", "", None, Status.SENT],
    ]
    write_table(path, ["a", "b", "c", "d", "e", "f"], rows, sheet="a/b:c*[d]'")
    with zipfile.ZipFile(path) as zf:  # every part is well-formed XML
        for name in zf.namelist():
            if name.endswith((".xml", ".rels", ".vml")):
                ElementTree.fromstring(zf.read(name))
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    assert ws.title == "a_b_c__d_"
    assert [c.value for c in ws[2]] == ["  padded  ", "a\r\nb", 'x & <y> "z"', "bell and nul", "a | b", "\ttab"]
    big, exact, nan, wall, old, duration = ws[3]
    assert (big.value, big.data_type) == ("1000000000000000", "s")  # beyond 15 digits Excel would change it
    assert (exact.value, exact.data_type) == (123456789012345, "n")
    assert (nan.value, nan.data_type) == ("nan", "s")
    assert wall.value == dt.datetime(2026, 12, 1, 10, 0)  # Excel has no zones: the wall time
    assert old.value == "1899-01-01"  # before Excel's calendar is right: text
    assert duration.value == dt.timedelta(hours=30) and duration.number_format == "[h]:mm:ss"
    long, marked, emoji = ws["A4"], ws["B4"], ws["C4"]
    assert len(long.value) <= tables.MAX_CELL and long.value.endswith("more characters)")
    assert len(marked.comment.text) == tables.MAX_NOTE and marked.comment.text.endswith("…")
    assert emoji.value == "Zoë 🌸" and ws["F4"].value == "sent"
    assert ws.column_dimensions["A"].width == MAX_WIDTH


def test_batchsms_reads_back_what_it_wrote(tmp_path):
    path = tmp_path / "r.xlsx"
    write_table(path, HEADER, ROWS, preamble=PREAMBLE, status_column=10, summary=SUMMARY)
    book = sheet_module.read_workbook(path, None)
    assert book.sheet_name == "Sheet1"
    assert book.records[2] == HEADER
    assert book.records[3][:10] == ["3", "Ann", "+61 412 345 678", "2026-12-01 09:30:00", "2026-12-01", "09:30:00",
                                    "1", "0.055", "TRUE", "=SUM(A1:A3)"]


def test_many_comments_and_widths_from_a_sample(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "WIDTH_SAMPLE", 50)
    path = tmp_path / "many.xlsx"
    rows = ([i, Marked(f"v{i}", "error" if i % 2 else "warning", f"problem {i}")] for i in range(2100))

    def with_a_late_long_cell():
        yield from rows
        yield [1, "z" * 100]  # after the sample: does not widen the column

    write_table(path, ["n", "value"], with_a_late_long_cell())
    ws = openpyxl.load_workbook(path).active
    comments = [c.comment.text for row in ws.iter_rows(min_row=2) for c in row if c.comment]
    assert comments == [f"problem {i}" for i in range(2100)]  # more than one VML block of 1,024 shapes
    assert ws.column_dimensions["B"].width == len("value") + 4
    assert ws.auto_filter.ref == "A1:B2102" and ws.freeze_panes == "A2"


def test_atomic_with_mode_and_no_summary_clash(tmp_path):
    path = tmp_path / "r.xlsx"
    write_table(path, ["a"], [["1"]], sheet="summary", summary=[("x", 1)], mode=0o640)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert openpyxl.load_workbook(path).sheetnames == ["summary", "batchsms Summary"]
    before = path.read_bytes()

    def failing():
        yield ["2"]
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_table(path, ["a"], failing())
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["r.xlsx"]


def test_plain_text_rows_still_written_as_before(tmp_path):
    """report.py and results.py pass rows of text: the old call shape works, numbers in text stay text."""
    write_table(tmp_path / "r.xlsx", ["Row", "Value"], [["2", "=1+1"]], sheet="Report")
    ws = openpyxl.load_workbook(tmp_path / "r.xlsx")["Report"]
    assert [(c.value, c.data_type) for c in ws[2]] == [("2", "s"), ("=1+1", "s")]
    assert openpyxl.load_workbook(tmp_path / "r.xlsx").sheetnames == ["Report"]


def test_macro_enabled_suffix_and_a_wide_title_row(tmp_path):
    path = tmp_path / "r.xlsm"
    write_table(path, ["a", "b"], [["1", "2"]], preamble=[["title", "", "", "", "far right"]])
    with zipfile.ZipFile(path) as zf:
        assert "macroEnabled.main+xml" in zf.read("[Content_Types].xml").decode()
    ws = openpyxl.load_workbook(path).active
    assert ws.auto_filter.ref == "A2:B3" and ws.freeze_panes == "A3"  # the title row does not widen the filter


def test_marked_levels():
    assert type(Marked("x", Severity.WARNING).level) is str
    with pytest.raises(ValueError):
        Marked("x", "fatal", "n")
    with pytest.raises(TypeError):
        Marked(Marked("x", "error"), "error")  # type: ignore[arg-type]


def test_write_pieces_writes_exactly_the_joined_bytes_and_the_file_stays_usable(tmp_path, monkeypatch):
    """Millions of preview pieces go through os.writev: the file holds their join, and what is written
    after them lands after them (the buffered file is told where the pieces ended)."""
    pieces = [f"row {i},é\r\n".encode() if i % 3 else b"" for i in range(5000)]
    path = tmp_path / "pieces.csv"
    with open(path, "wb") as fh:
        fh.write(b"head\r\n")  # still in the buffer when the pieces go
        tables.write_pieces(fh, pieces)
        fh.write(b"tail\r\n")
    assert path.read_bytes() == b"head\r\n" + b"".join(pieces) + b"tail\r\n"
    monkeypatch.delattr(os, "writev")  # where there is none (Windows): joined, the same bytes
    with open(path, "wb") as fh:
        tables.write_pieces(fh, pieces)
    assert path.read_bytes() == b"".join(pieces)


def test_one_line_at_a_time_is_what_the_column_scan_writes():
    """tables.safe_csv_line (a report line made alone) gives safe_csv_lines' bytes for cells that need no
    quotes, quotes, delimiters, line breaks, a cell made inert (starting with '), or an apostrophe inside."""
    import random

    rng = random.Random(11)
    alphabet = ["a", "0", " ", ",", ";", '"', "'", "\r", "\n", "+", "é", "’", "\t"]
    rows = [["5", "Mobile", "0412 345 678", "error", "invalid-phone", "not a valid number"],
            ["6", "Mobile", "'=cmd", "error", "x", "row's Country column"],
            ["7", "Text", 'say "hi", then', "warning", "y", "two\nlines"], ["8", "", "", "", "", ""]]
    rows += [["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(6)] for _ in range(400)]
    for delimiter in (",", ";"):
        columns = [list(column) for column in zip(*rows, strict=True)]
        assert [tables.safe_csv_line(row, delimiter) for row in rows] == tables.safe_csv_lines(columns, delimiter)
