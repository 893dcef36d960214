"""Write a table (header + rows) as CSV or .xlsx, with every cell inert and every value keeping its type.

Every workbook the tool writes (preview, results, report) goes through :func:`write_table`,
so what a person sees in Excel is decided here once:

* Cell types survive: ``int``/``float`` are numbers (``=SUM`` over Segments works, Row sorts as
  a number), ``datetime``/``date``/``time``/``timedelta`` are real Excel serials with a date,
  date-time, time or duration format, ``bool`` is TRUE/FALSE, ``None`` an empty cell. A string is
  *always* an inline string, never a formula: ``=SUM(A1:A9)`` from a user's cell stays text (a
  library's generic ``write``/``append`` turns it into a live formula).
* A :class:`Marked` value is a cell that caused a problem: filled red (error) or amber (warning),
  with a comment holding the problem in plain English.
* The ``status_column`` is coloured by its value; the header is bold, frozen and has an
  autofilter; column widths are fitted to the header and the first rows; ``summary`` becomes a
  second sheet, **Summary**.

CSV gets the same rows as text (numbers as Excel shows them, dates ISO), made inert by
:func:`cells.csv_safe`; fills, comments and the summary have no place in CSV and are dropped.

Why a hand-written streaming writer rather than a library: measured by
``python benchmarks/bench_xlsx.py --compare`` (200,000 rows x 15 typed columns, ~5% of the cells
marked with a fill and a comment (148k comments), a coloured Status column, a Summary sheet;
the same workbook from each writer, read back alike by openpyxl; the write alone, in a child
process, 3 runs per session on this noisy 2-core machine; the libraries in two sessions,
this module in three, the last without ``--compare``):

=====================================  ==================  ============
writer                                 wall s (min - max)  peak RSS MB
=====================================  ==================  ============
this module (streamed XML, zlib 1)     2.78 - 3.32         51
xlsxwriter 3.3.1, ``constant_memory``  24.3 - 27.5         187
openpyxl 3.1.5, ``write_only``         51.4 - 60.8         924
=====================================  ==================  ============

The libraries spend their time per cell in Python objects (a ``Format`` or ``WriteOnlyCell``
per styled cell, a comment object per mark, XML built through generic writers), and openpyxl
holds every comment until the end. Here a row is a few f-strings; whether its strings need
escaping is decided once per row by C-speed string methods over the row's joined text (a
regex test per cell made the same write 5.1 s); comments stream to a temporary file and
their VML boxes are rebuilt at the end from 12 bytes per comment; so memory stays flat
however many rows: only the first :data:`WIDTH_SAMPLE` rows are held, to fit the column
widths before the sheet starts (``<cols>`` precedes ``<sheetData>``). xlsxwriter's
``constant_memory`` mode does work for this (verified: ``write_comment`` is accepted while its
row is the current one, ``set_column`` and ``autofilter`` may come at the end), but it is 8x
slower, so no dependency is added.
"""

from __future__ import annotations

import array
import codecs
import contextlib
import csv
import datetime as dt
import functools
import io
import math
import numbers
import os
import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypeAlias

from .cells import csv_safe

if TYPE_CHECKING:
    import numpy as np

# --------------------------------------------------------------------------- the public surface

#: The kinds of fill a cell can get, and their colours (ARGB without alpha): Excel's own
#: "Bad", "Neutral" and "Good" cell-style fills, a grey and an orange.
FILLS: dict[str, str] = {
    "error": "FFC7CE",
    "warning": "FFEB9C",
    "good": "C6EFCE",
    "muted": "D9D9D9",
    "unknown": "F4B084",
}
#: How the ``status_column`` is coloured: by the cell's first word, ignoring case.
STATUS_FILLS: dict[str, str] = {
    **dict.fromkeys(("ready", "valid", "sent", "scheduled", "delivered"), "good"),
    **dict.fromkeys(("error", "invalid", "failed"), "error"),
    "warning": "warning",
    **dict.fromkeys(("skipped", "pending"), "muted"),
    "unknown": "unknown",
}
#: A comment longer than this is cut (with "…"): a note is read in a hover box, not a document.
MAX_NOTE = 1000
#: The most a cell can hold in Excel (UTF-16 code units); a longer text is cut, saying how much.
MAX_CELL = 32767
#: Column widths are fitted to the header and this many rows (the rows held before the sheet starts).
WIDTH_SAMPLE = 2000
MIN_WIDTH, MAX_WIDTH = 6, 60
SUMMARY_SHEET = "Summary"


@dataclass(frozen=True, slots=True)
class Marked:
    """A cell value that caused a problem: ``level`` "error" fills it red, "warning" amber, and
    ``note`` (plain English: what is wrong and how to fix it) becomes its comment.

    ``level`` may be a :class:`codes.Severity` (an issue's own severity); it is kept as the plain
    string. Only a workbook shows the mark; CSV gets the bare ``value``.
    """

    value: Value
    level: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.level not in ("error", "warning"):
            raise ValueError(f"Marked level must be 'error' or 'warning', not {self.level!r}")
        if isinstance(self.value, Marked):
            raise TypeError("a Marked value cannot hold another Marked value")
        # A str Enum hashes by its name: the plain text is what the fill lookup needs.
        object.__setattr__(self, "level", str.__str__(self.level))


#: What a cell may hold (a ``str`` subclass such as ``Status`` is its text; anything else is
#: written as ``str(value)``).
Value: TypeAlias = "str | int | float | bool | dt.datetime | dt.date | dt.time | dt.timedelta | None"
Cell: TypeAlias = "Value | Marked"
#: A row: cells of any of those kinds (typed loosely, as callers build plain lists).
Row: TypeAlias = Sequence[Any]

# --------------------------------------------------------------------------- text of a value (CSV)


