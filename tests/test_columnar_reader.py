"""Reading a CSV file by columns (pandas' C parser) gives the very sheet ``csv.reader`` gives, or is not used.

Files are written here byte by byte, with what could tell the two parsers apart: blank and
whitespace-only lines, CRLF, rows shorter and longer than the header, trailing delimiters,
a title above the header, a BOM, control and Unicode line-separator characters inside
cells. Where pandas could read a file differently (quotes, NUL, a lone carriage return,
several BOMs, not UTF-8), the columnar reader steps aside and ``csv.reader`` reads it.
"""

from __future__ import annotations

import codecs
import random

import pytest

from batchsms.columnar import ColumnarReport
from batchsms.sheet import Columnar, ColumnRows, load

HEADER = "Name,Mobile,Clinic"


@pytest.fixture(params=["split", "pandas"], autouse=True)
def reader(request, monkeypatch):
    """Each test twice: small files split in Python, and as big files are read (pandas' C parser)."""
    from batchsms import sheet

    if request.param == "pandas":
        monkeypatch.setattr(sheet, "PANDAS_CSV_BYTES", 0)
        monkeypatch.setattr(sheet, "PANDAS_CSV_LINES", 0)
    return request.param


def _same_sheet(path, **kwargs) -> object:
    by_csv = load(path, columnar=False, **kwargs)
    by_columns = load(path, columnar=True, **kwargs)
    assert by_columns.rows == by_csv.rows
    assert list(by_columns.rows) == list(by_csv.rows)
    assert [by_columns.rows[i] for i in range(len(by_csv.rows))] == by_csv.rows
    for attribute in ("header", "row_numbers", "preamble", "raw_header", "columns", "header_row", "encoding",
                      "delimiter", "header_detected", "problems"):
        assert getattr(by_columns, attribute) == getattr(by_csv, attribute), attribute
    return by_columns


@pytest.mark.parametrize("body", [
    f"{HEADER}\n" + "Ann,0412345678,Bondi\n\n \nBob,0412345679\n,,\nCy,0412345670,Manly,extra,cells\n",
    f"{HEADER}\r\nAnn,0412345678,Bondi\r\n\r\nBob,0412345679,,\r\n",
    f"Title of the list\n\n{HEADER},,\nAnn,0412345678,Bondi,,\nBob,0412345679,Manly,x\n",
    f"{HEADER}\nAnn\x0bLee,0412345678,Bon\x0cdi\nBo\x1cb,0412\u2028345679,Ma\x85nly\n\t,\x1d,\u00a0\n",
    f"{HEADER}\nAnn,0412345678,Bondi",  # no line break at the end
    f"{HEADER}\nAnn,0412345678,Bondi\n\n\n",
])
def test_plain_files_read_by_columns_equal_csv(tmp_path, body):
    path = tmp_path / "s.csv"
    path.write_bytes(body.encode("utf-8"))
    sheet = _same_sheet(path)
    assert isinstance(sheet.rows, ColumnRows)


