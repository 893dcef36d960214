"""Hostile pass at the sizes that newly take the columnar path (check.COLUMNAR_MIN_ROWS 20,000 -> 3,000,
sheet.COLUMNAR_CSV_BYTES 2 MB -> 150 KB and 3,000 lines, sheet.PANDAS_CSV_BYTES 16 MB -> 4 MB and 50,000 lines;
workbooks still from 20,000 rows).

Each test runs one sheet of a few thousand rows three ways through the real CLI (in this process, CliRunner):
``legacy`` (csv.reader records and the row-by-row check: every threshold out of reach), ``rows``
(``BATCHSMS_CHECK=rows``: the file still read by columns) and ``columns`` (``BATCHSMS_CHECK=columns``), and
compares exit code, the ``--json`` summary, the report and the preview byte for byte; ``send`` compares what the
sandbox took and the results file. ``BATCHSMS_CHECK`` alone only picks the check: the reading is picked by the
file's size, hence the third, legacy, run.

PASS tests pin what holds at these sizes (probed with a few hundred generated sheets: , ; tab | delimiters,
CRLF / LF / mixed line ends, a BOM, title rows, empty and whitespace-only rows, short and long rows, duplicates,
opt-outs, --dedupe, a Country column, foreign / invalid / placeholder numbers, GSM-7 extension and UCS-2 texts,
multi-segment texts, templates with and without variables, a Text column, formula-like cells and padded cells).

What it found, both mended (each test below failed before):
- a sheet read with ``--delimiter " "`` (or ``+``, ``·``, ``-``: any character a "Will text" label holds)
  got its Will text column unquoted in the CSV preview by columns (``columnar_preview._plain_field`` asks
  only for ``, ; tab |``), where csv.writer quotes it: the line fell apart when read back;
- ``--header-row N`` with N over 20 on a CSV file of 100 KB and more that the columns can read stopped the run
  ("has no row 25 to use as the header (it has 20 rows)"): ``Columnar.of`` keeps only the first 20 records,
  and the load now reads down to the header row (``Columnar.first_records``).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import random
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchsms import check as check_module
from batchsms import columnar
from batchsms import sheet as sheet_module
from batchsms.cli import main
from batchsms.sandbox import Sandbox
from batchsms.sheet import ColumnRows, LazyColumns, load
from tests.helpers import workbook_parts

NAMES = ["Olivia", " Jack ", "  ", "", "=SUM(A1)", "+x", "-1", "-x", "@h", "José’s", "Zoë 🌸", "\u200b", "A" * 300,
         "a;b", "a|=b", "x\t=y", "'=x", " =x", "\u00a0=x", "-1 (2)", "+61 412 345 678", "-", "=", "@", "1,5",
         "^{}[]~\\|", "a,=b", "b;-c", "c|@d", "-12.50", "\x0b", "\u2028", "Ma\x85nly", "\u3000", "ü" * 70, "€uro"]
CLINICS = ["Bondi", "", "Parra, matta", "Café ☕", " Manly ", "New;town", "Bo|ndi", "=HYPERLINK(x)", "-", "+Ryde",
           "@Home", "Ka\ttoomba", "[Main] ~ Street ^", "Long " * 40]
TEXTS = ["Hello", "", " ", "x" * 160, "x" * 161, "x" * 306, "€" * 80, "€" * 81, "[" * 77 + "x", "Hi ’ello…",
         "Emoji 😀 " * 9, "=1+1", "-5", "@x", "\u200b", "é" * 71, "Ж" * 70, "Ж" * 71, "a" * 152 + "€", "a" * 153 + "€",
         "  padded text  ", "a|b;c,d", "\u00a0nbsp"]
COUNTRIES = ["", "", "", "", "", "", "", "", "NZ", " nz ", "New Zealand", "au", "Narnia", "US"]
ODD_NUMBERS = ["", "   ", "n/a", "-", "0412 345 678", "0400 000 000", "0412345678; 0413456789", "02 9123 4567",
               "+1 415 555 0100", "0412\u00a0345\u00a0679", "\u200b0412345680", "'0412345681", "=0412345678",
               "@0412345678", "-0412345678", "+44 7700 900123", "0061412345685", "1300 123456", "+6141234568",
               "04123456789012345678", "＋61412345678", "0412 345 678 (mobile)", "+61 412 345 678\u200d"]
OPTOUTS = "Mobile\n0412 345 678\n+61 412 345 682\nnonsense\n0400 000 000\n"


def _number(rng: random.Random, recent: list[str]) -> str:
    r = rng.random()
    if r < 0.08 and recent:
        return rng.choice(recent)  # duplicates, and more than five leases to one number
    d = f"4{rng.randint(0, 9)}{rng.randint(0, 9999999):07d}"
    if r < 0.6:
        number = rng.choice([f"0{d[:3]} {d[3:6]} {d[6:]}", f"+61 {d}", f"61{d}", f" 0{d} ", f"0{d}", f"+61-{d}",
                             f"+64 21 {d[3:]}", f"021 {d[3:]}", f"0{d}\t"])
        if len(recent) < 60:
            recent.append(number)
        return number
    return rng.choice(ODD_NUMBERS)


def _rows(count: int, seed: int, *, country: bool = False, ids: bool = False) -> list[list[str]]:
    """A hostile sheet: every row some mix of the cells above, 2% empty or whitespace-only, 2% short, 2% long."""
    rng = random.Random(seed)
    recent: list[str] = []
    header = ["First Name", "Mobile", "Clinic", "ExternalId", "Text"] + (["Country"] if country else [])
    rows = [header]
    for i in range(count):
        u = rng.random()
        if u < 0.02:
            rows.append(rng.choice([[], [""] * len(header), [" "] * len(header), ["\u00a0"], ["", " \t "]]))
            continue
        row = [rng.choice(NAMES), _number(rng, recent), rng.choice(CLINICS),
               rng.choice(["", f"c{i}", "=id", " x ", "-5", "@e"]), rng.choice(TEXTS)]
        if country:
            row.append(rng.choice(COUNTRIES))
        if u < 0.04:
            row = row[:rng.randint(2, len(row) - 1)]
        elif u < 0.06:
            row += [rng.choice(["", "spill", "=over", " "]) for _ in range(rng.randint(1, 3))]
        rows.append([f"r{i}", *row] if ids else row)
    if ids:
        rows[0] = ["Id", *header]
    return rows


def _csv(path: Path, rows: list[list[str]], delimiter: str = ",", end: str = "\n", *, bom: bool = False,
         mixed: bool = False, title: bool = False) -> Path:
    """Rows as a plain file (no quote, no delimiter in a cell: the columns can read it), as exports write it."""
    cells = [[c.replace(delimiter, "_").replace('"', "'") for c in row] for row in rows]
    lines = ([["Contacts spring 2026"], []] if title else []) + cells
    joined = [delimiter.join(row) for row in lines]
    body = "".join(line + ("\r\n" if mixed and i % 3 == 0 else end) for i, line in enumerate(joined))
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body.encode("utf-8"))
    return path


def _read(path: Path) -> object:
    return workbook_parts(path) if path.suffix == ".xlsx" else path.read_bytes()


@pytest.fixture
def three_ways(monkeypatch, tmp_path):
    """Run ``batchsms check|send ARGS`` legacy / rows / columns; each way's (exit code, JSON, files written)."""
    calls: list[str] = []
    by_columns = columnar.check_columns

    def counted(*args, **kwargs):
        calls.append("columns")
        return by_columns(*args, **kwargs)

    monkeypatch.setattr(columnar, "check_columns", counted)

    def run(command: str, sheet: Path, *args: str, outputs: tuple[str, ...] = ("r.csv", "p.csv")):
        made = {}
        for way in ("legacy", "rows", "columns"):
            folder = tmp_path / way
            folder.mkdir()
            with monkeypatch.context() as m, contextlib.ExitStack() as stack:
                if way == "legacy":
                    m.setattr(check_module, "COLUMNAR_MIN_ROWS", 10**12)
                    m.setattr(sheet_module, "COLUMNAR_CSV_BYTES", 10**12)
                    m.setattr(sheet_module, "PANDAS_CSV_BYTES", 10**12)
                files = {"r": folder / outputs[0], "p": folder / outputs[1]}
                argv = [command, str(sheet), *args, "--report", str(files["r"]), "--preview", str(files["p"]),
                        "--json", "--timezone", "Australia/Sydney"]
                env = {"BATCHSMS_CHECK": None if way == "legacy" else way, "BATCHSMS_STATE": str(folder / "state")}
                box = None
                if command == "send":  # a sandbox of its own for each way (it keeps the 5-lease limit)
                    box = stack.enter_context(Sandbox(seed=7))
                    env.update(BATCHSMS_BASE_URL=box.url, BATCHSMS_ACCOUNT_SID=box.account_sid,
                               BATCHSMS_AUTH_TOKEN=box.auth_token, BATCHSMS_PROPERTY_SID="PS1")
                    files["results"] = folder / f"results{sheet.suffix}"
                    argv += ["--results", str(files["results"]), "--yes", "--quiet", "--concurrency", "1",
                             "--batch-size", "100"]
                before = len(calls)
                done = CliRunner().invoke(main, argv, env=env)
                assert done.exception is None or isinstance(done.exception, SystemExit), done.output
                assert done.stdout.startswith("{"), (way, done.output[-2000:])
                summary = json.loads(done.stdout)
                for key in ("report", "preview", "results", "seconds", "host"):
                    summary.pop(key, None)
                written = {k: _read(f) for k, f in files.items() if f.exists()}
                if box is not None:
                    with box.state.lock:
                        written["taken"] = json.dumps(box.state.taken, sort_keys=True).encode()
                    written["results"] = re.sub(rb"M[0-9A-F]{31}", b"<sid>", written["results"])
                made[way] = (done.exit_code, summary, written)
                assert (len(calls) > before) is (way == "columns"), way  # each way took its own path
        return made

    return run