def cell_text(value: object) -> str:
    """The text a person sees for ``value`` in Excel's General format (what CSV holds).

    The same reading as :func:`sheet.cell_text` uses for workbook cells, so a CSV written
    here reads back as the workbook would: ``3.0`` is ``3``, ``0.1 + 0.2`` is ``0.3``
    (15 significant digits, like Excel), a datetime is ``2026-12-01 09:30:00``.
    """
    if type(value) is Marked:
        value = value.value
    if value is None:
        return ""
    if isinstance(value, str):
        return str.__str__(value)  # a str-mixin Enum's own text, never "Status.VALID"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return format(number, ".15g")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _texts(row: Row) -> Row:
    """``row`` with every cell as text; a row that is all strings already is returned as it is."""
    try:
        "".join(row)  # one C call tells an all-text row (the common case) apart
        return row
    except TypeError:
        return [cell if type(cell) is str else cell_text(cell) for cell in row]


# --------------------------------------------------------------------------- CSV


def _umask() -> int:
    """The process's umask (read by setting it, then putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _inert_rows(rows: Iterable[Row], quoted: Any, already_safe: bool) -> Iterator[Row]:
    """``rows`` as text with every cell inert (see :mod:`cells`); a row holding a cell made inert is
    written here and now by ``quoted`` (every field in quotes) instead of being yielded.

    ``csv.writer.writerows`` writes each row as it takes it from this generator, so
    the rows written here land in their place in the file. Quoting keeps a
    neutralised cell one field for a spreadsheet that splits at its delimiter.
    """
    for row in rows:
        if already_safe:  # the caller ran csv_safe: a changed cell starts with '
            try:
                joined = "\x00".join(row)
            except TypeError:  # numbers, dates: their text is inert by nature
                row = _texts(row)
                joined = "\x00".join(row)
            if joined.startswith("'") or "\x00'" in joined:
                quoted.writerow(row)
                continue
            yield row
            continue
        row = _texts(row)
        cells = [csv_safe(c) for c in row]
        # csv_safe returns an unchanged value as the same object: comparing is one C loop of identity checks.
        if cells != (row if type(row) is list else list(row)):
            quoted.writerow(cells)
            continue
        yield cells


def write_csv(path: Path, header: Sequence[Cell], rows: Iterable[Row], delimiter: str = ",",
              safe: bool = False, preamble: Sequence[Row] = ()) -> None:
    """UTF-8 with a BOM (so Excel reads the accents right), formula-like cells made inert and quoted.

    ``safe=True`` says the caller already made every text cell inert (see :func:`cells.csv_safe`);
    numbers and dates are inert by nature.
    """
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        quoted = csv.writer(fh, delimiter=delimiter, quoting=csv.QUOTE_ALL)
        writer.writerows(_inert_rows(preamble, quoted, False))
        writer.writerows(_inert_rows([header], quoted, False))
        writer.writerows(_inert_rows(rows, quoted, safe))


# --------------------------------------------------------------------------- CSV by columns

_TRIGGERS = b"=@+-\t\r"  # what cells.csv_safe looks for first: a cell without any is inert


class CsvColumn:
    """A column for :func:`csv_lines` whose cells were made CSV fields by the caller, once per distinct value.

    ``fields`` holds each row's field (made inert by :func:`cells.csv_safe` and quoted as
    ``csv.writer`` quotes), ``values`` each row's text as it is, and ``unsafe`` the rows whose
    text ``csv_safe`` changes (their row is written with every field quoted).
    """

    def __init__(self, fields: Sequence[str], values: Sequence[str], unsafe: Iterable[int] = ()) -> None:
        self.fields, self.values, self.unsafe = fields, values, list(unsafe)

    @classmethod
    def of_distinct(cls, table: Sequence[str], ids: Sequence[int], delimiter: str = ",") -> CsvColumn:
        """The column whose row i holds ``table[ids[i]]``: each distinct text made a field once."""
        import numpy as np

        made_fields = [csv_field(t, delimiter) for t in table]
        fields = [f for f, _ in made_fields]
        unsafe_ids = [k for k, (_, changed) in enumerate(made_fields) if changed]
        ids = np.asarray(ids)
        values = np.asarray(list(table) + [""], dtype=object)[ids].tolist()
        made = np.asarray(fields + [""], dtype=object)[ids].tolist()
        unsafe = np.flatnonzero(np.isin(ids, unsafe_ids)).tolist() if unsafe_ids else []
        return cls(made, values, unsafe)


def csv_field(value: str, delimiter: str = ",") -> tuple[str, bool]:
    """``value`` as a field of :func:`csv_lines`, and whether ``csv_safe`` changed it (its row is then quoted)."""
    return _quoted(value, delimiter), changes(value)


#: ASCII digits as "0": cells.csv_safe reads every digit alike (its regexes say ``\d``, its string tests
#: ``isdigit``/``isalnum``), so whether it changes a value depends only on the value with its digits as 0.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")  # on UTF-8: ~10x quicker than str.translate
_CHANGES: dict[bytes, bool] = {}
_QUICK_TRIGGER = re.compile(r"[=@+\-\t\r]").search


def changes(value: str) -> bool:
    """Whether :func:`cells.csv_safe` changes ``value``, asked once per shape of value (digits as 0): a
    column of phone numbers or of messages naming rows and numbers has few shapes."""
    if not value or value.isalnum() or _QUICK_TRIGGER(value) is None:  # csv_safe's own first test
        return False
    shape = value.encode("utf-8", "surrogatepass").translate(_DIGITS_AS_ZERO)
    found = _CHANGES.get(shape)
    if found is None:
        if len(_CHANGES) > 100_000:
            _CHANGES.clear()
        text = shape.decode("utf-8", "surrogatepass")
        found = _CHANGES[shape] = csv_safe(text) is not text
    return found


def _quoted(value: str, delimiter: str) -> str:
    """``value`` as ``csv.writer`` writes a field (QUOTE_MINIMAL)."""
    if delimiter in value or '"' in value or "\r" in value or "\n" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _holding(values: Sequence[str], *wanted: bytes) -> list[np.ndarray] | None:
    """For each of ``wanted``, whether each value holds any of its (ASCII) bytes: one pass over the values'
    joined bytes, in numpy; None when a value holds NUL (the joint), so that each must be asked."""
    import numpy as np

    count = len(values)
    blob = "\x00".join(values).encode("utf-8", "surrogatepass")
    data = np.frombuffer(blob, dtype=np.uint8)
    joints = np.flatnonzero(data == 0)
    if len(joints) != count - 1:
        return None
    found = []
    for characters in wanted:
        table = np.zeros(256, dtype=bool)
        table[list(characters)] = True
        hits = np.flatnonzero(table[data])
        rows = np.zeros(count, dtype=bool)
        rows[np.searchsorted(joints, hits)] = True  # the joint after a hit ends its value
        found.append(rows)
    return found


def _quote_fields(values: list[str], quotes: Iterable[int], delimiter: str) -> list[str]:
    """``values`` with the field at each index in ``quotes`` (those that may need it) quoted as ``csv.writer``
    quotes it; ``values`` itself, uncopied, when none changed, else a copy (the caller's list stays as it was)."""
    made = values
    for index in quotes:
        value = values[index]
        field = _quoted(value, delimiter)
        if field is not value:
            if made is values:
                made = list(values)
            made[index] = field
    return made


def safe_csv_lines(columns: Sequence[Sequence[str]], delimiter: str = ",") -> list[str]:
    """:func:`csv_lines` for columns the caller already made inert (``write_table``'s ``csv_rows``): a row
    with a cell starting with ``'`` is written with every field quoted, as :func:`write_csv` does."""
    import numpy as np

    if not columns:
        return []
    count = len(columns[0])
    flagged = np.zeros(count, dtype=bool)
    fields: list[Sequence[str]] = []
    quote = (delimiter + '"\r\n').encode()
    for values in columns:
        values = values if isinstance(values, list) else list(values)
        blob = "\x00".join(values)
        if blob.count("\x00") != count - 1:
            flagged |= np.fromiter((v.startswith("'") for v in values), dtype=bool, count=count)
            quotes = range(count)
        else:
            data = np.frombuffer(blob.encode("utf-8", "surrogatepass"), dtype=np.uint8)
            joints = np.flatnonzero(data == 0)
            starts = np.concatenate(([0], joints + 1))
            if len(data):  # an empty last value starts past the end: read the joint before it instead
                flagged |= data[np.minimum(starts, len(data) - 1)] == 39
                if not values[-1]:
                    flagged[-1] = False
            table = np.zeros(256, dtype=bool)
            table[list(quote)] = True
            quotes = np.unique(np.searchsorted(joints, np.flatnonzero(table[data]))).tolist()
        fields.append(_quote_fields(values, quotes, delimiter))
    lines = list(map(delimiter.join, zip(*fields, strict=True)))
    for index in np.flatnonzero(flagged).tolist():
        lines[index] = delimiter.join('"' + column[index].replace('"', '""') + '"' for column in columns)
    return lines


def safe_csv_line(cells: Sequence[str], delimiter: str = ",") -> str:
    """One row's line as :func:`safe_csv_lines` makes it, without its column scans (for lines made one at a
    time: a report line's text after its row number, made once per distinct verdict)."""
    line = delimiter.join(cells)
    # most lines: no cell made inert (none starts with ', so the line holds none) and none to quote
    if ("'" not in line and '"' not in line and "\r" not in line and "\n" not in line
            and line.count(delimiter) == len(cells) - 1):
        return line
    if any(cell.startswith("'") for cell in cells):
        return delimiter.join('"' + cell.replace('"', '""') + '"' for cell in cells)
    return delimiter.join(_quoted(cell, delimiter) for cell in cells)


def csv_lines(columns: Sequence[Sequence[str] | CsvColumn], delimiter: str = ",") -> list[str]:
    """The CSV lines (without line ends) of rows given as columns of text, exactly as :func:`write_csv`
    writes them: every cell made inert by :func:`cells.csv_safe`, a row holding a cell it changed
    written with every field quoted, any other row quoted where ``csv.writer`` quotes.

    Most cells hold none of the characters either step looks for, so each column is scanned
    once for them (its bytes, in numpy) and only the cells found go through ``csv_safe`` or get
    quotes; a :class:`CsvColumn` comes made already. A preview of a million rows by 13 columns
    costs ~1 s instead of ~12 s; ``tests/test_columnar_equivalence.py`` compares the result with
    ``write_csv`` byte for byte.
    """
    import numpy as np

    if not columns:
        return []
    fields: list[Sequence[str]] = []
    raw: list[Sequence[str]] = []
    changed: dict[int, None] = {}
    quote = (delimiter + '"\r\n').encode()
    for column in columns:
        if isinstance(column, CsvColumn):
            fields.append(column.fields)
            raw.append(column.values)
            changed.update(dict.fromkeys(column.unsafe))
            continue
        values = column if isinstance(column, list) else list(column)
        raw.append(values)
        found = _holding(values, _TRIGGERS, quote) if delimiter.isascii() else None
        if found is None:
            candidates, quotes = range(len(values)), range(len(values))
        else:
            candidates, quotes = (np.flatnonzero(f).tolist() for f in found)
        for index in candidates:
            if changes(values[index]):
                changed[index] = None
        fields.append(_quote_fields(values, quotes, delimiter))
    lines = list(map(delimiter.join, zip(*fields, strict=True)))
    for index in changed:
        lines[index] = delimiter.join('"' + csv_safe(column[index]).replace('"', '""') + '"' for column in raw)
    return lines


def csv_line(cells: Sequence[str], delimiter: str = ",") -> str:
    """One row's line as :func:`csv_lines` makes it, without its column scans (whose numpy set-up costs
    ~0.2 ms a call: for the odd rows a preview writes one at a time)."""
    if any(changes(cell) for cell in cells):
        return delimiter.join('"' + csv_safe(cell).replace('"', '""') + '"' for cell in cells)
    return delimiter.join(_quoted(cell, delimiter) for cell in cells)


def write_csv_lines(path: str | Path, header: Sequence[Cell], lines: Iterable[str] | Iterable[list[str]],
                    delimiter: str = ",", preamble: Sequence[Row] = (), mode: int | None = None,
                    chunked: bool = False) -> None:
    """A CSV file as :func:`write_table` writes it (UTF-8 with a BOM, atomically), its header and
    ``preamble`` written here and its rows given as lines (:func:`csv_lines`; "" is an empty row),
    or with ``chunked`` as lists of lines made a chunk at a time (the file's memory is a chunk's)."""

    def write(tmp: Path) -> None:
        head = io.StringIO(newline="")
        writer = csv.writer(head, delimiter=delimiter)
        quoted = csv.writer(head, delimiter=delimiter, quoting=csv.QUOTE_ALL)
        writer.writerows(_inert_rows(preamble, quoted, False))
        writer.writerows(_inert_rows([header], quoted, False))
        if chunked:
            chunks: Iterable[list[str]] = lines  # type: ignore[assignment]
        else:
            rows = lines if isinstance(lines, list) else list(lines)
            chunks = (rows[start:start + 65536] for start in range(0, len(rows), 65536))  # type: ignore[misc]
        with open(tmp, "wb") as fh:
            fh.write(codecs.BOM_UTF8 + head.getvalue().encode("utf-8"))
            for chunk in chunks:
                if chunk:
                    fh.write(("\r\n".join(chunk) + "\r\n").encode("utf-8"))

    _atomically(Path(path), mode, write)


# --------------------------------------------------------------------------- workbook parts

# Characters XML 1.0 cannot hold at all (control characters other than tab, LF, CR; lone surrogates).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Excel holds numbers as doubles: an integer beyond 15 digits would silently change, so it is text.
_EXACT_INT = 10**15
_EPOCH = dt.datetime(1899, 12, 30)
_EPOCH_ORDINAL = _EPOCH.toordinal()
#: Before 1 March 1900 Excel's serials are off by its phantom 29 Feb 1900: such dates are written as text.
_FIRST_DATE = dt.date(1900, 3, 1)

# Number formats (custom ids start at 164) and fills, in the order of styles.xml.
_FORMATS = ("", "yyyy-mm-dd", "yyyy-mm-dd hh:mm:ss", "hh:mm:ss", "[h]:mm:ss")
_GENERAL, _DATE, _DATETIME, _TIME, _DURATION = range(5)
_FILL_ORDER = ("", *FILLS)  # 0 is "no fill"
_FILL_INDEX = {name: i for i, name in enumerate(_FILL_ORDER)}
_BOLD = 1


def _xf(fill: int, fmt: int) -> int:
    """The cellXfs index of a fill (index in _FILL_ORDER) with a number format (index in _FORMATS)."""
    return 0 if fill == fmt == 0 else 2 + fill * len(_FORMATS) + fmt


def _styles() -> str:
    num_fmts = "".join(f'<numFmt numFmtId="{163 + i}" formatCode="{code}"/>' for i, code in enumerate(_FORMATS) if code)
    fills = "".join(f'<fill><patternFill patternType="solid"><fgColor rgb="FF{FILLS[name]}"/><bgColor indexed="64"/>'
                    f'</patternFill></fill>' for name in _FILL_ORDER[1:])
    xfs = ['<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>',
           '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>']
    for fill in range(len(_FILL_ORDER)):
        for fmt in range(len(_FORMATS)):
            num = 163 + fmt if fmt else 0
            fill_id = fill + 1 if fill else 0  # fill 1 of styles.xml is the obligatory gray125
            applied = (' applyNumberFormat="1"' if fmt else "") + (' applyFill="1"' if fill else "")
            xfs.append(f'<xf numFmtId="{num}" fontId="0" fillId="{fill_id}" borderId="0" xfId="0"{applied}/>')
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<numFmts count="{len(_FORMATS) - 1}">{num_fmts}</numFmts>'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        f'<fills count="{len(_FILL_ORDER) + 1}"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>{fills}</fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        '</styleSheet>'
    )