def test_bom_and_semicolons(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(codecs.BOM_UTF8 + "Name;Mobile\nAnn;0412345678\nBé;+61 412 345 679;;\n".encode())
    assert isinstance(_same_sheet(path).rows, ColumnRows)
    assert isinstance(_same_sheet(path, delimiter=";").rows, ColumnRows)


@pytest.mark.parametrize("body", [
    f'{HEADER}\n"Ann, Lee",0412345678,Bondi\n',  # a quote: csv reads it
    f"{HEADER}\nAnn\x00,0412345678,Bondi\n",  # NUL
    f"{HEADER}\rAnn,0412345678,Bondi\r",  # a lone carriage return ends a line for csv only
    "\ufeff\ufeff" + f"{HEADER}\nAnn,0412345678,Bondi\n",  # two BOMs
])
def test_files_pandas_could_read_otherwise_are_read_by_csv(tmp_path, body):
    path = tmp_path / "s.csv"
    path.write_bytes(body.encode("utf-8"))
    sheet = _same_sheet(path)
    assert not isinstance(sheet.rows, ColumnRows)


def test_cp1252_file_is_read_by_csv(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(f"{HEADER}\nRené,0412345678,Café\n".encode("cp1252"))
    assert _same_sheet(path).encoding == "cp1252"
    assert Columnar.of(path.read_bytes(), path.read_bytes().decode("cp1252"), "cp1252", ",") is None


def test_random_files_equal(tmp_path):
    rng = random.Random(5)
    alphabet = ["a", "B", "0", "4", " ", ",", ";", "\t", "|", "\n", "\r\n", "é", "\u200b", "\x0b", "€", "+", "="]
    for trial in range(40):
        body = HEADER + "\n" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        path = tmp_path / f"r{trial}.csv"
        path.write_bytes(body.encode("utf-8"))
        try:
            load(path, columnar=False)
        except Exception as exc:  # the same refusal either way
            with pytest.raises(type(exc)):
                load(path, columnar=True)
            continue
        _same_sheet(path)


@pytest.mark.parametrize("rows", [3_000, 30_000])
def test_a_sheet_of_a_few_thousand_rows_is_read_by_columns_and_checked_by_columns(tmp_path, rows):
    """From 3,000 rows (~150 KB) the columns are the quicker path (measured; check.COLUMNAR_MIN_ROWS)."""
    path = tmp_path / "big.csv"
    lines = [HEADER + ",Text"] + [f"P{i},04{i:08d},Bondi,Hi there: your appointment at Bondi is confirmed"
                                  for i in range(rows)]
    path.write_bytes("\n".join(lines).encode())
    from batchsms.api import check_sheet

    report = check_sheet(path)
    assert isinstance(report.sheet.rows, ColumnRows)
    assert isinstance(report, ColumnarReport)
    assert report.summary()["rows_read"] == rows


def test_below_the_thresholds_a_sheet_is_read_and_checked_as_before(tmp_path):
    """Where columns measured no quicker: 1,500 long lines (260 KB: a Text column) are read as records, and a
    workbook of 5,000 rows is checked row by row (its reading gains nothing by columns)."""
    from batchsms.api import check_sheet
    from batchsms.check import COLUMNAR_MIN_WORKBOOK_ROWS

    from .helpers import write_xlsx

    long_lines = tmp_path / "long.csv"
    long_lines.write_bytes(("Name,Mobile,Text\n" + "".join(f"N{i},04{12000000 + i:08d},{'Dear customer ' * 12}\n"
                                                          for i in range(1_500))).encode())
    assert long_lines.stat().st_size >= 150_000
    report = check_sheet(long_lines)
    assert isinstance(report.sheet.rows, list) and not isinstance(report, ColumnarReport)
    book = tmp_path / "book.xlsx"
    write_xlsx(book, [["Name", "Mobile", "Text"]] + [[f"N{i}", f"04{12000000 + i:08d}", "Hi"] for i in range(5_000)])
    assert COLUMNAR_MIN_WORKBOOK_ROWS > 5_000
    assert not isinstance(check_sheet(book), ColumnarReport)


@pytest.mark.parametrize("body", [
    f"{HEADER}\n" + "Ann,0412345678,Bondi\n\n \nBob,0412345679\n,,\nCy,0412345670,Manly,extra,cells\n",
    f"{HEADER}\r\nAnn,0412345678,Bondi\r\n\r\n \t\r\nBob,0412345679,,\r\n",
    f"{HEADER}\nAnn\x0bLee,0412345678,Bon\x0cdi\nBo\x1cb,0412\u2028345679,Ma\x85nly\n\t,\x1d,\u00a0\n\u3000\n",
    f"{HEADER}\n\u00a0,\u2003\n\u00a0x,1\n\u2028\n\u00c9mile,0412345678,Bondi\n\u00a0\n",  # non-ASCII spaces and É
    f"{HEADER}\n" + "".join(f" Ann{i}, 0412345678,Bondi\n  ,\t,\n" for i in range(300)),  # many lines start blank
    f"{HEADER}\nAnn,0412345678,Bondi\n\n\n",
    f"{HEADER}\nAnn,0412345678,Bondi\n ,",  # a last line of blanks without a line break
])
def test_a_streamed_sheet_finds_the_empty_rows_csv_finds(tmp_path, monkeypatch, body, reader):
    """A sheet too big to hold is scanned for empty rows by their bytes: the rows it numbers are the
    rows ``csv.reader`` reads (lines that start like an empty row are looked at byte by byte, or all
    lines at once when there are many)."""
    from batchsms import sheet as sheet_module
    from batchsms.sheet import StreamedRows

    if reader == "split":
        pytest.skip("one reading is enough: streaming does not depend on it")
    path = tmp_path / "s.csv"
    path.write_bytes(body.encode("utf-8"))
    by_csv = load(path, columnar=False)
    monkeypatch.setattr(sheet_module, "STREAM_BYTES", 1)
    monkeypatch.setattr(sheet_module, "PIECE_BYTES", 1024)  # several pieces, lines split across them
    streamed = load(path)
    assert isinstance(streamed.rows, StreamedRows)
    assert list(streamed.row_numbers) == list(by_csv.row_numbers)
    assert list(streamed.rows) == list(by_csv.rows)


@pytest.mark.parametrize("body", [
    f"{HEADER}\n" + "Ann,0412345678,Bondi\n\n \nBob,0412345679\n,,\nCy,0412345670,Manly,extra,cells\n",
    f"{HEADER}\r\nAnn,0412345678,Bondi\r\n\r\n \t\r\nBob,0412345679,,\r\n",
    f"{HEADER}\n\u00a0,\u2003\n\u00a0x,1\n\u2028\n\u00c9mile,0412345678,Bondi\n\u00a0\n,x\n",
    f"{HEADER}\n" + "".join(f" Ann{i}, 0412345678,Bondi\n  ,\t,\n" for i in range(300)),  # many lines start blank
    f"{HEADER}\nAnn,0412345678,Bondi,\nBob,0412345679,Manly\n",  # one trailing delimiter: a fourth, empty cell
    f"{HEADER}\nAnn,0412345678,Bondi\n ,",
])
def test_columns_pandas_reads_are_parsed_when_first_read(tmp_path, body, reader):
    """A sheet pandas reads has its lines scanned from the bytes (cells per line, empty rows) and each
    column parsed when first read: the rows are csv.reader's, whichever columns were read first; a file
    with many lines that start like an empty row is parsed whole at once instead (the same rows)."""
    from batchsms.sheet import LazyColumns

    if reader == "split":
        pytest.skip("only files pandas reads are parsed lazily")
    path = tmp_path / "s.csv"
    path.write_bytes(body.encode("utf-8"))
    by_csv = load(path, columnar=False)
    first = load(path, columnar=True)
    lazy = isinstance(first.rows.columns, LazyColumns)
    assert lazy == ("Ann299" not in body)  # the file of 600 blank-like lines is parsed whole
    if lazy:
        assert first.rows.columns._made == {}  # nothing parsed by the load
        assert first.rows.columns[2] == [cells[2] if len(cells) > 2 else "" for cells in by_csv.rows]
        assert sorted(first.rows.columns._made) == [2]
    assert list(first.rows) == list(by_csv.rows)
    assert list(first.row_numbers) == list(by_csv.row_numbers)
    assert [first.rows[i] for i in range(len(by_csv.rows))] == by_csv.rows
    last = load(path, columnar=True)
    assert [last.rows[i] for i in reversed(range(len(by_csv.rows)))] == by_csv.rows[::-1]


def test_a_check_by_columns_parses_only_the_columns_it_reads(tmp_path, monkeypatch, reader):
    """The recipients and the template's cells are parsed; a column no rule reads (Last Name) and the
    ExternalId column (read only for a send's request bodies) are not, until something reads them."""
    from batchsms import check as check_module
    from batchsms.api import Options, check_sheet

    if reader == "split":
        pytest.skip("only files pandas reads are parsed lazily")
    from batchsms import sheet as sheet_module

    monkeypatch.setattr(check_module, "COLUMNAR_MIN_ROWS", 10)
    monkeypatch.setattr(sheet_module, "COLUMNAR_CSV_BYTES", 0)
    monkeypatch.setattr(sheet_module, "COLUMNAR_CSV_LINES", 0)
    path = tmp_path / "s.csv"
    path.write_bytes(("First,Last,Mobile,ExternalId\n"
                      + "".join(f"Ann{i},Lee,04123456{i:02d},id{i}\n" for i in range(40))).encode())
    (tmp_path / "t.txt").write_text("Hi {{ First }}")
    report = check_sheet(path, Options(template=tmp_path / "t.txt"))
    assert isinstance(report, ColumnarReport)
    assert sorted(report.sheet.rows.columns._made) == [0, 2]
    assert report.body(3) == {"To": "+61412345603", "ExternalId": "id3", "Text": "Hi Ann3"}
    assert sorted(report.sheet.rows.columns._made) == [0, 2, 3]
    assert report.sheet.rows[5] == ["Ann5", "Lee", "0412345605", "id5"]
    assert sorted(report.sheet.rows.columns._made) == [0, 1, 2, 3]


def test_line_breaks_are_counted_only_as_far_as_needed_and_exactly(reader):
    """``_has_lines`` stops at the count it needs (a megabyte at a time) and is exact across those steps."""
    from batchsms.sheet import _COUNT_STEP, _has_lines

    data = b"x" * (_COUNT_STEP - 1) + b"\n\n" + b"y" * _COUNT_STEP + b"\n"  # breaks either side of a step
    assert [_has_lines(data, n) for n in range(5)] == [True, True, True, True, False]
    assert _has_lines(b"", 0) and not _has_lines(b"", 1) and not _has_lines(b"no break", 1)
