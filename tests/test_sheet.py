"""Loading real CSV and .xlsx files: encodings, delimiters, Excel's numbers and dates, row numbers."""

import datetime as dt

import pytest

from batchsms.errors import SheetError
from batchsms.sheet import load

from .helpers import add_cached_formula_values, write_csv, write_xlsx

ROWS = [["Name", "Mobile", "Note"], ["Zoë", "0412 345 678", "café, “quoted”"], ["Bob", "+61 413 000 111", "ok"]]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_every_encoding_and_delimiter(tmp_path, encoding, delimiter):
    path = write_csv(tmp_path / "c.csv", ROWS, encoding=encoding, delimiter=delimiter)
    sheet = load(path)
    assert sheet.header == ["Name", "Mobile", "Note"]
    assert sheet.rows == [r for r in ROWS[1:]]
    assert sheet.delimiter == delimiter
    assert sheet.columns == {"To": 1}


def test_detected_encodings(tmp_path):
    assert load(write_csv(tmp_path / "a.csv", ROWS, encoding="utf-8-sig")).encoding == "utf-8-sig"
    assert load(write_csv(tmp_path / "b.csv", ROWS, encoding="utf-16")).encoding == "utf-16"
    assert load(write_csv(tmp_path / "c.csv", ROWS, encoding="cp1252")).encoding == "cp1252"
    assert load(write_csv(tmp_path / "d.csv", ROWS, encoding="utf-8")).encoding == "utf-8"


def test_quoted_newlines_and_row_numbers_as_excel_shows_them(tmp_path):
    rows = [["To", "Text"], ["0412345678", "line one\nline two"], ["", ""], ["0413000111", "x"]]
    sheet = load(write_csv(tmp_path / "c.csv", rows))
    assert sheet.rows == [["0412345678", "line one\nline two"], ["0413000111", "x"]]
    assert sheet.row_numbers == [2, 4]  # the empty row 3 is skipped but still counted


def test_header_row_and_short_rows(tmp_path):
    rows = [["Spring campaign"], [], ["Phone", "Name"], ["0412345678"], ["0413000111", "Ann"]]
    sheet = load(write_csv(tmp_path / "c.csv", rows), header_row=3)
    assert sheet.header == ["Phone", "Name"]
    assert sheet.rows == [["0412345678", ""], ["0413000111", "Ann"]]
    assert sheet.row_numbers == [4, 5]


def test_xlsx_cells_are_the_text_the_user_sees(tmp_path):
    path = write_xlsx(tmp_path / "c.xlsx", [
        ["Mobile", "When", "Day", "Total", "Flag", "Ratio", "Big"],
        [61412345678, dt.datetime(2026, 12, 1, 9, 30), dt.date(2026, 12, 2), "=1+1", True, 0.25, 412345678],
    ])
    add_cached_formula_values(path, {"D2": "2"})
    sheet = load(path)
    assert sheet.rows == [["61412345678", "2026-12-01 09:30:00", "2026-12-02", "2", "TRUE", "0.25", "412345678"]]
    assert sheet.kind == "xlsx" and sheet.sheet_name == "Sheet1"


def test_xlsx_row_numbers_and_named_sheet(tmp_path):
    path = write_xlsx(tmp_path / "c.xlsx", [["Report"], [], ["To"], ["0412345678"], [], ["0413000111"]],
                      title="Data", extra_sheets=["Other"])
    sheet = load(path, sheet="Data", header_row=3)
    assert sheet.row_numbers == [4, 6]
    with pytest.raises(SheetError, match=r"no sheet named 'Nope'; the sheets are 'Data', 'Other'"):
        load(path, sheet="Nope")


@pytest.mark.parametrize(
    ("header", "field_map"),
    [
        (["Mobile Number", "text"], {"To": 0, "Text": 1}),
        (["MSISDN", "delivery receipt", "External_Id"], {"To": 0, "DeliveryReceipt": 1, "ExternalId": 2}),
        (["to", "Phone"], {"To": 0}),  # the exact field name wins over an alias
        ([" Cell ", "Forward To Email"], {"To": 0, "ForwardToEmail": 1}),
    ],
)
def test_headers_map_to_fields(tmp_path, header, field_map):
    sheet = load(write_csv(tmp_path / "c.csv", [header, ["x"] * len(header)]))
    assert sheet.columns == field_map


def test_explicit_column_mapping(tmp_path):
    path = write_csv(tmp_path / "c.csv", [["Phone", "Mobile", "Name"], ["1", "2", "3"]])
    ambiguous = r"columns 'Phone', 'Mobile' could all be To; choose one with --column To=HEADER"
    with pytest.raises(SheetError, match=ambiguous):
        load(path)
    assert load(path, columns=[("to", "mobile")]).columns["To"] == 1
    with pytest.raises(SheetError, match="has no column 'Cell'"):
        load(path, columns=[("To", "Cell")])
    with pytest.raises(SheetError, match="'Recipient' is not an API field"):
        load(path, columns=[("Recipient", "Mobile")])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.csv", "missing.csv: no such file"),
        (lambda p: write_csv(p / "c.csv", [["Name", "Email"], ["a", "b"]]), "no recipient column"),
        (lambda p: write_csv(p / "c.csv", [["To"]]) and p / "nothing.xlsx", "no such file"),
    ],
)
def test_sheet_errors(tmp_path, make, message):
    with pytest.raises(SheetError, match=message):
        load(make(tmp_path))


def test_broken_workbook(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"not a zip")
    with pytest.raises(SheetError, match="broken.xlsx: not a readable workbook"):
        load(path)


def test_a_title_and_blank_rows_above_the_header_are_found(tmp_path):
    from click.testing import CliRunner

    from batchsms.cli import main

    path = write_csv(tmp_path / "c.csv", [["Spring campaign"], [], ["Mobile", "Name"], ["0412345678", "Ann"]])
    sheet = load(path)
    assert (sheet.header_row, sheet.header, sheet.header_detected) == (3, ["Mobile", "Name"], True)
    assert sheet.row_numbers == [4] and sheet.preamble == [["Spring campaign"], []]
    result = CliRunner().invoke(main, ["check", str(path), "--text", "Hi {{ Name }}"])
    assert result.exit_code == 0
    assert result.output.splitlines()[1] == "  header found on row 3; --header-row 3 to be explicit"
    with pytest.raises(SheetError, match=r"columns: 'Spring campaign'"):  # an explicit row is taken as given
        load(path, header_row=1)


def test_a_header_on_row_1_is_not_second_guessed(tmp_path):
    one_column = load(write_csv(tmp_path / "a.csv", [["Number"], ["0412345678"]]))
    assert (one_column.header_row, one_column.header_detected) == (1, False)
    no_recipient = write_csv(tmp_path / "b.csv", [["Title"], ["Phone Nbr", "Name"], ["0412345678", "Ann"]])
    with pytest.raises(SheetError, match="no recipient column"):
        load(no_recipient)