_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_ROOT_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{_PKG_REL_NS}">
<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
_SHEET_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{_PKG_REL_NS}">
<Relationship Id="rId1" Type="{_REL_NS}/vmlDrawing" Target="../drawings/vmlDrawing1.vml"/>
<Relationship Id="rId2" Type="{_REL_NS}/comments" Target="../comments1.xml"/>
</Relationships>"""
_VML_HEAD = """<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" xmlns:x="urn:schemas-microsoft-com:office:excel">
<o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="{blocks}"/></o:shapelayout>
<v:shapetype id="_x0000_t202" coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe"><v:stroke joinstyle="miter"/><v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>
"""
_VML_SHAPE = (
    '<v:shape id="_x0000_s{id}" type="#_x0000_t202" style="position:absolute;margin-left:59.25pt;margin-top:1.5pt;'
    'width:{width}pt;height:{height}pt;z-index:{z};visibility:hidden" fillcolor="#ffffe1" o:insetmode="auto">'
    '<v:fill color2="#ffffe1"/><v:shadow on="t" color="black" obscured="t"/><v:path o:connecttype="none"/>'
    '<v:textbox style="mso-direction-alt:auto"><div style="text-align:left"></div></v:textbox>'
    '<x:ClientData ObjectType="Note"><x:MoveWithCells/><x:SizeWithCells/>'
    '<x:Anchor>{left}, 15, {top}, 2, {right}, 15, {bottom}, 16</x:Anchor><x:AutoFill>False</x:AutoFill>'
    '<x:Row>{row}</x:Row><x:Column>{col}</x:Column></x:ClientData></v:shape>\n'
)


def _column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


_LETTERS = [_column_letter(i) for i in range(256)]


def _letter(index: int) -> str:
    return _LETTERS[index] if index < 256 else _column_letter(index)


def sheet_name(name: str, fallback: str = "Sheet1") -> str:
    """``name`` as Excel allows a sheet name: no ``[]:*?/\\``, no XML-illegal character, no quote
    at either end, 31 characters at most, not empty, not the reserved "History"."""
    name = _XML_ILLEGAL.sub("", re.sub(r"[\[\]:*?/\\]", "_", name))[:31].strip("'")
    if name.lower() == "history":
        return name + "_"
    return name or fallback


def _quoted_sheet(name: str) -> str:
    """The sheet as a formula reference names it (for the autofilter's defined name)."""
    return "'" + name.replace("'", "''") + "'"


def _clip_utf16(value: str) -> str:
    """``value`` cut to what a cell can hold, saying how much was cut (Excel counts UTF-16 units)."""
    if len(value.encode("utf-16-le")) // 2 <= MAX_CELL:
        return value
    cut = MAX_CELL - 40
    while len(value[:cut].encode("utf-16-le")) // 2 > cut:
        cut -= 1000
    return f"{value[:cut]}… ({len(value) - cut:,} more characters)"


def _xml_escape(text: str, entities: dict[str, str] | None = None) -> str:
    """``xml.sax.saxutils.escape``, imported when first needed: that module imports urllib.request
    (and with it http.client, ssl and email), ~20 ms that a run writing no workbook would pay."""
    from xml.sax.saxutils import escape as sax_escape

    return sax_escape(text, entities or {})


def _text_xml(value: str) -> str:
    """The escaped content of a ``<t>`` for any text (the slow path; most cells never come here)."""
    if len(value) > MAX_CELL // 2:
        value = _clip_utf16(value)
    # A carriage return as a character reference: XML parsers turn a literal one into a line feed.
    return _xml_escape(_XML_ILLEGAL.sub("", value), {"\r": "&#13;"})


def _plain(text: str) -> bool:
    """True when ``text`` can go between ``<t>`` tags as it is: short enough, printable (so no
    XML-illegal character, line break or tab, nor a space other than " "), no markup character,
    and no space at either end (Excel trims those without xml:space="preserve").

    A handful of C-speed string methods: a regex scanning for the same characters costs 3-10x
    more per cell, and this runs on millions of cells. Applied to a whole row's text joined by
    ``|``, a false alarm (a cell holding ``a | b``) only sends that row down the careful path.
    """
    return (len(text) <= MAX_CELL // 2 and text.isprintable() and "&" not in text and "<" not in text
            and ">" not in text and not text.startswith(" ") and not text.endswith(" ")
            and "| " not in text and " |" not in text)


def _inline(value: str, style: int) -> str:
    s = f' s="{style}"' if style else ""
    if not value:
        return f"<c{s}/>"
    if _plain(value):
        return f'<c{s} t="inlineStr"><is><t>{value}</t></is></c>'
    return f'<c{s} t="inlineStr"><is><t xml:space="preserve">{_text_xml(value)}</t></is></c>'


def _number(value: str, style: int) -> str:
    return f'<c s="{style}"><v>{value}</v></c>' if style else f"<c><v>{value}</v></c>"


def _cell(value: object, fill: int) -> str:
    """One cell of any type with a fill (0 for none): the general path, for everything not plain."""
    if value is None:
        return f'<c s="{_xf(fill, 0)}"/>' if fill else "<c/>"
    if isinstance(value, str):
        return _inline(str.__str__(value), _xf(fill, 0))
    if isinstance(value, bool):
        return f'<c{_s(fill, 0)} t="b"><v>{int(value)}</v></c>'
    if isinstance(value, numbers.Integral):
        number = int(value)
        if -_EXACT_INT < number < _EXACT_INT:
            return _number(str(number), _xf(fill, 0))
        return _inline(str(number), _xf(fill, 0))
    if isinstance(value, numbers.Real):
        real = float(value)
        if math.isfinite(real):
            return _number(repr(real), _xf(fill, 0))
        return _inline(str(real), _xf(fill, 0))  # Excel has no NaN or infinity: shown as text
    if isinstance(value, dt.datetime):
        # Excel has no time zones: an aware datetime is written as the wall time of its own zone.
        naive = dt.datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                            value.microsecond)
        if naive.date() < _FIRST_DATE:
            return _inline(cell_text(value), _xf(fill, 0))
        delta = naive - _EPOCH
        serial = delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400
        return _number(repr(serial), _xf(fill, _DATETIME))
    if isinstance(value, dt.date):
        if value < _FIRST_DATE:
            return _inline(cell_text(value), _xf(fill, 0))
        return _number(str(value.toordinal() - _EPOCH_ORDINAL), _xf(fill, _DATE))
    if isinstance(value, dt.time):
        seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
        return _number(repr(seconds / 86400), _xf(fill, _TIME))
    if isinstance(value, dt.timedelta):
        return _number(repr(value.total_seconds() / 86400), _xf(fill, _DURATION))
    return _inline(str(value), _xf(fill, 0))