def _assert_same(made: dict) -> None:
    legacy = made["legacy"]
    assert legacy[0] in (0, 1), legacy
    for way in ("rows", "columns"):
        code, summary, files = made[way]
        assert code == legacy[0], way
        assert summary == legacy[1], way
        assert files.keys() == legacy[2].keys(), way
        for name, data in files.items():
            assert data == legacy[2][name], (way, name)


# ------------------------------------------------------------------------------------------- PASS


def test_semicolon_crlf_bom_title_country_text_column_dedupe_optouts(three_ways, tmp_path):
    """~450 KB (split in Python), ';', CRLF, a BOM, a title above the header, a Country column on some rows,
    the Text column as the message, --dedupe and an opt-out list."""
    sheet = _csv(tmp_path / "s.csv", _rows(2100, 11, country=True), ";", "\r\n", bom=True, title=True)
    assert 100_000 < sheet.stat().st_size < 2_000_000
    (tmp_path / "optouts.csv").write_text(OPTOUTS, encoding="utf-8")
    made = three_ways("check", sheet, "--delimiter", ";", "--dedupe", "--suppress", str(tmp_path / "optouts.csv"),
                      "--countries", "AU,NZ")
    _assert_same(made)
    assert made["legacy"][1]["rows_skipped"] > 0 and made["legacy"][1]["rows_with_errors"] > 0


