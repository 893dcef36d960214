"""Sheets that lose rows, change text or hurt the process: real files, built as they arrive.

Workbooks that could abort the process on the old code are loaded in a child process, so
an abort fails the test instead of killing pytest.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest

from batchsms import sheet as sheets
from batchsms.errors import SheetError

from .helpers import write_csv, write_xlsx

ROOT = Path(__file__).resolve().parent.parent
LOADER = (
    "import sys\n"
    "from batchsms.errors import SheetError\n"
    "from batchsms.sheet import load\n"
    "try:\n"
    "    sheet = load(sys.argv[1])\n"
    "except SheetError as exc:\n"
    "    print(exc, file=sys.stderr)\n"
    "    sys.exit(2)\n"
    "print(len(sheet.rows))\n"
)


def load_in_child(path: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """``load(path)`` in a fresh interpreter: exit 2 and one stderr line for a SheetError."""
    return subprocess.run([sys.executable, "-c", LOADER, str(path)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def rewrite(path: Path, changes: dict[str, bytes | None], *, level: int = 6) -> Path:
    """Replace (or add) zip parts of a workbook, deflated at ``level``; None keeps a part as it is."""
    with zipfile.ZipFile(path) as src:
        parts = {info.filename: src.read(info.filename) for info in src.infolist()}
    for name, data in changes.items():
        if data is not None:
            parts[name] = data
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as dst:
        for name, data in parts.items():
            dst.writestr(name, data)
    tmp.replace(path)
    return path


def sheet_xml(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return zf.read("xl/worksheets/sheet1.xml").decode()


def load(path: Path, **options):
    return sheets.load(path, **options)


def contacts_xlsx(path: Path, rows: int = 2) -> Path:
    return write_xlsx(path, [["To", "Name"]] + [[f"04123456{i:02d}", f"n{i}"] for i in range(rows)])


# --------------------------------------------------------------------------- stray quotes


FIVE = b"Name,Mobile\r\nBob,0412345678\r\n%sAnn,0413000111\r\nCat,0414000222\r\nDan,0415000333\r\nEve,0416000444\r\n"


def test_a_stray_quote_that_never_closes_is_a_problem_and_the_rows_it_swallowed_come_back(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(FIVE % b'"')
    sheet = load(path)
    assert sheet.row_numbers == [2, 3, 4, 5, 6]  # five rows read of five, numbered as Excel will once fixed
    assert sheet.rows[1] == ['"Ann', "0413000111"]  # the quote kept as a character, the cells in their columns
    assert sheet.rows[2:] == [["Cat", "0414000222"], ["Dan", "0415000333"], ["Eve", "0416000444"]]
    [problem] = sheet.problems
    assert isinstance(problem, sheets.LoadProblem)
    assert problem[:4] == (3, "Name", '"Ann,0413000111', "unclosed-quote")
    assert "swallows the next 3 lines (rows 4–6)" in problem.message and 'remove the stray "' in problem.message


def test_a_stray_quote_closed_by_a_later_cell_is_a_problem_too(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b'Name,Mobile\r\nBob,0412345678\r\n"Ann,0413000111\r\nCat,0414000222\r\n'
                     b'Eve,"0416000444"\r\nFay,0417000555\r\n')
    sheet = load(path)
    assert sheet.row_numbers == [2, 3, 4, 5, 6]
    assert sheet.rows[2:] == [["Cat", "0414000222"], ["Eve", "0416000444"], ["Fay", "0417000555"]]
    assert [(p.row, p.code) for p in sheet.problems] == [(3, "unclosed-quote")]
    assert "swallows rows 4–5" in sheet.problems[0].message


def test_a_stray_quote_past_csvs_field_limit_is_a_problem_not_an_unreadable_file(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b'Name,Mobile\r\n"Ann,0413000111\r\n' + b"Cat,0414000222\r\n" * 15_000)
    sheet = load(path)
    assert len(sheet.rows) == 15_001
    assert [(p.row, p.code) for p in sheet.problems] == [(2, "unclosed-quote")]
    assert "the next 15,000 lines (rows 3–15002)" in sheet.problems[0].message


def test_quoted_cells_with_line_breaks_are_not_problems_unless_they_run_away(tmp_path):
    legit = b'Mobile,Text\r\n0412345678,"Hi Bob,\r\nsee you at 5"\r\n0413000111,x\r\n'
    cell = b"\r\n".join(b"line %d" % i for i in range(25))
    runaway = b'Mobile,Text\r\n0412345678,"' + cell + b'"\r\n0413000111,x\r\n'
    (tmp_path / "a.csv").write_bytes(legit)
    (tmp_path / "b.csv").write_bytes(runaway)
    assert load(tmp_path / "a.csv").problems == []
    sheet = load(tmp_path / "b.csv")
    assert sheet.row_numbers == [2, 3]  # well-formed CSV: the cell stays one cell
    [problem] = sheet.problems
    assert (problem.row, problem.column, problem.code) == (2, "Text", "unclosed-quote")
    assert len(problem.value) == 200 and "runs over 25 lines" in problem.message


def test_a_stray_quote_in_the_header_stops_the_load(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b'Name,"Mobile\r\nBob,0412345678\r\n')
    with pytest.raises(SheetError, match=r'row 1 \(the header row\) opens a quote .* remove the stray "'):
        load(path)


# --------------------------------------------------------------------------- encodings


def test_utf8_with_one_stray_byte_names_the_row_and_column(tmp_path):
    text = "Name,Mobile\r\nZoë,0412345678\r\nJosé,0413000111\r\nBjörn,0414000222\r\n"
    path = tmp_path / "c.csv"
    path.write_bytes(text.encode() + b"Ren\xe9e,0415000333\r\n")
    with pytest.raises(SheetError, match=r"c.csv: row 5 is not valid UTF-8 \(byte 0xE9 in column 1\): .*"
                                         r"save it as 'CSV UTF-8' from Excel, or name the encoding with "
                                         r"--encoding cp1252$"):
        load(path)


@pytest.mark.parametrize(("encoding", "names", "message"), [
    ("shift_jis", ["山田", "吉田"], r"row 2 does not read as Western text \(column 1 would read 'ŽR“c'\)"),
    ("gb18030", ["张伟", "王芳"], r"row 2 does not read as Western text \(column 1 would read 'ÕÅÎ°'\)"),
    ("cp1251", ["Иванов", "Петрова"], r"row 2 does not read as Western text"),
    ("shift_jis", ["佐藤", "鈴木"], r"row 2 is neither UTF-8 nor cp1252 \(byte 0x8D in column 1\)"),
])
def test_text_in_another_encoding_is_refused_not_read_as_mojibake(tmp_path, encoding, names, message):
    path = write_csv(tmp_path / "c.csv", [["Name", "Mobile"]] + [[n, "0412345678"] for n in names], encoding=encoding)
    with pytest.raises(SheetError, match=message + r".*--encoding"):
        load(path)
    assert load(path, encoding=encoding).rows[0][0] == names[0]  # named, it reads right


def test_real_cp1252_from_excel_still_loads(tmp_path):
    rows = [["Name", "Mobile", "Note"], ["Zoë", "0412345678", "café, “quoted” – 5€"],
            ["João", "0413000111", "informações sobre as AÇÕES"], ["Þórður", "0414000222", "Guðrún Þórðardóttir"],
            ["Müller", "0415000333", "Größe … it’s ½ price™"]]
    sheet = load(write_csv(tmp_path / "c.csv", rows, encoding="cp1252"))
    assert (sheet.encoding, sheet.rows, sheet.problems) == ("cp1252", rows[1:], [])


def test_a_named_encoding_that_does_not_fit_names_the_row(tmp_path):
    path = write_csv(tmp_path / "c.csv", [["Name", "Mobile"], ["Bob", "0412345678"], ["Zoë", "0413000111"]],
                     encoding="cp1252")
    with pytest.raises(SheetError, match=r"row 3 is not valid utf-8 \(byte 0xEB in column 1\); check --encoding"):
        load(path, encoding="utf-8")


@pytest.mark.parametrize(("options", "message"), [
    ({"delimiter": ""}, r"--delimiter '': a delimiter is one character"),
    ({"delimiter": ";;"}, r"--delimiter ';;': a delimiter is one character"),
    ({"delimiter": '"'}, r"--delimiter '\"': a delimiter is one character"),
    ({"delimiter": "\n"}, r"--delimiter '\\n': a delimiter is one character"),
    ({"delimiter": "x"}, r"--delimiter 'x': a delimiter is one character other than a letter"),
    ({"encoding": "klingon"}, r"--encoding 'klingon': unknown encoding; use one such as utf-8"),
    ({"encoding": "rot13"}, r"--encoding 'rot13': not a text encoding"),
])
def test_impossible_options_are_one_line(tmp_path, options, message):
    path = write_csv(tmp_path / "c.csv", [["Mobile"], ["0412345678"]])
    with pytest.raises(SheetError, match=message):
        load(path, **options)


def test_a_tab_can_be_named_as_backslash_t(tmp_path):
    path = write_csv(tmp_path / "c.csv", [["Mobile", "Name"], ["0412345678", "Ann"]], delimiter="\t")
    assert load(path, delimiter="\\t").rows == [["0412345678", "Ann"]]


def test_messages_naming_the_columns_stay_one_short_line(tmp_path):
    path = write_csv(tmp_path / "c.csv", [["x" * 10_000] + ["Phone"] * 5_000, ["0412345678"] * 5_001])
    with pytest.raises(SheetError) as caught:
        load(path)
    assert "'Phone' and 4,988 more could all be To" in str(caught.value) and len(str(caught.value)) < 400
    with pytest.raises(SheetError, match=r"its columns are .*'xxxxx+…'") as caught:
        load(path, columns=[("To", "Mobile")])
    assert len(str(caught.value)) < 800


# --------------------------------------------------------------------------- hidden sheets and rows


def test_a_hidden_sheet_is_never_the_default(tmp_path):
    wb = openpyxl.Workbook()
    old = wb.active
    old.title, old.sheet_state = "Old list", "hidden"
    old.append(["To"])
    old.append(["0400000000"])
    live = wb.create_sheet("Live")
    live.append(["To"])
    live.append(["0412345678"])
    wb.save(tmp_path / "c.xlsx")
    assert load(tmp_path / "c.xlsx").sheet_name == "Live"
    assert load(tmp_path / "c.xlsx", sheet="Old list").rows == [["0400000000"]]  # asked for by name, it is read
    with pytest.raises(SheetError, match=r"the sheets are 'Old list' \(hidden\), 'Live'"):
        load(tmp_path / "c.xlsx", sheet="Nope")
    with zipfile.ZipFile(tmp_path / "c.xlsx") as zf:  # Excel can save it so; openpyxl refuses to
        book = zf.read("xl/workbook.xml").decode()
    rewrite(tmp_path / "c.xlsx", {"xl/workbook.xml": book.replace('state="visible"', 'state="veryHidden"').encode()})
    with pytest.raises(SheetError, match=r"every sheet is hidden .*--sheet"):
        load(tmp_path / "c.xlsx")


def test_hidden_rows_are_listed_and_stay_row_for_row(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in [["To", "Name"], ["0412345678", "a"], ["0413000111", "b"], ["0414000222", "c"], ["0415000333", "d"]]:
        ws.append(row)
    ws.row_dimensions[3].hidden = True
    ws.column_dimensions["B"].hidden = True  # a hidden column is not a hidden row
    wb.save(tmp_path / "c.xlsx")
    xml = sheet_xml(tmp_path / "c.xlsx").replace('<row r="5">', '<row r="5" ht="12.8" hidden="true">')  # LibreOffice
    rewrite(tmp_path / "c.xlsx", {"xl/worksheets/sheet1.xml": xml.encode()})
    sheet = load(tmp_path / "c.xlsx")
    assert sheet.hidden_rows == {3, 5}
    assert sheet.row_numbers == [2, 3, 4, 5] and not sheet.include_hidden
    assert load(tmp_path / "c.xlsx", include_hidden=True).include_hidden


def test_hidden_rows_without_row_numbers_are_numbered_as_calamine_numbers_them(tmp_path):
    path = contacts_xlsx(tmp_path / "c.xlsx", rows=3)
    xml = sheet_xml(path)
    for n in range(1, 5):
        xml = xml.replace(f'<row r="{n}">', "<row>").replace(f' r="A{n}"', "").replace(f' r="B{n}"', "")
    xml = xml.replace("<row>", '<row hidden="1">', 3).replace('<row hidden="1">', "<row>", 2)  # the third row
    rewrite(path, {"xl/worksheets/sheet1.xml": xml.encode()})
    sheet = load(path)
    assert sheet.hidden_rows == {3} and sheet.rows[1] == ["0412345601", "n1"]


# --------------------------------------------------------------------------- files made to hurt


def far_cell(path: Path, dimension: str) -> Path:
    """A workbook with one cell at XFD1048576, declaring ``dimension``: calamine asks for 17 billion cells."""
    contacts_xlsx(path)
    xml = re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{dimension}"/>', sheet_xml(path))
    xml = xml.replace("</sheetData>", '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c>'
                                      "</row></sheetData>")
    return rewrite(path, {"xl/worksheets/sheet1.xml": xml.encode()})


def test_a_tiny_workbook_claiming_xfd1048576_exits_2_with_one_line(tmp_path):
    path = far_cell(tmp_path / "contacts.xlsx", "A1:XFD1048576")
    assert path.stat().st_size < 10_000
    result = subprocess.run([sys.executable, "-m", "batchsms", "check", str(path), "--text", "hi"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2, result.stderr[-500:]
    [line] = result.stderr.strip().splitlines()
    assert "contacts.xlsx: refused: its sheet 'Sheet1' claims 17.2 billion cells (A1:XFD1048576)" in line
    assert line.endswith("re-save it from Excel, or export it as CSV")


def test_a_far_cell_behind_a_modest_dimension_is_refused_too(tmp_path):
    result = load_in_child(far_cell(tmp_path / "c.xlsx", "A1:B3"))
    assert result.returncode == 2, result.stderr[-500:]
    assert "refused: its sheet 'Sheet1' reaches XFD1048576, a grid of 17.2 billion cells" in result.stderr


def test_a_wide_sheet_is_held_to_the_rows_its_width_allows(tmp_path):
    path = contacts_xlsx(tmp_path / "c.xlsx")
    header = "".join(f'<c r="{col}1" t="inlineStr"><is><t>h</t></is></c>' for col in ["C", "X", "AY"])
    far = "".join(f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>x</t></is></c></row>' for n in (560_000, 700_000))
    xml = sheet_xml(path).replace("</c></row>", "</c>" + header + "</row>", 1).replace("</sheetData>",
                                                                                        far + "</sheetData>")
    xml = re.sub(r'<dimension ref="[^"]*"\s*/>', "", xml)
    result = load_in_child(rewrite(path, {"xl/worksheets/sheet1.xml": xml.encode()}))
    assert result.returncode == 2, result.stderr[-500:]
    assert "reaches AY700000, a grid of 35.7 million cells" in result.stderr  # 51 columns x 700,000 rows


def test_cells_placed_without_references_are_counted_as_calamine_counts_them(tmp_path):
    path = contacts_xlsx(tmp_path / "c.xlsx")
    cells = '<c t="inlineStr"><is><t>x</t></is></c>' * 16_384  # no r: calamine counts them along the row
    xml = sheet_xml(path).replace("</sheetData>", f'<row r="1048576">{cells}</row></sheetData>')
    result = load_in_child(rewrite(path, {"xl/worksheets/sheet1.xml": xml.encode()}))
    assert result.returncode == 2, result.stderr[-500:]
    assert "places cells written without a reference out to" in result.stderr


def test_a_shared_strings_table_declaring_billions_of_strings_is_refused(tmp_path):
    sst = (b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
           b'uniqueCount="4000000000"><si><t>a</t></si></sst>')
    result = load_in_child(rewrite(contacts_xlsx(tmp_path / "c.xlsx"), {"xl/sharedStrings.xml": sst}))
    assert result.returncode == 2, result.stderr[-500:]
    assert re.search(r"refused: its shared-strings part declares 4 billion strings in \d+ bytes", result.stderr)


def test_parts_that_inflate_like_bombs_are_refused(tmp_path):
    sst = b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">' + b"<si><t>a</t></si>" * 300_000
    path = rewrite(contacts_xlsx(tmp_path / "s.xlsx"), {"xl/sharedStrings.xml": sst + b"</sst>"}, level=9)
    with pytest.raises(SheetError, match=r"refused: its part xl/sharedStrings.xml inflates [\d,]+ times, to 5.1 "
                                         r"million bytes .*the limit is 100"):
        load(path)
    path = contacts_xlsx(tmp_path / "x.xlsx")
    rows = "".join(f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>{"7" * 900}</t></is></c></row>'
                   for n in range(4, 5004))
    rewrite(path, {"xl/worksheets/sheet1.xml": sheet_xml(path).replace("</sheetData>", rows + "</sheetData>").encode()},
            level=9)
    with pytest.raises(SheetError, match=r"refused: its part xl/worksheets/sheet1.xml inflates [\d,]+ times"):
        load(path)


def test_a_cell_of_megabytes_of_text_is_refused(tmp_path):
    path = contacts_xlsx(tmp_path / "c.xlsx")
    xml = sheet_xml(path).replace("<t>n1</t>", "<t>" + "spam " * 300_000 + "</t>")
    rewrite(path, {"xl/worksheets/sheet1.xml": xml.encode()}, level=9)
    with pytest.raises(SheetError, match=r"holds a cell of more than 1.05 million bytes of text \(Excel's limit"):
        load(path)


def test_zip_directories_out_of_all_proportion_are_refused(tmp_path):
    path = contacts_xlsx(tmp_path / "many.xlsx")
    rewrite(path, {f"xl/media/pad{i}.bin": b"" for i in range(10_001)}, level=1)
    with pytest.raises(SheetError, match=r"refused: it holds 10,0\d\d parts \(a workbook has tens; the limit"):
        load(path)
    path = rewrite(contacts_xlsx(tmp_path / "huge.xlsx"), {"xl/media/image1.png": b"\x89PNG" * 1000})
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the zip's central directory, entry by entry
    while data[entry + 46:entry + 46 + 19] != b"xl/media/image1.png":
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 24:entry + 28] = (3 * 1024**3).to_bytes(4, "little")  # the directory claims 3 GiB inflated
    path.write_bytes(bytes(data))
    with pytest.raises(SheetError, match=r"refused: its parts inflate to more than 2.15 billion bytes"):
        load(path)


def test_declared_dimensions_are_judged_by_the_grid_they_make(tmp_path):
    path = contacts_xlsx(tmp_path / "c.xlsx")
    xml = sheet_xml(path)

    def declare(ref: str) -> None:
        rewrite(path, {"xl/worksheets/sheet1.xml": re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{ref}"/>',
                                                          xml).encode()})

    declare("A1:T1048576")
    assert len(load(path).rows) == 2  # a million rows x 20 columns is a real sheet
    declare("A1:AH1048576")
    with pytest.raises(SheetError, match=r"claims 35.7 million cells \(A1:AH1048576\)"):
        load(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("name", ["contacts.csv", "contacts.xlsx"])
def test_a_fifo_is_refused_not_waited_on(tmp_path, name):
    os.mkfifo(tmp_path / name)
    result = load_in_child(tmp_path / name, timeout=20)
    assert result.returncode == 2
    assert result.stderr.strip() == f"{tmp_path / name}: is not a regular file (a pipe, device or socket); " \
                                    "save the sheet to a file"