def _s(fill: int, fmt: int) -> str:
    style = _xf(fill, fmt)
    return f' s="{style}"' if style else ""


@functools.lru_cache(maxsize=4096)
def _note_xml(note: str) -> tuple[str, int]:
    """A note as comment XML (illegal characters out, cut at MAX_NOTE, escaped) and its box's
    height in rows; remembered, as the same problem text recurs on many rows."""
    note = _XML_ILLEGAL.sub("", note)
    if len(note) > MAX_NOTE:
        note = note[:MAX_NOTE - 1] + "…"
    return _xml_escape(note, {"\r": "&#13;"}), min(30, 2 + (len(note) + note.count("\n") * 40) // 36)


class _Notes:
    """The comments of a sheet, streamed to a temporary file as the rows are written.

    Only each comment's position and box size stay in memory (12 bytes), for the VML
    drawing Excel needs to show the comments, which is written after the sheet.
    """

    def __init__(self, widths: Sequence[float]) -> None:
        self.file: IO[str] | None = None
        self.rows = array.array("I")
        self.cols = array.array("I")
        self.heights = array.array("I")
        self.widths = widths

    def add(self, row: int, col: int, note: str) -> None:
        """A comment on the cell at 0-based ``row``, ``col``."""
        text, height = _note_xml(note)
        if not text:
            return
        if self.file is None:
            # Closed by write() or discard(): it lives across the rows, so no with-block can hold it.
            self.file = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.file.write(f'<comment ref="{_letter(col)}{row + 1}" authorId="0"><text><t xml:space="preserve">'
                        f'{text}</t></text></comment>')
        self.rows.append(row)
        self.cols.append(col)
        self.heights.append(height)

    def __len__(self) -> int:
        return len(self.rows)

    def write(self, zf: zipfile.ZipFile) -> None:
        """xl/comments1.xml and xl/drawings/vmlDrawing1.vml."""
        if self.file is None:
            return
        self.file.seek(0)
        with zf.open("xl/comments1.xml", "w", force_zip64=True) as out:
            out.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<comments xmlns="{_MAIN_NS}">'
                      '<authors><author>batchsms</author></authors><commentList>'.encode())
            while chunk := self.file.read(1 << 20):
                out.write(chunk.encode("utf-8", "replace"))
            out.write(b"</commentList></comments>")
        self.file.close()
        self.file = None
        count = len(self.rows)
        with zf.open("xl/drawings/vmlDrawing1.vml", "w", force_zip64=True) as out:
            # Shape ids come in blocks of 1,024, each block listed in the idmap.
            out.write(_VML_HEAD.format(blocks=",".join(str(b) for b in range(1, 2 + count // 1024))).encode())
            buffer = []
            boxes: dict[int, tuple[int, float]] = {}
            shape = _VML_SHAPE.format
            for i in range(count):
                row, col, height = self.rows[i], self.cols[i], self.heights[i]
                if col not in boxes:
                    boxes[col] = self._box(col)
                right, width = boxes[col]
                top = row - 1 if row else 0
                buffer.append(shape(id=1025 + i, z=i + 1, row=row, col=col, left=col + 1, top=top, right=right,
                                    bottom=top + height, width=width, height=height * 15))
                if len(buffer) >= 2000:
                    out.write("".join(buffer).encode())
                    buffer.clear()
            buffer.append("</xml>")
            out.write("".join(buffer).encode())

    def _box(self, col: int) -> tuple[int, float]:
        """The column the comment box of a cell in ``col`` ends at, and its width in points: about
        36 characters wide, starting right of the cell (the widths are the sheet's own)."""
        right, box = col + 1, 0.0
        while box < 36 and right < col + 6:
            box += self.widths[right] if right < len(self.widths) else 8.43
            right += 1
        return right, round(box * 5.25 + 5, 1)

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


# --------------------------------------------------------------------------- widths


def _display_width(value: object) -> int:
    """About how many characters wide ``value`` shows (East Asian wide characters count two)."""
    if type(value) is Marked:
        value = value.value
    if value is None:
        return 0
    if isinstance(value, str):
        longest = max(value.split("\n"), key=len) if "\n" in value else value
        if longest.isascii():
            return len(longest)
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in longest[:MAX_WIDTH * 2])
    if isinstance(value, bool):
        return 5
    if isinstance(value, dt.datetime):
        return 19
    if isinstance(value, (dt.date, dt.time)):
        return 10
    if isinstance(value, numbers.Real):
        return min(len(cell_text(value)), 12)  # Excel shows ~11 significant characters in a General cell
    return len(str(value))


def fit_widths(header: Sequence[object], rows: Iterable[Row], extra: int = 2) -> list[float]:
    """A width per column (in Excel's character units) fitting the header and ``rows``, within
    :data:`MIN_WIDTH` and :data:`MAX_WIDTH`. The header gets 2 more for its filter button."""
    chars = [_display_width(v) + 2 for v in header]
    for row in rows:
        if len(row) > len(chars):
            chars += [0] * (len(row) - len(chars))
        for i, value in enumerate(row):
            if value is not None and value != "":
                width = _display_width(value)
                if width > chars[i]:
                    chars[i] = width
    return [float(min(MAX_WIDTH, max(MIN_WIDTH, n + extra))) for n in chars]


def _cols_xml(widths: Sequence[float]) -> str:
    if not widths:
        return ""
    cols = "".join(f'<col min="{i}" max="{i}" width="{w:g}" customWidth="1"/>' for i, w in enumerate(widths, 1))
    return f"<cols>{cols}</cols>"


# --------------------------------------------------------------------------- the sheet stream


def _status_style(value: object, cache: dict[object, int]) -> int:
    """The fill index for a status cell (0: unfilled), remembered per distinct value."""
    try:
        return cache[value]
    except (KeyError, TypeError):
        pass
    word = re.match(r"\s*([a-z]*)", cell_text(value).lower())
    fill = _FILL_INDEX[STATUS_FILLS[word.group(1)]] if word and word.group(1) in STATUS_FILLS else 0
    if len(cache) < 1000:
        with contextlib.suppress(TypeError):  # an unhashable value is simply not remembered
            cache[value] = fill
    return fill


class _SheetWriter:
    """Turns rows into ``<row>`` elements, numbering them and routing marks to the comments."""

    def __init__(self, notes: _Notes, status_column: int | None) -> None:
        self.notes = notes
        self.status_column = status_column
        self.status_cache: dict[object, int] = {}
        self.row = 0  # rows written so far
        self.width = 0  # the widest row so far

    def rows(self, rows: Iterable[Row], style: int = 0, label_style: int = 0, data: bool = True) -> Iterator[str]:
        """The XML of each row, one string per row (empty rows included, so row N stays row N).

        ``style`` styles every text cell (the header's bold); ``label_style`` only the first cell;
        only ``data`` rows (not the preamble or header) get the status colours.
        """
        notes_add = self.notes.add
        status_column = self.status_column if data else None
        status_xml: dict[object, str] = {}  # a status value → its coloured cell (a few distinct values)
        epoch, first_datetime = _EPOCH, dt.datetime.combine(_FIRST_DATE, dt.time())
        datetime_style, datetime = _xf(0, _DATETIME), dt.datetime
        track = data or bool(style)  # the filter spans the header and data, not a wide title row
        for row in rows:
            number = self.row
            self.row = number + 1
            if track and len(row) > self.width:
                self.width = len(row)
            # One check of the row's text decides whether its strings need escaping (rarely).
            plain = _plain("|".join([v for v in row if type(v) is str]))
            parts = ["<row>"]
            append = parts.append
            for v in row:
                t = type(v)
                if t is str:
                    if not v:
                        append("<c/>")
                    elif plain:
                        append(f'<c t="inlineStr"><is><t>{v}</t></is></c>')
                    else:
                        append(_inline(v, 0))
                elif v is None:
                    append("<c/>")
                elif t is int:
                    append(f"<c><v>{v}</v></c>" if -_EXACT_INT < v < _EXACT_INT else _cell(v, 0))
                elif t is float:
                    append(f"<c><v>{v!r}</v></c>" if math.isfinite(v) else _cell(v, 0))
                elif t is datetime and v.tzinfo is None and v >= first_datetime:
                    d = v - epoch
                    append(f'<c s="{datetime_style}"><v>{(d.days + (d.seconds + d.microseconds / 1e6) / 86400)!r}</v></c>')
                elif t is Marked:
                    append(_cell(v.value, _FILL_INDEX[v.level]))
                    if v.note:
                        notes_add(number, len(parts) - 2, v.note)
                elif isinstance(v, str):  # a str Enum (Status): its own text
                    append(_inline(str.__str__(v), 0))
                else:
                    append(_cell(v, 0))
            if status_column is not None and status_column < len(row):
                value = row[status_column]
                if type(value) is not Marked:
                    try:
                        cell = status_xml[value]
                    except (KeyError, TypeError):
                        fill = _status_style(value, self.status_cache)
                        cell = _cell(value, fill) if fill else ""
                        if len(status_xml) < 1000 and isinstance(value, str):
                            status_xml[value] = cell
                    if cell:
                        parts[status_column + 1] = cell
            if style:
                parts[1:] = [_cell_styled(v, style) for v in row]
            elif label_style and row and type(row[0]) is str:
                parts[1] = _inline(row[0], label_style)
            append("</row>")
            yield "".join(parts)


def _cell_styled(value: object, style: int) -> str:
    """A header cell: bold text (other values as they are, unstyled)."""
    if type(value) is Marked:
        value = value.value
    if isinstance(value, str) or value is None:
        return _inline("" if value is None else str.__str__(value), style)
    return _cell(value, 0)


def _sheet_xml_head(widths: Sequence[float], split: int) -> str:
    """Up to ``<sheetData>``: the frozen pane below ``split`` rows (none when 0) and the widths."""
    if split:
        below = split + 1
        view = (f'<sheetView tabSelected="1" workbookViewId="0"><pane ySplit="{split}" topLeftCell="A{below}" '
                f'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" activeCell="A{below}" '
                f'sqref="A{below}"/></sheetView>')
    else:
        view = '<sheetView workbookViewId="0"/>'
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_MAIN_NS}" '
            f'xmlns:r="{_REL_NS}"><sheetViews>{view}</sheetViews><sheetFormatPr defaultRowHeight="15"/>'
            f'{_cols_xml(widths)}<sheetData>')


#: Phone numbers and codes are text on purpose: no green "number stored as text" triangle on every one.
_IGNORED_ERRORS = '<ignoredErrors><ignoredError sqref="A1:XFD1048576" numberStoredAsText="1"/></ignoredErrors>'


def _write_stream(out: IO[bytes], pieces: Iterable[str]) -> None:
    """Encode and write in chunks of ~2,000 pieces (one write per row would cost more than the XML)."""
    buffer: list[str] = []
    for piece in pieces:
        buffer.append(piece)
        if len(buffer) >= 2000:
            out.write("".join(buffer).encode("utf-8", "replace"))
            buffer.clear()
    out.write("".join(buffer).encode("utf-8", "replace"))


def write_xlsx(path: Path, header: Sequence[Cell], rows: Iterable[Row], sheet: str = "Sheet1",
               preamble: Sequence[Row] = (), *, status_column: int | None = None,
               summary: Sequence[tuple[str, object]] | None = None, macro_enabled: bool = False) -> None:
    """A workbook: the sheet (preamble rows, the bold frozen header with an autofilter, the rows),
    and with ``summary`` a second sheet **Summary** of label/value pairs. See the module docstring."""
    name = sheet_name(sheet)
    it = iter(rows)
    sample = list(islice(it, WIDTH_SAMPLE))  # the only rows held: <cols> comes before the data
    widths = fit_widths(header, sample)
    notes = _Notes(widths)
    writer = _SheetWriter(notes, status_column)
    split = len(preamble) + 1
    try:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
                out.write(_sheet_xml_head(widths, split).encode())
                _write_stream(out, writer.rows(preamble, data=False))
                _write_stream(out, writer.rows([header], style=_BOLD, data=False))
                _write_stream(out, writer.rows(sample))
                del sample
                _write_stream(out, writer.rows(it))
                tail = ["</sheetData>"]
                filter_ref = ""
                if writer.width:
                    filter_ref = f"$A${split}:${_letter(writer.width - 1)}${max(writer.row, split)}"
                    tail.append(f'<autoFilter ref="{filter_ref.replace("$", "")}"/>')
                tail.append(_IGNORED_ERRORS)
                if len(notes):
                    tail.append('<legacyDrawing r:id="rId1"/>')
                tail.append("</worksheet>")
                out.write("".join(tail).encode())
            if len(notes):
                zf.writestr("xl/worksheets/_rels/sheet1.xml.rels", _SHEET_RELS)
                notes.write(zf)
            summary_name = None
            if summary is not None:
                summary_name = SUMMARY_SHEET if name.lower() != SUMMARY_SHEET.lower() else "batchsms Summary"
                _write_summary(zf, summary)
            zf.writestr("xl/workbook.xml", _workbook_xml(name, summary_name, filter_ref))
            zf.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(summary_name is not None))
            zf.writestr("xl/styles.xml", _styles())
            zf.writestr("_rels/.rels", _ROOT_RELS)
            # Last, as openpyxl writes it: only now is it known which parts exist.
            zf.writestr("[Content_Types].xml", _content_types(len(notes) > 0, summary_name is not None, macro_enabled))
    finally:
        notes.discard()


