"""Excel cells as the person sees them: number formats shown as Excel shows them, error cells reported.

Workbooks are written with openpyxl (``cell.number_format``); cells openpyxl cannot write
(cached error values, formulas Excel saved) are put into the sheet XML as Excel writes them.
"""

from __future__ import annotations

import csv
import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

import batchsms
from batchsms import excelfmt, workbook_guard
from batchsms.cli import main
from batchsms.sheet import load

from .helpers import add_cached_formula_values, write_csv

# --------------------------------------------------------------------------- helpers


def formatted_xlsx(path: Path, header: list[str], rows: list[list[object]], formats: dict[str, str]) -> Path:
    """A workbook whose columns (by header) carry number formats."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(header)
    for row in rows:
        ws.append(row)
    for name, code in formats.items():
        column = header.index(name) + 1
        for r in range(2, len(rows) + 2):
            ws.cell(r, column).number_format = code
    wb.save(path)
    return path


def sheet_xml(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return zf.read("xl/worksheets/sheet1.xml").decode()


def rewrite(path: Path, parts: dict[str, bytes]) -> None:
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, parts.get(item.filename, src.read(item.filename)))
    shutil.move(tmp, path)


def set_cells(path: Path, cells: dict[str, str]) -> None:
    """Replace whole ``<c r="REF" ...>...</c>`` elements of sheet1 with XML as Excel writes it."""
    xml = sheet_xml(path)
    for ref, element in cells.items():
        xml, n = re.subn(rf'<c r="{ref}"(?:[^>]*/>|[^>]*>.*?</c>)', element, xml, count=1)
        assert n == 1, ref
    rewrite(path, {"xl/worksheets/sheet1.xml": xml.encode()})


def issues(report, code=None):
    return [(i.row, i.column, i.value, i.severity, i.code, i.message) for i in report.issues()
            if code is None or i.code == code]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


# --------------------------------------------------------------------------- the formats themselves

SHOWN = [
    # (format code, value, what Excel shows)
    ("$#,##0.00", 1234.5, "$1,234.50"),
    ("$#,##0.00", -1234.5, "-$1,234.50"),
    ("0%", 0.15, "15%"),
    ("0.00%", 0.15, "15.00%"),
    ("0.0%", -0.0625, "-6.3%"),
    ("#,##0", 1234.5, "1,235"),
    ("#,##0", 1234567, "1,234,567"),
    ("0.00", 99.999, "100.00"),
    ("0.00", 2.675, "2.68"),  # Excel rounds its 15 digits half away from zero; the binary value is 2.67499...
    ("0.00", 1.005, "1.01"),
    ("0", -2.5, "-3"),
    ("[$€-407] #,##0.00", 1234.5, "€ 1,234.50"),
    ("#,##0.00 [$€-407]", 1234.5, "1,234.50 €"),
    ("[$-409]0.00", 3, "3.00"),
    ('"Qty: "0', 5, "Qty: 5"),
    ('0 "days"', 3, "3 days"),
    ("\\$0", 5, "$5"),
    ("0\\ \\k\\g", 5, "5 kg"),
    ("£#,##0.00", 12.3, "£12.30"),
    ("#,##0.00_);(#,##0.00)", 1234.5, "1,234.50"),  # _) aligns a column: no trailing space in a message
    ("#,##0.00_);(#,##0.00)", -1234.5, "(1,234.50)"),
    ("#,##0.00_);[Red](#,##0.00)", -1234.5, "(1,234.50)"),
    ("#,##0.00;-#,##0.00;\"nil\"", 0, "nil"),
    ("0;-0;;@", 0, ""),  # an empty zero section hides zeros
    ("[Blue]0;[Red]-0", -5, "-5"),
    ("[Color10]0.0", 5, "5.0"),
    ('_-* #,##0.00_-;-* #,##0.00_-;_-* "-"??_-;_-@_-', 1234.5, "1,234.50"),
    ('_-* #,##0.00_-;-* #,##0.00_-;_-* "-"??_-;_-@_-', -1234.5, "-1,234.50"),
    ('_-* #,##0.00_-;-* #,##0.00_-;_-* "-"??_-;_-@_-', 0, "-"),
    ('_("$"* #,##0.00_);_("$"* \\(#,##0.00\\);_("$"* "-"??_);_(@_)', -1234.5, "$(1,234.50)"),
    ("[<1000]0;#,##0", 999, "999"),
    ("[<1000]0;#,##0", 1500, "1,500"),
    ("[>=100]\"big\";\"small\"", 99, "small"),
    ("0000000000", 413762945, "0413762945"),
    ('"+"0', 61413762945, "+61413762945"),
    ("0000 000 000", 413762945, "0413 762 945"),
    ("(000) 000-0000", 5551234567, "(555) 123-4567"),
    ("###-####", 1234, "-1234"),
    ("0.00E+00", 12345, "1.23E+04"),
    ("0.00E+00", 0.000123, "1.23E-04"),
    ("0.00E+00", 9.999, "1.00E+01"),
    ('0.0,,"M"', 1234567, "1.2M"),
    ('#,##0,"K"', 1234567, "1,235K"),
    ("0.##", 5, "5."),
    ("0.0#", 1.25, "1.25"),
    ("#.00", 0.5, ".50"),
    ('"Tel: "General', 61413762945, "Tel: 61413762945"),
    ("General;(General)", -5.5, "(5.5)"),
    ("0", 12345678901234567.0, "12345678901234600"),  # Excel keeps 15 digits
]


@pytest.mark.parametrize(("code", "value", "shown"), SHOWN)
def test_a_number_is_shown_as_excel_shows_it(code, value, shown):
    assert excelfmt.format_number(value, code) == shown


@pytest.mark.parametrize(("code", "value"), [
    ("General", 5), ("@", 5), ("yyyy-mm-dd", 46000), ("[h]:mm", 1.5), ("h:mm AM/PM", 0.5),  # General / dates
    ("# ?/?", 1.5), ("##0.0E+0", 12345), ("0 kg", 5), ("[DBNum1]0", 5), ("[$-2000000]0", 5),  # not ours
    ("0.00", -0.001),  # a negative shown as zero: Excel's sign is not ours to guess
    ("[<1000]0;#,##0", -5),  # conditions with a negative value
])
def test_what_cannot_be_shown_exactly_keeps_general(code, value):
    assert excelfmt.format_number(value, code) is None


def test_built_in_formats_follow_ecma_376_and_leave_locale_dependent_ids_out():
    shown = excelfmt.formats_by_style({164: "0000000000", 9: '0.0"%"'}, [0, 2, 9, 164, 14, 44, 49, 39, 7])
    assert {i: f.code for i, f in shown.items()} == {1: "0.00", 2: '0.0"%"', 3: "0000000000",
                                                       7: "#,##0.00;(#,##0.00)"}


# --------------------------------------------------------------------------- through the checker

def test_formatted_cells_reach_the_template_and_the_checks_as_shown(tmp_path):
    path = formatted_xlsx(
        tmp_path / "c.xlsx",
        ["Mobile", "Name", "Balance", "Discount", "Rate", "Price", "Qty", "Credit"],
        [[413762945, "Ann", 1234.5, 0.15, 0.15, 99.999, 3, -1234.5],
         [61427518364, "Bob", 0, 0.2, 0.125, 2.675, 12, 1234.5]],
        {"Balance": "$#,##0.00", "Discount": "0%", "Rate": "0.00%", "Price": "0.00", "Qty": '"Qty: "0',
         "Credit": "#,##0.00_);[Red](#,##0.00)"},
    )
    # The first row's mobile is a number with a 10-digit format, the second a plain General number.
    wb = openpyxl.load_workbook(path)
    wb.active["A2"].number_format = "0000000000"
    wb.save(path)
    text = "{{ Name }}: {{ Balance }} | {{ Discount }} | {{ Rate }} | {{ Price }} | {{ Qty }} | {{ Credit }}"
    report = batchsms.check_sheet(path, batchsms.Options(text=text, defaults={"From": "CityDental"}))
    assert [(r.row, r.to, r.text) for r in report.results] == [
        (2, "+61413762945", "Ann: $1,234.50 | 15% | 15.00% | 100.00 | Qty: 3 | (1,234.50)"),
        (3, "+61427518364", "Bob: $0.00 | 20% | 12.50% | 2.68 | Qty: 12 | 1,234.50"),
    ]
    assert issues(report) == []
    assert report.sheet.rows[0][:2] == ["0413762945", "Ann"]
    assert report.sheet.values[0][:3] == [413762945.0, "Ann", 1234.5]  # the typed cells stay numbers


def test_phone_formats_give_the_digits_the_user_sees_in_the_to_column(tmp_path):
    path = formatted_xlsx(tmp_path / "c.xlsx", ["Mobile", "Name"],
                          [[413762945, "a"], [61438120957, "b"], [438120971, "c"], [449301268, "d"]], {})
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    ws["A2"].number_format, ws["A3"].number_format = "0000000000", '"+"0'
    ws["A4"].number_format, ws["A5"].number_format = "0000 000 000", "0"
    wb.save(path)
    sheet = load(path)
    assert [r[0] for r in sheet.rows] == ["0413762945", "+61438120957", "0438 120 971", "449301268"]
    report = batchsms.check_sheet(path, batchsms.Options(text="Hi {{ Name }}"))
    assert [r.to for r in report.results[:3]] == ["+61413762945", "+61438120957", "+61438120971"]


def test_a_general_workbook_and_a_csv_read_as_before(tmp_path):
    path = formatted_xlsx(tmp_path / "c.xlsx", ["Mobile", "Amount", "Share"],
                          [[61413762945, 1234.5, 0.15], [61427518364, 3.0, 0.5]], {})
    assert load(path).rows == [["61413762945", "1234.5", "0.15"], ["61427518364", "3", "0.5"]]
    csv_path = write_csv(tmp_path / "c.csv", [["Mobile", "Amount", "Share"], ["0413762945", "1234.5", "0.15"],
                                              ["0427518364", "$1,234.50", "15%"]])
    assert load(csv_path).rows == [["0413762945", "1234.5", "0.15"], ["0427518364", "$1,234.50", "15%"]]


def test_text_dates_and_booleans_in_formatted_cells_keep_their_own_reading(tmp_path):
    import datetime as dt

    path = formatted_xlsx(tmp_path / "c.xlsx", ["Mobile", "A", "B", "C"],
                          [["0413762945", "12 apples", dt.datetime(2026, 12, 1, 9, 30), True]],
                          {"A": "$#,##0.00", "B": "d/m/yyyy h:mm", "C": "0.00"})
    assert load(path).rows == [["0413762945", "12 apples", "2026-12-01 09:30:00", "TRUE"]]


# --------------------------------------------------------------------------- error cells

def error_workbook(tmp_path: Path, *, percent_column: bool = False) -> Path:
    """Rows 2-9 under Mobile, Name, Amount, Code; each holds one kind of cell in Amount (or elsewhere)."""
    path = tmp_path / "e.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Mobile", "Name", "Amount", "Code"])
    for i in range(8):
        ws.append([f"0413762{940 + i}", f"n{i}", "x", "y"])
    if percent_column:  # beyond the header, for the streaming pass: styled cells and a hidden row
        for r in range(2, 10):
            ws.cell(r, 6, 0.5 * r).number_format = "0%"
        ws.row_dimensions[5].hidden = True
    ws["C4"] = "=1/0"  # a formula openpyxl writes without a saved value
    ws["C5"] = "=B5&B6"  # given a saved value below, as Excel saves it
    ws["E6"] = "beyond the header"
    wb.save(path)
    add_cached_formula_values(path, {"C5": "n3n4"})
    set_cells(path, {
        "C2": '<c r="C2" t="e"><f>VLOOKUP(B2,Prices!A:B,2,FALSE)</f><v>#N/A</v></c>',
        "C3": '<c r="C3" t="e"><v>#REF!</v></c>',
        "C6": '<c r="C6" t="str"><f>IF(B6="","",B6&amp;"")</f><v></v></c>',  # a formula whose answer is ""
        "D7": '<c r="D7" t="e"><f>1/0</f><v>#DIV/0!</v></c>',
        "E6": '<c r="E6" t="e"><v>#VALUE!</v></c>',  # beyond the header: nobody's data
        "A9": '<c r="A9"><f t="shared" ref="A9:A9" si="0">A8+1</f></c>',  # no value at all
    })
    xml = sheet_xml(path).replace("<c r=\"B8\"", "<c r=\"C8\" t=\"e\"><v>#NAME?</v></c><c r=\"B8\"")
    rewrite(path, {"xl/worksheets/sheet1.xml": xml.encode()})
    return path


NA = ("#N/A in this cell (an Excel error: no value is available, often a lookup that found nothing): fix the "
      "formula in Excel, or type the value")
UNCALCULATED = "a formula Excel has not calculated: open the file in Excel and save it, or type the value"


def test_error_cells_and_uncalculated_formulas_are_errors_on_their_row_and_column(tmp_path):
    path = error_workbook(tmp_path)
    report = batchsms.check_sheet(path, batchsms.Options(text="Hi {{ Name }}"))
    assert issues(report, "cell-error") == [
        (2, "Amount", "#N/A", "error", "cell-error", NA),
        (3, "Amount", "#REF!", "error", "cell-error", "#REF! in this cell (an Excel error: the formula refers to a "
                                                       "cell that was deleted): fix the formula in Excel, or type "
                                                       "the value"),
        (4, "Amount", "=1/0", "error", "cell-error", UNCALCULATED),
        (7, "Code", "#DIV/0!", "error", "cell-error", "#DIV/0! in this cell (an Excel error: the formula divides by "
                                                      "zero): fix the formula in Excel, or type the value"),
        (8, "Amount", "#NAME?", "error", "cell-error", "#NAME? in this cell (an Excel error: the formula uses a name "
                                                       "Excel does not know): fix the formula in Excel, or type the "
                                                       "value"),
        (9, "Mobile", "=A8+1", "error", "cell-error", UNCALCULATED),
    ]
    assert [(r.row, r.status.value) for r in report.results] == [
        (2, "invalid"), (3, "invalid"), (4, "invalid"), (5, "valid"), (6, "valid"), (7, "invalid"), (8, "invalid"),
        (9, "invalid")]
    # The text is the error as Excel shows it, never an empty cell that reads as nothing to fix.
    assert [r[2] for r in report.sheet.rows] == ["#N/A", "#REF!", "", "n3n4", "", "x", "#NAME?", "x"]


def test_a_row_holding_only_an_error_cell_is_kept_and_reported(tmp_path):
    path = formatted_xlsx(tmp_path / "c.xlsx", ["Mobile", "Name"], [["0413762945", "a"], ["x", "y"]], {})
    set_cells(path, {"A3": '<c r="A3" t="e"><v>#N/A</v></c>', "B3": '<c r="B3"/>'})
    sheet = load(path)
    assert sheet.row_numbers == [2, 3] and sheet.rows[1] == ["#N/A", ""]
    assert [(p.row, p.column, p.code) for p in sheet.problems] == [(3, "Mobile", "cell-error")]


def test_error_cells_above_the_header_or_in_hidden_rows_are_not_reported(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in [["Campaign"], ["Mobile", "Name"], ["0413762945", "a"], ["0427518364", "b"]]:
        ws.append(row)
    ws.row_dimensions[4].hidden = True
    wb.save(tmp_path / "c.xlsx")
    set_cells(tmp_path / "c.xlsx", {"A1": '<c r="A1" t="e"><v>#REF!</v></c>',
                                    "B4": '<c r="B4" t="e"><v>#N/A</v></c>'})
    sheet = load(tmp_path / "c.xlsx", header_row=2)
    assert sheet.hidden_rows == {4} and sheet.problems == []
    report = batchsms.check_sheet(tmp_path / "c.xlsx", batchsms.Options(text="Hi {{ Name }}", header_row=2))
    assert [(r.row, r.status.value, [i.code for i in r.issues]) for r in report.results] == [
        (3, "valid", []), (4, "skipped", ["hidden-row"])]
    shown = batchsms.check_sheet(tmp_path / "c.xlsx",
                                 batchsms.Options(text="Hi {{ Name }}", header_row=2, include_hidden=True))
    assert issues(shown, "cell-error") == [(4, "Name", "#N/A", "error", "cell-error", NA)]


def test_the_cli_reports_error_cells_and_exits_1(tmp_path):
    path = error_workbook(tmp_path)
    result = invoke("check", path, "--text", "Hi {{ Name }}", "--report", tmp_path / "r.csv", "--no-preview")
    assert result.exit_code == 1, result.output
    rows = [r for r in read_csv(tmp_path / "r.csv") if r[4] == "cell-error"]
    assert rows == [
        ["2", "Amount", "#N/A", "error", "cell-error", NA],
        ["3", "Amount", "#REF!", "error", "cell-error", rows[1][5]],
        ["4", "Amount", "'=1/0", "error", "cell-error", UNCALCULATED],  # the formula's text, kept inert
        ["7", "Code", "#DIV/0!", "error", "cell-error", rows[3][5]],
        ["8", "Amount", "#NAME?", "error", "cell-error", rows[4][5]],
        ["9", "Mobile", "'=A8+1", "error", "cell-error", UNCALCULATED],
    ]
    assert "cell-error" in result.output


def test_the_cli_check_renders_formatted_cells_in_the_preview(tmp_path):
    path = formatted_xlsx(tmp_path / "c.xlsx", ["Mobile", "Name", "Balance"],
                          [[413762945, "Ann", 1234.5], [427518364, "Bob", -0.5]],
                          {"Mobile": "0000000000", "Balance": "$#,##0.00;($#,##0.00)"})
    result = invoke("check", path, "--text", "Hi {{ Name }}, you owe {{ Balance }}", "--preview",
                    tmp_path / "p.csv", "--report", tmp_path / "r.csv")
    assert result.exit_code == 0, result.output
    preview = read_csv(tmp_path / "p.csv")
    header = preview[0]
    assert [r[header.index("Message")] for r in preview[1:]] == ["Hi Ann, you owe $1,234.50",
                                                                 "Hi Bob, you owe ($0.50)"]
    assert read_csv(tmp_path / "r.csv") == [["Row", "Column", "Value", "Severity", "Code", "Message"]]


# --------------------------------------------------------------------------- the streaming pass

def test_the_pass_finds_the_same_cells_whatever_the_chunk_size(tmp_path, monkeypatch):
    path = error_workbook(tmp_path, percent_column=True)
    book = workbook_guard.check_workbook(path)
    styles = excelfmt.formats_by_style(*workbook_guard.number_formats(book))
    whole = workbook_guard.sheet_facts(book, "Sheet", styles.keys())
    assert whole.hidden_rows == {5} and whole.styled == [(r, 6, 1) for r in range(2, 10)]
    assert [(e.row, e.column, e.error, e.formula) for e in whole.errors] == [
        (2, 3, "#N/A", "VLOOKUP(B2,Prices!A:B,2,FALSE)"), (3, 3, "#REF!", ""), (4, 3, "", "1/0"),
        (6, 5, "#VALUE!", ""), (7, 4, "#DIV/0!", "1/0"), (8, 3, "#NAME?", ""), (9, 1, "", "A8+1")]
    assert load(path).rows[0][5] == "100%"
    for size in (7, 13, 64, 199):
        monkeypatch.setattr(workbook_guard, "CHUNK_BYTES", size)
        monkeypatch.setattr(workbook_guard, "_READ_BYTES", size)
        assert workbook_guard.sheet_facts(book, "Sheet", styles.keys()) == whole, size


def test_cells_written_with_a_namespace_prefix_or_s_before_r_are_found(tmp_path):
    path = formatted_xlsx(tmp_path / "c.xlsx", ["Mobile", "Amount"], [["0413762945", 1234.5], ["0427518364", 3]],
                          {"Amount": "$#,##0.00"})
    set_cells(path, {"B3": '<c s="1" r="B3" t="n"><v>3</v></c>', "A3": '<c r="A3" t="e"><v>#N/A</v></c>'})
    xml = sheet_xml(path)
    prefixed = re.sub(r"<(/?)(worksheet|sheetData|row|c|v|f|is|t|dimension|sheetViews|sheetView|selection|"
                      r"sheetFormatPr|pageMargins|sheetPr|outlinePr|pageSetUpPr)\b", r"<\1x:\2", xml)
    prefixed = prefixed.replace('xmlns="', 'xmlns:x="', 1)
    book = workbook_guard.check_workbook(path)
    plain = workbook_guard.sheet_facts(book, "Sheet", [1])
    rewrite(path, {"xl/worksheets/sheet1.xml": prefixed.encode()})
    assert workbook_guard.sheet_facts(workbook_guard.check_workbook(path), "Sheet", [1]) == plain
    assert plain.styled == [(2, 2, 1), (3, 2, 1)] and [(e.row, e.column, e.error) for e in plain.errors] == [
        (3, 1, "#N/A")]


def test_a_workbook_without_number_formats_costs_no_style_search(tmp_path):
    path = formatted_xlsx(tmp_path / "c.xlsx", ["Mobile", "Amount"], [["0413762945", 1234.5]], {})
    book = workbook_guard.check_workbook(path)
    assert excelfmt.formats_by_style(*workbook_guard.number_formats(book)) == {}
    assert workbook_guard.number_formats(workbook_guard.Workbook(path)) == ({}, [])  # .xlsb/.ods/.xls: no styles


def test_styles_that_do_not_parse_leave_the_general_reading(tmp_path):
    path = formatted_xlsx(tmp_path / "c.xlsx", ["Mobile", "Amount"], [["0413762945", 1234.5]], {"Amount": "0.00"})
    with zipfile.ZipFile(path) as zf:
        styles = zf.read("xl/styles.xml")
    rewrite(path, {"xl/styles.xml": b'<!DOCTYPE x [<!ENTITY e "boom">]>' + styles})  # defusedxml refuses entities
    assert workbook_guard.number_formats(workbook_guard.check_workbook(path)) == ({}, [])