def test_tab_mixed_line_ends_template_with_extension_and_ucs2_characters(three_ways, tmp_path):
    """Tab-delimited, lines ending \\r\\n and \\n mixed, a template adding GSM-7 extension characters and a
    UCS-2 one to the cells, prices, landlines allowed, two segments at most, ExternalId by option."""
    sheet = _csv(tmp_path / "s.csv", _rows(2200, 12), "\t", "\n", mixed=True)
    (tmp_path / "t.txt").write_text("{{ First_Name }} ~ [{{ Clinic }}] {x} € ^ \\ | ’ " + "y" * 100, encoding="utf-8")
    _assert_same(three_ways("check", sheet, "--delimiter", "\t", "--template", str(tmp_path / "t.txt"),
                            "--price", "0.055", "--allow-landlines", "--max-segments", "2",
                            "--external-id-column", "ExternalId"))


def test_pipe_sheet_parsed_by_pandas_column_by_column(three_ways, tmp_path, monkeypatch):
    """As a file of 4 MB and more is read (pandas' C parser, each column parsed when first read), with a Jinja
    template and a template that reads no cell."""
    monkeypatch.setattr(sheet_module, "PANDAS_CSV_BYTES", 0)  # the legacy run sets it out of reach again
    monkeypatch.setattr(sheet_module, "PANDAS_CSV_LINES", 0)
    monkeypatch.setattr(sheet_module, "COLUMNAR_CSV_LINES", 0)  # 2,100 lines: read by columns all the same
    sheet = _csv(tmp_path / "s.csv", _rows(2100, 13, ids=True), "|", "\r\n")
    loaded = load(sheet, delimiter="|")
    assert isinstance(loaded.rows, ColumnRows) and isinstance(loaded.rows.columns, LazyColumns)
    (tmp_path / "t.txt").write_text("{% if Clinic %}Hi {{ First_Name | title }} at {{ row['Clinic'] }}"
                                    "{% else %}Hello{% endif %}", encoding="utf-8")
    _assert_same(three_ways("check", sheet, "--delimiter", "|", "--template", str(tmp_path / "t.txt")))