def _write_summary(zf: zipfile.ZipFile, summary: Sequence[tuple[str, object]]) -> None:
    pairs = [(label, value) for label, value in summary]
    widths = fit_widths([], pairs)
    writer = _SheetWriter(_Notes(widths), None)  # marks in the summary are filled; their notes are dropped
    with zf.open("xl/worksheets/sheet2.xml", "w") as out:
        out.write(_sheet_xml_head(widths, 0).encode())
        _write_stream(out, writer.rows(pairs, label_style=_BOLD))
        out.write(b"</sheetData></worksheet>")
    writer.notes.discard()


def _workbook_xml(name: str, summary: str | None, filter_ref: str) -> str:
    sheets = f'<sheet name="{_xml_escape(name, {chr(34): "&quot;"})}" sheetId="1" r:id="rId1"/>'
    if summary:
        sheets += f'<sheet name="{summary}" sheetId="2" r:id="rId3"/>'
    names = ""
    if filter_ref:
        ref = _xml_escape(f"{_quoted_sheet(name)}!{filter_ref}")
        names = f'<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">{ref}</definedName></definedNames>'
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
            f'<bookViews><workbookView activeTab="0"/></bookViews><sheets>{sheets}</sheets>{names}</workbook>')


def _workbook_rels(summary: bool) -> str:
    rels = [f'<Relationship Id="rId1" Type="{_REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>',
            f'<Relationship Id="rId2" Type="{_REL_NS}/styles" Target="styles.xml"/>']
    if summary:
        rels.append(f'<Relationship Id="rId3" Type="{_REL_NS}/worksheet" Target="worksheets/sheet2.xml"/>')
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="{_PKG_REL_NS}">'
            f'{"".join(rels)}</Relationships>')


def _content_types(comments: bool, summary: bool, macro_enabled: bool) -> str:
    # Excel refuses an .xlsm whose workbook is declared a plain one (and the reverse).
    main = "application/vnd.ms-excel.sheet.macroEnabled.main+xml" if macro_enabled else f"{_CT}.sheet.main+xml"
    parts = [f'<Override PartName="/xl/workbook.xml" ContentType="{main}"/>',
             f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/>',
             f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>']
    if summary:
        parts.append(f'<Override PartName="/xl/worksheets/sheet2.xml" ContentType="{_CT}.worksheet+xml"/>')
    if comments:
        parts.append(f'<Override PartName="/xl/comments1.xml" ContentType="{_CT}.comments+xml"/>')
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Default Extension="vml" ContentType="application/vnd.openxmlformats-officedocument.vmlDrawing"/>'
            f'{"".join(parts)}</Types>')


# --------------------------------------------------------------------------- either


def write_table(path: str | Path, header: Sequence[Cell], rows: Iterable[Row], *,
                delimiter: str = ",", sheet: str = "Sheet1", csv_rows: Iterable[Row] | None = None,
                preamble: Sequence[Row] = (), mode: int | None = None, status_column: int | None = None,
                summary: Sequence[tuple[str, object]] | None = None) -> None:
    """Write ``header`` and ``rows`` as .xlsx/.xlsm or CSV (by the suffix), atomically (temp file +
    rename), so an interrupted write never leaves half a file.

    Cells hold :data:`Cell` values (see the module docstring). ``preamble`` rows go above the
    header (the user's title rows, so row N stays row N). ``status_column`` (an index into a
    row) and ``summary`` only show in a workbook. ``csv_rows``, when given, replaces ``rows``
    for CSV: rows the caller already made inert with :func:`cells.csv_safe`.

    The file gets ``mode`` (the input sheet's permissions, so a shared folder stays
    shared), or the usual permissions for a new file, never the temp file's 0600.
    """
    path = Path(path)

    def write(tmp: Path) -> None:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            write_xlsx(tmp, header, rows, sheet, preamble, status_column=status_column, summary=summary,
                       macro_enabled=path.suffix.lower() == ".xlsm")
        elif csv_rows is not None:  # rows the caller already made inert for CSV
            write_csv(tmp, header, csv_rows, delimiter, safe=True, preamble=preamble)
        else:
            write_csv(tmp, header, rows, delimiter, preamble=preamble)

    _atomically(path, mode, write)