@pytest.mark.slow
def test_workbook_previews_and_report_as_workbook(three_ways, tmp_path):
    """A workbook of 2,000 rows (text cells, number cells for some numbers): the .xlsx preview and report."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    rng = random.Random(14)
    for n, row in enumerate(_rows(2100, 14, country=True)):
        values: list[object] = [re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", c) or None for c in row]
        if n and len(values) > 1 and rng.random() < 0.15:
            values[1] = rng.choice([61412345678 + rng.randint(0, 999), 412345678 + rng.randint(0, 999)])
        sheet.append(values)
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, never a formula
    path = tmp_path / "s.xlsx"
    book.save(path)
    (tmp_path / "t.txt").write_text("Hi {{ First_Name }}, {{ Clinic }}. Reply STOP to opt out.", encoding="utf-8")
    _assert_same(three_ways("check", path, "--template", str(tmp_path / "t.txt"), "--dedupe",
                            outputs=("r.xlsx", "p.xlsx")))


@pytest.mark.slow
def test_send_takes_the_same_messages_and_writes_the_same_results(three_ways, tmp_path):
    """``send`` to the sandbox, 2,000 rows: the same requests, in the same order, and the same results file."""
    sheet = _csv(tmp_path / "s.csv", _rows(2100, 15), ";", "\r\n", bom=True)
    (tmp_path / "t.txt").write_text("Hi {{ First_Name }} ~ {{ Clinic }} €", encoding="utf-8")
    made = three_ways("send", sheet, "--delimiter", ";", "--template", str(tmp_path / "t.txt"),
                      "--external-id-column", "ExternalId", "--dedupe")
    assert len(json.loads(made["legacy"][2]["taken"])) > 500
    _assert_same(made)


# ------------------------------------------------------------------------------------------- findings


@pytest.mark.parametrize("rows", [3000, 10000])  # ~50 KB: read by csv.reader; ~170 KB: read by columns
def test_space_delimited_sheet_preview_quotes_the_will_text_both_ways(three_ways, tmp_path, rows):
    sheet = tmp_path / "s.csv"
    sheet.write_bytes(("Name Mobile\n" + "".join(f"N{i} 04{12000000 + i:08d}\n" for i in range(rows))).encode())
    assert (sheet.stat().st_size >= sheet_module.COLUMNAR_CSV_BYTES) is (rows > 3000)
    made = three_ways("check", sheet, "--delimiter", " ", "--text", "Hi{{ Name }}")
    lines = list(csv.reader(io.StringIO(made["columns"][2]["p"].decode("utf-8-sig")), delimiter=" "))
    assert {len(line) for line in lines} == {len(lines[0])}, lines[1]  # every line as wide as the header
    _assert_same(made)


@pytest.mark.parametrize("streamed", [False, True])
def test_header_row_past_20_on_a_file_read_by_columns(tmp_path, monkeypatch, streamed):
    """Read by columns, or streamed as a file of 256 MB and more is (STREAM_BYTES lowered here)."""
    lines = [f"Report line {i},generated" for i in range(24)] + ["Name,Mobile"]
    lines += [f"N{i},04{12000000 + i:08d}" for i in range(10000)]
    path = tmp_path / "s.csv"
    path.write_bytes(codecs.BOM_UTF8 + ("\n".join(lines) + "\n").encode())
    assert path.stat().st_size > sheet_module.COLUMNAR_CSV_BYTES
    by_csv = load(path, header_row=25, columnar=False)
    assert by_csv.header == ["Name", "Mobile"] and len(by_csv.rows) == 10000
    if streamed:
        monkeypatch.setattr(sheet_module, "STREAM_BYTES", 1)
    read = load(path, header_row=25)  # was SheetError: has no row 25 to use as the header (it has 20 rows)
    assert type(read.rows).__name__ == ("StreamedRows" if streamed else "ColumnRows")
    assert list(read.rows) == list(by_csv.rows)
    assert read.preamble == by_csv.preamble and read.row_numbers[:2] == by_csv.row_numbers[:2] == [26, 27]