#: Buffers os.writev takes at once (POSIX guarantees 16; Linux and macOS take 1024).
_IOV_MAX = 1024


def write_pieces(fh: BinaryIO, pieces: list[bytes]) -> None:
    """Write ``b"".join(pieces)`` to the binary file ``fh``, with os.writev where there is one.

    A million-row preview is ~5 million small pieces: joining them costs ~70 ns a piece
    (bytes.join asks each for its buffer), and the 200 MB joined is copied once more to be
    written; os.writev hands the pieces to the kernel as they are, ~3x quicker here
    (benchmarks/NOTES.md). A short write cannot go unnoticed: the file's position after the
    pieces is checked against their length, and if they fell short the pieces are written
    again joined from where they started.
    """
    writev = getattr(os, "writev", None)
    if writev is None or len(pieces) < _IOV_MAX:
        fh.write(b"".join(pieces))
        return
    fh.flush()
    fd = fh.fileno()
    start = os.lseek(fd, 0, os.SEEK_CUR)
    for at in range(0, len(pieces), _IOV_MAX):
        writev(fd, pieces[at:at + _IOV_MAX])
    end = os.lseek(fd, 0, os.SEEK_CUR)
    if end - start != sum(map(len, pieces)):  # pragma: no cover - a short write
        os.truncate(fd, start)
        fh.seek(start)
        fh.write(b"".join(pieces))
        return
    fh.seek(end)  # the buffered file's own idea of where it is


def append_file(fh: BinaryIO, path: Path) -> None:
    """Write the bytes of the file at ``path`` to the end of ``fh`` (a file opened for writing).

    Copied by the kernel (os.copy_file_range) where it can: the second half of a
    10-million-row preview is a gigabyte, and reading it through Python took 2.8 s; any
    refusal (another file system, an old kernel) falls back to reading it here.
    """
    fh.flush()
    fd = fh.fileno()
    with open(path, "rb") as source:
        size = os.fstat(source.fileno()).st_size
        copy = getattr(os, "copy_file_range", None)
        done = 0
        try:
            while copy is not None and done < size:
                moved = copy(source.fileno(), fd, size - done)
                if moved == 0:
                    break
                done += moved
        except OSError:
            pass
        if done < size:  # what is left, the usual way (from where the kernel stopped)
            source.seek(done)
            os.lseek(fd, 0, os.SEEK_END)
            fh.seek(0, os.SEEK_END)
            shutil.copyfileobj(source, fh, 16 * 2**20)
            fh.flush()
    fh.seek(0, os.SEEK_END)


def _atomically(path: Path, mode: int | None, write: Any) -> None:
    """``write(tmp)`` a temp file beside ``path``, then rename it to ``path`` (with ``mode``, or the usual
    permissions of a new file, never the temp file's 0600); nothing is left behind on failure."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", dir=path.parent or ".")
    os.fchmod(fd, mode if mode is not None else 0o666 & ~_umask())
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
