"""Read a contact sheet (CSV in any encoding Excel writes, or a workbook) into text cells.

Every cell becomes the text the user sees in Excel: a phone number stored as the
number 61412345678 reads ``61412345678``, never ``61412345678.0`` or ``6.14e+10``, and a
number cell with a number format reads as that format shows it (``$1,234.50``, ``15%``,
``0412345678`` under ``0000000000``; .xlsx/.xlsm, see ``excelfmt``). A cell that shows an
Excel error (``#N/A``) or holds a formula with no saved value is never read as empty text:
it is a ``cell-error`` problem on its row.
Rows keep the number Excel shows beside them, so a report can say "row 17".

Nothing is read silently wrong. Bytes that are not the encoding they seem to be stop the
load with the row and column to look at (mojibake would otherwise be texted to people).
A stray quote that swallows the rows after it is a ``LoadProblem`` on its row, and the rows
it swallowed are read as rows of their own. Hidden sheets are never picked by default,
hidden rows are listed, and workbooks built to exhaust memory are refused before they are
parsed (``workbook_guard``).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import os
import stat
import threading
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

from . import codes, excelfmt, workbook_guard
from .errors import SheetError
from .fields import FIELDS, TO, canonical_field, clean_header, field_for_header, header_key
from .perf import gc_paused

if TYPE_CHECKING:
    import numpy as np
    from python_calamine import CalamineWorkbook

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
WORKBOOK_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
DELIMITERS = (",", ";", "\t", "|")

ENCODING_HINT = "save it as 'CSV UTF-8' from Excel, or name the encoding with --encoding"

# A quoted cell that runs over more line breaks than this, or holds more characters, is no
# real contact-sheet cell: its opening quote is almost certainly stray and it swallowed the
# rows after it. (A long SMS is 1,600 characters; Excel caps a cell at 32,767.)
MAX_QUOTED_LINE_BREAKS = 20
MAX_CELL_CHARS = 10_000
MAX_PROBLEM_VALUE = 200  # characters of a cell quoted in a LoadProblem

# Every quoted cell that swallowed lines is reported with this code (catalogued in codes.py,
# an error: the row is not sent); the message says which of the cases below it is.
UNCLOSED_QUOTE = codes.UNCLOSED_QUOTE.code
CELL_ERROR = codes.CELL_ERROR.code


class LoadProblem(NamedTuple):
    """Something wrong with one row of the file itself, found while reading it.

    Problems in data are data: the row stays in ``Sheet.rows`` (row numbers and counts stay
    honest) and the checker reports each problem as an error on its row.
    """

    row: int  # Excel's row number
    column: str  # the header of the column, or '' when there is none
    value: str  # the cell as the file has it, trimmed to MAX_PROBLEM_VALUE characters
    code: str
    message: str


@dataclass
class Sheet:
    """A loaded sheet: its header, its non-empty data rows as text, and their Excel row numbers."""

    path: Path
    header: list[str]
    rows: list[list[str]]
    row_numbers: list[int]
    kind: str  # "csv" or "xlsx"
    encoding: str | None = None
    delimiter: str | None = None
    sheet_name: str | None = None
    header_row: int = 1
    header_detected: bool = False  # the header is not on row 1 and was found there (title or blank rows above)
    columns: dict[str, int] = field(default_factory=dict)  # API field -> column index
    preamble: list[list[str]] = field(default_factory=list)  # rows above the header, as they are
    raw_header: list[str] = field(default_factory=list)  # the header row as it is in the file
    problems: list[LoadProblem] = field(default_factory=list)  # rows the file itself garbles
    # Excel row numbers of rows hidden in the workbook (.xlsx/.xlsm): they are in ``rows``
    # like any other (numbering and results stay row for row); skip them unless include_hidden.
    hidden_rows: set[int] = field(default_factory=set)
    include_hidden: bool = False  # the user asked for hidden rows to be treated as visible
    # A workbook's cells as their types (numbers, dates), row for row with ``rows`` and
    # ``preamble``: the preview and results write them back as the same types. None for CSV.
    values: list[list[object]] | None = None
    preamble_values: list[list[object]] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def column_of(self, api_field: str) -> str | None:
        """The header of the column that feeds ``api_field``, if one does."""
        index = self.columns.get(api_field)
        return None if index is None else self.header[index]


# --------------------------------------------------------------------------- options


def check_delimiter(delimiter: str) -> str:
    """The delimiter ``--delimiter`` names (``\\t`` and ``tab`` name a tab), or a one-line error."""
    value = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(delimiter, delimiter)
    if len(value) != 1 or value in "\"\r\n\x00" or value.isalnum():
        raise SheetError(f"--delimiter {delimiter!r}: a delimiter is one character other than a letter, digit, "
                         "quote or line break, such as , ; | or \\t (tab)")
    return value


def check_encoding(encoding: str) -> str:
    """``encoding`` if Python can decode text with it, or a one-line error."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise SheetError(f"--encoding {encoding!r}: unknown encoding; use one such as utf-8, cp1252, "
                         "shift_jis, gb18030 or cp1251") from None
    if not getattr(info, "_is_text_encoding", True):
        raise SheetError(f"--encoding {encoding!r}: not a text encoding; use one such as utf-8 or cp1252")
    return encoding


# --------------------------------------------------------------------------- CSV


def read_regular_file(path: Path) -> bytes:
    """The bytes of ``path``, refusing a FIFO or device instead of waiting on it forever.

    Opened non-blocking (a FIFO opens at once, no writer needed) and checked with ``fstat``
    on the open file, so nothing can be swapped in between the check and the read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SheetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SheetError(f"{path}: is a folder, not a contact sheet") from None
    except OSError as exc:
        raise SheetError(f"{path}: cannot be read ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise SheetError(f"{path}: is a folder, not a contact sheet")
        if not stat.S_ISREG(mode):
            raise SheetError(f"{path}: is not a regular file (a pipe, device or socket); save the sheet to a file")
        try:
            return fh.read()
        except OSError as exc:
            raise SheetError(f"{path}: cannot be read ({exc.strerror})") from exc


def detect_encoding(data: bytes) -> str:
    """UTF-8 with or without BOM, UTF-16 with BOM (Excel's "Unicode text"), else cp1252."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


_ASCII_BYTES = bytes(range(0x80))
# cp1252 bytes Western text uses side by side: quotes, dashes, ellipsis, bullets, spaces, symbols.
_TYPOGRAPHIC = frozenset("‘’‚“”„…–—•«»‹›\xa0·°€™".encode("cp1252"))
# Each byte as H (non-ASCII, not typographic) or '.', so runs of them are found by bytes.find.
_RUN_SHAPE = bytes(ord("H") if b >= 0x80 and b not in _TYPOGRAPHIC else ord(".") for b in range(256))
# cp1252's characters for 0x80-0x9F that Western text hardly ever holds, and Shift-JIS lead
# bytes (every Japanese character starts with one of 0x81-0x9F or 0xE0-0xEF) often are.
_RARE_C1 = "ƒ†‡ˆ‰‹›˜ŠšŽžŸ".encode("cp1252")
_NOT_RARE_C1 = bytes(b for b in range(256) if b not in _RARE_C1)
# The encoding verdicts look at a window of the file first (a few milliseconds) and read the
# whole file only when the window holds too few non-ASCII bytes to tell.
_WINDOW_BYTES = 4 * 1024**2
_ENOUGH_TO_TELL = 64


def decode(path: Path, data: bytes, encoding: str | None, delimiter: str | None = None) -> tuple[str, str]:
    """The text of a CSV file and the encoding it is in, decoded strictly.

    With ``encoding`` that one is used. Otherwise: a BOM names UTF-8 or UTF-16; then UTF-8;
    a file that is mostly valid UTF-8 but for a few bytes is damaged UTF-8 (an error, never
    a guess); then cp1252, Excel's "CSV (Comma delimited)" on Western Windows, but only if
    the text reads like cp1252 (``_implausible_cp1252``). Every refusal names the row and
    column of the first byte in question and suggests ``--encoding``.
    """
    if encoding:
        return _decode_or_say_where(path, data, encoding, encoding, delimiter,
                                    f"; check --encoding {encoding}, or save it as 'CSV UTF-8' from Excel")
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        enc, name = ("utf-8-sig", "UTF-8") if data.startswith(codecs.BOM_UTF8) else ("utf-16", "UTF-16")
        return _decode_or_say_where(path, data, enc, name, delimiter,
                                    f", though the file starts as {name}; fix that cell, or {ENCODING_HINT}")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if _mostly_utf8(data, exc.start):
            row, col = _locate_byte(data, exc, "utf-8", delimiter)
            raise SheetError(f"{path}: row {row} is not valid UTF-8 (byte 0x{data[exc.start]:02X} in column {col}): "
                             "the rest of the file is UTF-8, so this byte was damaged or pasted in from elsewhere; "
                             "fix that cell and save it as 'CSV UTF-8' from Excel, or name the encoding with "
                             "--encoding cp1252") from exc
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        row, col = _locate_byte(data, exc, "cp1252", delimiter)
        raise SheetError(f"{path}: row {row} is neither UTF-8 nor cp1252 (byte 0x{data[exc.start]:02X} in column "
                         f"{col}): the file is in another encoding; name it with --encoding (such as shift_jis, "
                         "gb18030 or cp1251), or save it as 'CSV UTF-8' from Excel") from exc
    odd = _implausible_cp1252(data)
    if odd is not None:
        row, col, cell = _locate(text, odd, delimiter)
        raise SheetError(f"{path}: row {row} does not read as Western text (column {col} would read {cell!r}): the "
                         "file is in another encoding; name it with --encoding shift_jis, --encoding gb18030 or "
                         "--encoding utf-8 (or the one it was saved in), or save it as 'CSV UTF-8' from Excel")
    return text, "cp1252"


def _decode_or_say_where(path: Path, data: bytes, encoding: str, name: str, delimiter: str | None,
                         advice: str) -> tuple[str, str]:
    """``data`` decoded strictly as ``encoding``, or a SheetError naming the row and column of the bad byte."""
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as exc:
        row, col = _locate_byte(data, exc, encoding, delimiter)
        raise SheetError(f"{path}: row {row} is not valid {name} (byte 0x{data[exc.start]:02X} in column "
                         f"{col}){advice}") from exc


def _mostly_utf8(data: bytes, first_bad: int) -> bool:
    """Whether the file has at least as many valid UTF-8 multibyte characters as stray bytes.

    A cp1252 file almost never holds a valid UTF-8 sequence (an accented capital followed
    by a curly quote, at most a few); a UTF-8 file with one damaged byte holds many. Judged
    on the 4 MB around the first stray byte when they tell clearly, else on the whole file.
    """
    lo = max(0, first_bad - _WINDOW_BYTES // 2)
    multibyte, stray = _utf8_counts(data[lo:lo + _WINDOW_BYTES])
    if multibyte and multibyte >= stray:
        return True
    if stray >= _ENOUGH_TO_TELL // 8 and multibyte * 4 < stray:
        return False
    multibyte, stray = _utf8_counts(data)
    return multibyte >= stray


def _utf8_counts(data: bytes) -> tuple[int, int]:
    """Valid UTF-8 characters above ASCII in ``data``, and bytes that are no part of one."""
    high = len(data.translate(None, _ASCII_BYTES))
    text = data.decode("utf-8", "ignore")
    ascii_bytes = len(data) - high
    multibyte = len(text) - ascii_bytes
    if multibyte == 0:
        return 0, high
    return multibyte, high - (len(text.encode("utf-8")) - ascii_bytes)


def _implausible_cp1252(data: bytes) -> int | None:
    """The offset of the first byte showing that ``data`` is not Western cp1252 text, or None.

    Two signals, each required to cover at least a quarter of the non-ASCII bytes, so a
    stray symbol in a Western file never trips them:

    - runs of three or more non-ASCII bytes, typographic marks aside: Western words put
      accented letters between ASCII ones ("café"; "ações" has two in a row at most),
      while double-byte scripts (GB18030, Big5, EUC-KR) and other alphabets read as cp1252
      (Cyrillic from cp1251, Greek from cp1253) are nothing but such runs. Counted as three
      bytes per "HHH" in the text's shape, close enough for a quarter, and judged on the
      first 4 MB when they hold enough non-ASCII bytes to tell;
    - cp1252's rare characters from 0x80-0x9F (``ƒ † ‡ ˆ ‰ ‹ › ˜ Š š Ž ž Ÿ``): Shift-JIS
      lead bytes, where short Japanese names leave no long runs ("山田" reads "ŽR“c").

    Everything is ``bytes.translate``, ``count`` and ``find``: about 35 ms for 50 MB.
    """
    high_bytes = data.translate(None, _ASCII_BYTES)
    if len(high_bytes) < 2:
        return None
    sample = data[:_WINDOW_BYTES]
    sample_high = len(high_bytes) if sample is data else len(sample.translate(None, _ASCII_BYTES))
    if sample_high < _ENOUGH_TO_TELL:
        sample, sample_high = data, len(high_bytes)
    shape = sample.translate(_RUN_SHAPE)
    if shape.count(b"HHH") * 3 * 4 >= sample_high:
        return shape.find(b"HHH")
    rare = len(high_bytes.translate(None, _NOT_RARE_C1))
    if rare >= 2 and rare * 4 >= len(high_bytes):
        return min(data.find(bytes([b])) for b in _RARE_C1 if bytes([b]) in data)
    return None


def _locate_byte(data: bytes, exc: UnicodeDecodeError, encoding: str, delimiter: str | None) -> tuple[int, int]:
    """Excel row and column of the byte a decoder stopped at."""
    prefix = data[:exc.start].decode(encoding, "replace")
    row, col, _ = _locate(prefix, len(prefix), delimiter)
    return row, col


def _locate(text: str, offset: int, delimiter: str | None) -> tuple[int, int, str]:
    """Excel row, column and cell text at character ``offset`` of ``text``, as CSV reads it.

    The text up to the offset is parsed with a marker at the offset, so quoted cells with
    line breaks count as one row, as in Excel.
    """
    prefix = text[:offset]
    delim = delimiter or detect_delimiter(prefix or text)
    marker = "\x00"
    try:
        records = list(csv.reader(io.StringIO(prefix + marker, newline=""), delimiter=delim))
    except csv.Error:
        return prefix.count("\n") + 1, 1, ""
    if not records:
        return 1, 1, ""
    last = records[-1]
    col = next((i for i, cell in enumerate(last) if marker in cell), len(last) - 1)
    line_end = text.find("\n", offset)
    rest = text[offset:line_end if line_end >= 0 else len(text)]
    cell = (last[col].replace(marker, "") + rest.split(delim, 1)[0])[:40]
    return len(records), col + 1, cell


def detect_delimiter(text: str) -> str:
    """The delimiter among , ; tab | that splits the first records most consistently."""
    sample = text[:65536]
    best, best_score = ",", (-1, -1)
    for delim in DELIMITERS:
        reader = csv.reader(io.StringIO(sample), delimiter=delim)
        widths = []
        try:
            for record in reader:
                if any(cell.strip() for cell in record):
                    widths.append(len(record))
                if len(widths) >= 20:
                    break
        except csv.Error:
            continue
        if not widths or max(widths) < 2:
            continue
        header_width = widths[0]
        consistent = sum(1 for w in widths if w == header_width)
        score = (consistent, header_width)
        if score > best_score:
            best, best_score = delim, score
    return best


class QuoteTrouble(NamedTuple):
    """A quoted cell that swallowed lines after it (see ``parse_csv``)."""

    record: int  # index of the record it is in (its Excel row is record + 1)
    column: int  # index of the cell whose quote opened
    value: str  # that cell, as the file has it
    absorbed: int  # lines after the record's first line it ran over
    code: str
    why: str  # "never closes", "closes mid-cell" or "long"
    split: bool  # True: the absorbed lines were read as rows of their own


@dataclass
class CsvFile:
    """A CSV file read into records, with what was learnt on the way.

    ``columnar`` is set instead of ``records`` holding every record when the file can be read
    by columns (:class:`Columnar`): ``records`` then holds the first :data:`HEADER_SEARCH_ROWS`.
    """

    records: list[list[str]]
    encoding: str
    delimiter: str
    troubles: list[QuoteTrouble] = field(default_factory=list)
    columnar: Columnar | None = None


#: CSV files at least this big are read by columns (about 3,000 rows), with pandas' C parser from
#: PANDAS_CSV_BYTES (about 80,000 rows of five short cells: below that, importing pandas costs more
#: than it saves) when they also have PANDAS_CSV_LINES lines (a wide file of few rows is split in
#: Python). Measured with the CLI (benchmarks/NOTES.md): split in Python / by pandas, 50,000 rows
#: 0.67 / 0.70 s, 100,000 0.92 / 0.86, 200,000 1.38 / 1.20 (pandas parses only the columns a check
#: reads, the split makes every cell); 3,000 rows of 1.8 KB (5.5 MB): 0.47 s split, 0.55 s by pandas.
COLUMNAR_CSV_BYTES = 150_000
#: ... and lines: the rows the check takes by columns (check.COLUMNAR_MIN_ROWS); a file of fewer, long
#: lines (a Text column) would import numpy to be checked row by row (1,500 rows, 260 KB: 0.24 -> 0.30 s).
COLUMNAR_CSV_LINES = 3_000
PANDAS_CSV_BYTES = 4_000_000
PANDAS_CSV_LINES = 50_000


def _first_records(body: bytes, delimiter: str, count: int) -> list[list[str]]:
    """The first ``count`` records of a plain UTF-8 file's ``body`` (no BOM; each line a record, as a file
    read by columns has them), by csv.reader, without decoding the rest of the file."""
    end = -1
    for _ in range(count):
        end = body.find(b"\n", end + 1)
        if end < 0:
            end = len(body)
            break
    return list(csv.reader(io.StringIO(body[:end].decode("utf-8"), newline=""), delimiter=delimiter))[:count]


def _has_lines(data: bytes, count: int) -> bool:
    """Whether ``data`` holds at least ``count`` line breaks, counted a megabyte at a time until there are
    that many (counting every line break of a 50 MB file takes 26 ms)."""
    found = 0
    for start in range(0, len(data), _COUNT_STEP):
        found += data.count(b"\n", start, start + _COUNT_STEP)
        if found >= count:
            return True
    return found >= count


_COUNT_STEP = 1 << 20


def read_csv(path: Path, encoding: str | None, delimiter: str | None, columnar: bool | None = None) -> CsvFile:
    """Read, decode and parse a CSV file (see ``decode`` and ``parse_csv``).

    ``columnar`` (None: for files of :data:`COLUMNAR_CSV_BYTES` and :data:`COLUMNAR_CSV_LINES`) leaves the records to be
    read by columns, where that reads them exactly as ``csv.reader`` does (:class:`Columnar`).
    """
    delim = check_delimiter(delimiter) if delimiter is not None else None
    if encoding is not None:
        check_encoding(encoding)
    data = read_regular_file(path)
    text, enc = decode(path, data, encoding, delim)
    text = text.lstrip("\ufeff")
    delim = delim or detect_delimiter(text)
    if columnar or (columnar is None and len(data) >= COLUMNAR_CSV_BYTES and _has_lines(data, COLUMNAR_CSV_LINES)):
        plain = Columnar.of(data, text, enc, delim)
        if plain is not None:
            return CsvFile(plain.head, enc, delim, [], plain)
    records, troubles = parse_csv(text, delim)
    return CsvFile(records, enc, delim, troubles)


class Columnar:
    """A CSV file that a plain split reads exactly as ``csv.reader`` does, to be read by columns.

    Only the plainest files qualify, which are most large exports: UTF-8, no quote character at
    all (so no quoted cell, no cell over several lines, nothing for the quote checks to find), no
    NUL, line breaks that are ``\n`` or ``\r\n``, an ASCII delimiter. Then a record is a line
    split at the delimiter, which is what ``csv.reader``, pandas' C parser and ``str.split`` all
    do. ``tests/test_columnar_reader.py`` holds both readings (:meth:`read`) to ``csv.reader``'s
    records over files made to tell them apart.
    """

    def __init__(self, body: bytes, delimiter: str, head: list[list[str]], text: str | None = None) -> None:
        self.body = body  # the file's bytes without its BOM
        self.delimiter = delimiter
        self.head = head  # the first records, read by csv.reader
        self.text = text  # the decoded text, kept for a file small enough to split in Python (see read)
        self.crlf: bool | None = None  # every line ends \r\n (known once :meth:`lines` has scanned them)

    @classmethod
    def of(cls, data: bytes, text: str, encoding: str, delim: str) -> Columnar | None:
        """The file's columnar reading, or None where pandas could read it differently."""
        if (encoding not in ("utf-8", "utf-8-sig") or b'"' in data or b"\x00" in data or not delim.isascii()
                or not text or (b"\r" in data and data.count(b"\r") != data.count(b"\r\n"))):
            return None
        body = data[3:] if data.startswith(codecs.BOM_UTF8) else data
        if body.startswith(codecs.BOM_UTF8):  # more BOMs: the text lost them all, pandas would keep one
            return None
        split = len(data) < PANDAS_CSV_BYTES or not _has_lines(data, PANDAS_CSV_LINES)  # see read
        return cls(body, delim, _first_records(body, delim, HEADER_SEARCH_ROWS), text if split else None)

    def first_records(self, count: int) -> list[list[str]]:
        """The first ``count`` records (fewer in a shorter file) by csv.reader, as :attr:`head` holds the first
        :data:`HEADER_SEARCH_ROWS`: for a header row the user puts below those (``--header-row 25``)."""
        return _first_records(self.body, self.delimiter, count)

    def read(self, width: int) -> tuple[list[list[str]], np.ndarray | None]:
        """Every record's cells as columns (at least ``width`` of them, "" where a record is shorter), and
        how many cells each record has when some record has more than ``width`` (else None).

        A file under :data:`PANDAS_CSV_BYTES` or :data:`PANDAS_CSV_LINES` is split in Python (a line at
        the delimiter: what both parsers do with such a file), which costs less than importing pandas;
        a bigger one is read by pandas' C parser.
        """
        if self.text is not None:
            return self._split(width)
        import pandas as pd

        try:
            return self._frame(range(max(width, 1))), None
        except pd.errors.ParserError:  # some line has more cells: count them all
            pass
        fields = self.fields()
        return self._frame(range(max(width, int(fields.max())))), fields

    def _split(self, width: int) -> tuple[list[list[str]], np.ndarray | None]:
        import numpy as np

        text = self.text.replace("\r\n", "\n") if "\r" in self.text else self.text
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        records = [line.split(self.delimiter) if line else [] for line in lines]
        fields = np.fromiter(map(len, records), dtype=np.int64, count=len(records))
        widest = int(fields.max()) if len(records) else 0
        size = max(width, widest, 1)
        short = np.flatnonzero(fields < size)
        for index in short.tolist():
            records[index] = records[index] + [""] * (size - int(fields[index]))
        columns = [list(column) for column in zip(*records, strict=True)] if records else [[] for _ in range(size)]
        return columns, (fields if widest > width else None)

    def _frame(self, names: range, usecols: Sequence[int] | None = None) -> list[list[str]]:
        """Columns ``usecols`` (default: all of ``names``) of every record, by pandas' C parser."""
        import pandas as pd

        frame = pd.read_csv(io.BytesIO(self.body), sep=self.delimiter, header=None, names=names, dtype=object,
                            na_filter=False, keep_default_na=False, skip_blank_lines=False,
                            quoting=csv.QUOTE_NONE, encoding="utf-8", engine="c", usecols=usecols)
        return [frame[j].tolist() for j in (names if usecols is None else usecols)]

    def lines(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Per line: how many cells it has (its delimiters and one), and whether it is an empty row (every
        cell empty or spaces, as ``str.isspace`` decides). None when many lines start like an empty row
        (a blank first column): deciding each of those one by one would cost more than reading every
        column.

        Found from the bytes, without parsing any cell, so that only the columns a check reads need
        to be parsed (:class:`LazyColumns`); the cells of each line are counted by :func:`_line_cells`.
        """
        import numpy as np

        raw = np.frombuffer(self.body, dtype=np.uint8)
        ends, cells = _line_cells(raw, ord(self.delimiter))
        broken = ends[:-1] if len(raw) and raw[-1] != 10 else ends  # the lines a line break ends
        self.crlf = bool(len(broken)) and bool((broken > 0).all()) and bool((raw[broken - 1] == 13).all())
        blank = _empty_lines(self.body, raw, ends, self.delimiter, many=False)
        return (cells, blank) if blank is not None else None

    def fields(self) -> np.ndarray:
        """How many cells each line has (a blank line has none, as csv.reader reads it)."""
        import numpy as np

        raw = np.frombuffer(self.body, dtype=np.uint8)
        ends = np.flatnonzero(raw == 10)
        if not self.body.endswith(b"\n"):
            ends = np.append(ends, len(raw))
        starts = np.concatenate(([0], ends[:-1] + 1))
        sizes = ends - starts - (raw[np.maximum(ends - 1, 0)] == 13) * (ends > starts)
        separators = np.flatnonzero(raw == ord(self.delimiter))
        fields = np.bincount(np.searchsorted(ends, separators), minlength=len(ends))[:len(ends)] + 1
        fields[sizes == 0] = 0
        return fields


def read_csv_records(path: Path, encoding: str | None, delimiter: str | None) -> tuple[list[list[str]], str, str]:
    """All records of a CSV file as lists of str, with the encoding and delimiter used."""
    read = read_csv(Path(path), encoding, delimiter)
    return read.records, read.encoding, read.delimiter


def parse_csv(text: str, delim: str) -> tuple[list[list[str]], list[QuoteTrouble]]:
    """The records of CSV ``text``, and the quoted cells that swallowed the lines after them.

    csv reads a stray opening quote as the start of a cell that runs to the next quote in
    the file, or to its end, swallowing every row on the way. When every record is one line
    (csv read as many lines as it made records: the usual file) nothing can have been
    swallowed and that comparison is the whole cost. Otherwise the records spanning lines
    are judged one by one:

    - the quote never closes, or closes mid-cell (``"Ann,...`` then ``Eve,"0416"`` rows
      later: strict CSV rejects it; a cell past csv's field limit is judged the same way
      without reading it): the quote is stray. Its row is read from its own line alone,
      the quote kept as a character, and gets the problem; the lines it swallowed are read
      again as the rows they are, numbered as Excel will number them once the quote is fixed.
    - the cell is well-formed CSV but runs over more than ``MAX_QUOTED_LINE_BREAKS`` lines
      or ``MAX_CELL_CHARS`` characters: it stays one cell (a writer put it there, the file
      is not garbled) and its row gets the problem, counting the lines inside it.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    try:
        records = list(reader)
    except csv.Error:
        records = None
    if records is not None and reader.line_num == len(records):  # not one record spans lines
        return records, []
    return _parse_by_line(io.StringIO(text, newline="").readlines(), delim)


def _lines_from(lines: list[str], start: int) -> Iterator[str]:
    """``lines[start:]`` without copying the list (a reader restarts after each stray quote)."""
    for i in range(start, len(lines)):
        yield lines[i]


def _one_line(line: str, delim: str) -> list[str]:
    """A line read alone: a quote left open runs to the line's end, not beyond."""
    try:
        return next(csv.reader([line.rstrip("\r\n")], delimiter=delim), [])
    except csv.Error:
        return line.rstrip("\r\n").split(delim)


def _parse_by_line(lines: list[str], delim: str) -> tuple[list[list[str]], list[QuoteTrouble]]:
    records: list[list[str]] = []
    troubles: list[QuoteTrouble] = []
    pos = 0
    while pos < len(lines):
        reader = csv.reader(_lines_from(lines, pos), delimiter=delim)
        done = 0  # lines of lines[pos:] already read into records
        restart = None
        try:
            for record in reader:
                end = reader.line_num
                if end - done > 1:
                    trouble = _judge(lines, pos + done, pos + end, record, delim, len(records))
                    if trouble is not None:
                        troubles.append(trouble)
                        if trouble.split:
                            records.append(_stray_row(lines[pos + done], delim))
                            restart = pos + done + 1
                            break
                records.append(record)
                done = end
        except csv.Error:  # a cell past csv's field limit: its quote swallowed what follows
            start = pos + done
            closing = next((i for i in range(start + 1, len(lines)) if '"' in lines[i]), None)
            if closing is None:
                absorbed, why = len(lines) - start - 1, "never closes"
            else:
                absorbed, why = closing - start, "closes mid-cell"
            cells = _one_line(lines[start], delim)
            troubles.append(QuoteTrouble(len(records), max(len(cells) - 1, 0), _opened(lines[start], cells),
                                         absorbed, UNCLOSED_QUOTE, why, True))
            records.append(_stray_row(lines[start], delim))
            restart = start + 1
        pos = len(lines) if restart is None else restart
    return records, troubles


def _opened(line: str, cells: list[str]) -> str:
    """The cell whose quote opened, shown with its quote as the file has it."""
    return '"' + cells[-1].split("\n")[0] if cells else line.rstrip("\r\n")


def _stray_row(line: str, delim: str) -> list[str]:
    """The row of a line whose last quote is stray: the quote is kept as a character and
    the rest of the line is split at the delimiter, so the cells stay in their columns."""
    cells = _one_line(line, delim)
    if not cells:
        return cells
    return cells[:-1] + ('"' + cells[-1]).split(delim)


def _judge(lines: list[str], start: int, end: int, record: list[str], delim: str,
           index: int) -> QuoteTrouble | None:
    """Whether the record read from ``lines[start:end]`` holds a runaway quoted cell."""
    raw = "".join(lines[start:end])
    absorbed = end - start - 1
    try:
        list(csv.reader(io.StringIO(raw, newline=""), delimiter=delim, strict=True))
    except csv.Error as exc:
        cells = _one_line(lines[start], delim)
        why = "never closes" if end == len(lines) and "end of data" in str(exc) else "closes mid-cell"
        return QuoteTrouble(index, max(len(cells) - 1, 0), _opened(lines[start], cells), absorbed, UNCLOSED_QUOTE,
                            why, True)
    widest = max(range(len(record)), key=lambda i: len(record[i]), default=0)
    if absorbed > MAX_QUOTED_LINE_BREAKS or (record and len(record[widest]) > MAX_CELL_CHARS):
        return QuoteTrouble(index, widest, record[widest] if record else "", absorbed, UNCLOSED_QUOTE, "long", False)
    return None


def _trouble_message(trouble: QuoteTrouble, row: int) -> str:
    """What a ``QuoteTrouble`` means for the user, and what to do."""
    n = trouble.absorbed
    lines = "the next line" if n == 1 else f"the next {n:,} lines"
    rows = f"row {row + 1}" if n == 1 else f"rows {row + 1}–{row + n}"
    fix = 'remove the stray " or close the quote where the cell ends'
    own = "those lines are read as rows of their own and this row is not used"
    if trouble.why == "never closes":
        return (f"a quote opened in this cell never closes: as CSV it swallows {lines} ({rows}) into one cell; "
                f"{own}; {fix}")
    if trouble.why == "closes mid-cell":
        return (f"a quote opened in this cell closes only {n:,} line{'s' * (n != 1)} later, in the middle of a cell, "
                f"so it looks stray: as CSV it swallows {rows} into one cell; {own}; {fix}")
    return (f"this quoted cell runs over {n + 1:,} lines ({len(trouble.value):,} characters), far more than a real "
            f"cell: if its opening quote is stray, it swallowed {rows} of the file; {fix}")


# --------------------------------------------------------------------------- workbooks


def cell_text(value: object) -> str:
    """The text a user sees for a workbook cell value (as calamine returns it)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return str(value)


@dataclass
class WorkbookSheet:
    """One worksheet read into text rows, from row 1 on."""

    records: list[list[str]]
    sheet_name: str
    hidden_rows: set[int]
    values: list[list[object]]  # the cells as calamine typed them (numbers, dates), for writing back
    # Cells showing an Excel error or holding a formula with no saved value (found with ``hidden``).
    cell_errors: list[workbook_guard.CellError] = field(default_factory=list)


def read_workbook(path: Path, sheet: str | None, *, hidden: bool = True) -> WorkbookSheet:
    """All rows of one worksheet (the first visible one, or ``sheet``) as text, from row 1 on.

    The file passes ``workbook_guard`` before calamine opens it and the sheet is scanned
    (its extent) before calamine parses it. While calamine parses, one pass over the sheet
    XML (in a thread) finds what calamine does not tell: with ``hidden`` (the checker's
    reading) the hidden rows and the cells holding an Excel error or an uncalculated
    formula; and, when the workbook has number formats other than General, which number
    cells carry them, so their text is what Excel shows (``_show_formats``).
    """
    import python_calamine

    book = workbook_guard.check_workbook(path)
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises several unrelated types for broken files
        raise SheetError(f"{path}: not a readable workbook ({exc})") from exc
    name = _choose_sheet(path, workbook, sheet)
    workbook_guard.scan_sheet(book, name)
    formats = excelfmt.formats_by_style(*workbook_guard.number_formats(book))
    # The facts take their own pass over the sheet XML, in a thread: calamine lets go of
    # the GIL while it parses, so on a machine with a free core the pass costs no time.
    finder = (_Background(partial(workbook_guard.sheet_facts, hidden=hidden, errors=hidden), book, name, formats.keys())
              if hidden or formats else None)
    try:
        values = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except Exception as exc:
        raise SheetError(f"{path}: sheet {name!r} cannot be read ({exc})") from exc
    finally:
        facts = finder.result() if finder else workbook_guard.SheetFacts()
    if facts.unplaced_errors:
        raise SheetError(f"{path}: sheet {name!r} holds {facts.unplaced_errors:,} cell(s) with an Excel error or a "
                         "formula without a saved value, written without a cell reference, so their rows cannot be "
                         f"told; {workbook_guard.HINT}")
    text = cell_text
    records = [[v if v.__class__ is str else text(v) for v in row] for row in values]
    if facts.styled:
        _show_formats(records, values, facts.styled, formats)
    for error in facts.errors:  # calamine reads them as '': show the error as Excel does
        if error.error and error.row <= len(records) and error.column <= len(records[error.row - 1]):
            records[error.row - 1][error.column - 1] = error.error
    return WorkbookSheet(records, name, facts.hidden_rows, values, facts.errors)


def _show_formats(records: list[list[str]], values: list[list[object]], styled: list[tuple[int, int, int]],
                  formats: dict[int, excelfmt.NumberFormat]) -> None:
    """Put the text Excel shows in place of the General text of each number cell in a format.

    ``styled`` lists (row, column, style) of the cells the sheet XML gives a style in
    ``formats``; only cells calamine read as numbers change (text, dates and booleans have
    their own reading), and a value the format cannot show exactly keeps its General text.
    """
    shown_before: dict[int, dict[object, str | None]] = {style: {} for style in formats}  # repeated values
    height = len(values)
    for row, column, style in styled:
        if row > height or column > len(values[row - 1]):
            continue
        value = values[row - 1][column - 1]
        if value.__class__ is float or value.__class__ is int:
            seen = shown_before[style]
            shown = seen.get(value, _NOT_SHOWN)
            if shown is _NOT_SHOWN:
                shown = formats[style].format(value)  # type: ignore[arg-type]
                if len(seen) < _SHOWN_KEPT:
                    seen[value] = shown
            if shown is not None:
                records[row - 1][column - 1] = shown


_NOT_SHOWN = "\0not shown"
_SHOWN_KEPT = 4096  # texts kept per format for values that come again (percentages, quantities)


#: What each Excel error means, for the person who has to fix the cell.
EXCEL_ERRORS = {
    "#N/A": "no value is available, often a lookup that found nothing",
    "#REF!": "the formula refers to a cell that was deleted",
    "#DIV/0!": "the formula divides by zero",
    "#VALUE!": "the formula works on a value of the wrong kind",
    "#NAME?": "the formula uses a name Excel does not know",
    "#NUM!": "the formula's number is not valid",
    "#NULL!": "the formula's ranges do not meet",
}


def cell_problems(errors: Sequence[workbook_guard.CellError], header: Sequence[str], rows: Container[int],
                  ) -> list[LoadProblem]:
    """A ``cell-error`` problem for each error cell in a data row (``rows``) under the header.

    Every column the header spans counts (a template may print any of them); cells beyond
    it, in the header or above it are nobody's data.
    """
    problems = []
    for error in errors:
        if error.row not in rows or error.column > len(header):
            continue
        formula = f"={error.formula}" if error.formula else ""
        if error.error:
            why = EXCEL_ERRORS.get(error.error.upper(), "")
            message = (f"{error.error} in this cell (an Excel error{': ' + why if why else ''}): fix the formula in "
                       "Excel, or type the value")
        else:
            message = ("a formula Excel has not calculated: open the file in Excel and save it, or type the value")
        problems.append(LoadProblem(error.row, header[error.column - 1], (error.error or formula)[:MAX_PROBLEM_VALUE],
                                    CELL_ERROR, message))
    return problems


_T = TypeVar("_T")


class _Background(threading.Thread, Generic[_T]):
    """A call run in a thread; ``result()`` waits for it and returns or raises what it did."""

    def __init__(self, func: Callable[..., _T], *args: object) -> None:
        super().__init__(daemon=True)
        self._call = (func, args)
        self._value: list[_T] = []
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        func, args = self._call
        try:
            self._value.append(func(*args))
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self) -> _T:
        self.join()
        if self._error is not None:
            raise self._error
        return self._value[0]


def read_workbook_records(path: Path, sheet: str | None) -> tuple[list[list[str]], str]:
    """All rows of one worksheet (the first visible one, or ``sheet``) as text, from row 1 on."""
    read = read_workbook(Path(path), sheet, hidden=False)
    return read.records, read.sheet_name


def _choose_sheet(path: Path, workbook: CalamineWorkbook, sheet: str | None) -> str:
    """``sheet`` if the workbook has it (hidden or not), else the first visible worksheet.

    A hidden sheet holds what the user does not see (old lists, lookups): never the default.
    """
    import python_calamine

    names = list(workbook.sheet_names)
    visible_enum = getattr(python_calamine, "SheetVisibleEnum", None)
    type_enum = getattr(python_calamine, "SheetTypeEnum", None)
    hidden: set[str] = set()
    worksheets = names
    metadata = getattr(workbook, "sheets_metadata", None)
    if metadata and visible_enum is not None:
        hidden = {m.name for m in metadata if m.visible != visible_enum.Visible}
        if type_enum is not None:
            worksheets = [m.name for m in metadata if m.typ == type_enum.WorkSheet]
    if sheet is not None:
        if sheet not in names:
            listed = listed_names(names, hidden=hidden)
            raise SheetError(f"{path}: no sheet named {sheet!r}; the sheets are {listed} (use --sheet)")
        return sheet
    if not worksheets:
        raise SheetError(f"{path}: the workbook has no sheets")
    for name in worksheets:
        if name not in hidden:
            return name
    listed = listed_names(worksheets)
    raise SheetError(f"{path}: every sheet is hidden ({listed}); name the one to use with --sheet")


# --------------------------------------------------------------------------- the sheet


def load(
    path: str | Path,
    *,
    sheet: str | None = None,
    header_row: int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    columns: Sequence[tuple[str, str]] = (),
    include_hidden: bool = False,
    columnar: bool | None = None,
) -> Sheet:
    """Load ``path`` and map its headers to API fields.

    ``columns`` holds explicit ``(field, header)`` mappings that win over header names.
    ``include_hidden`` is recorded on the sheet: rows hidden in the workbook are listed in
    ``Sheet.hidden_rows`` either way, and the checker skips them unless it is set.
    ``columnar`` reads a CSV file by columns where that reads it exactly (None: large files;
    see :func:`read_csv`): the rows are then a view over the columns (:class:`ColumnRows`).
    """
    with gc_paused():
        result = _load(Path(path), sheet, header_row, encoding, delimiter, columns, columnar)
    result.include_hidden = include_hidden
    if not include_hidden and result.hidden_rows:  # a hidden row is skipped: its error cells do not matter
        result.problems = [p for p in result.problems if p.row not in result.hidden_rows]
    return result


def _load(path: Path, sheet: str | None, header_row: int | None, encoding: str | None, delimiter: str | None,
          columns: Sequence[tuple[str, str]], columnar: bool | None = None) -> Sheet:
    if header_row is not None and header_row < 1:
        raise SheetError(f"--header-row must be 1 or more, not {header_row}")
    workbook_guard.regular_file(path)
    suffix = path.suffix.lower()
    enc = delim = sheet_name = None
    troubles: list[QuoteTrouble] = []
    hidden: set[int] = set()
    typed: list[list[object]] | None = None
    cell_errors: list[workbook_guard.CellError] = []
    if suffix in WORKBOOK_SUFFIXES:
        read = read_workbook(path, sheet)
        records, sheet_name, hidden, typed = read.records, read.sheet_name, read.hidden_rows, read.values
        cell_errors = read.cell_errors
        kind = "xlsx"
    else:
        if sheet is not None:
            raise SheetError(f"{path}: --sheet applies to workbooks, and this is a CSV file")
        if columnar is not False and path.stat().st_size >= STREAM_BYTES:
            streamed = _load_streamed(path, encoding, delimiter, header_row, columns)
            if streamed is not None:
                return streamed
        csv_file = read_csv(path, encoding, delimiter, columnar)
        records, enc, delim, troubles = csv_file.records, csv_file.encoding, csv_file.delimiter, csv_file.troubles
        kind = "csv"
        if csv_file.columnar is not None:
            return _load_columns(path, csv_file, header_row, columns)
    detected = header_row is None
    if header_row is None:
        header_row = find_header_row(records, columns)
    if len(records) < header_row:
        raise SheetError(f"{path}: has no row {header_row} to use as the header (it has {len(records)} rows)")
    for trouble in troubles:
        if trouble.record < header_row:  # no data row to carry the problem: the file must be fixed
            where = "the header row" if trouble.record == header_row - 1 else "above the header"
            raise SheetError(f"{path}: row {trouble.record + 1} ({where}) opens a quote that swallows the "
                             f"{trouble.absorbed:,} line{'s' * (trouble.absorbed != 1)} after it into one cell; "
                             'remove the stray " or close the quote where the cell ends')
    header = [clean_header(h) for h in records[header_row - 1]]
    while header and not header[-1]:
        header.pop()
    if not header:
        raise SheetError(f"{path}:{header_row}: the header row is empty; use --header-row N")
    width = len(header)
    keep = {t.record + 1 for t in troubles} | {e.row for e in cell_errors}  # a row with a problem stays
    rows: list[list[str]] = []
    numbers: list[int] = []
    values: list[list[object]] | None = [] if typed is not None else None
    for number, record in enumerate(records[header_row:], start=header_row + 1):
        first = record[0] if record else ""
        if (not first or first.isspace()) and not "".join(record).strip() and number not in keep:
            continue  # a fully empty row
        if len(record) < width:
            record = record + [""] * (width - len(record))
        rows.append(record)
        numbers.append(number)
        if values is not None:
            values.append(typed[number - 1])
    problems = [
        LoadProblem(t.record + 1, header[t.column] if t.column < width else "", t.value[:MAX_PROBLEM_VALUE],
                    t.code, _trouble_message(t, t.record + 1))
        for t in troubles
    ] + (cell_problems(cell_errors, header, set(numbers)) if cell_errors else [])
    result = Sheet(path, header, rows, numbers, kind, enc, delim, sheet_name, header_row,
                   preamble=records[:header_row - 1], raw_header=list(records[header_row - 1]),
                   problems=problems, hidden_rows=hidden, values=values,
                   preamble_values=typed[:header_row - 1] if typed is not None else None,
                   header_detected=detected and header_row != 1)
    result.columns = map_columns(result, columns)
    return result


def _load_columns(path: Path, csv_file: CsvFile, header_row: int | None, columns: Sequence[tuple[str, str]],
                  ) -> Sheet:
    """``_load`` for a CSV file read by columns: the same sheet, its rows a view over the columns."""
    import numpy as np

    plain = csv_file.columnar
    assert plain is not None
    head = csv_file.records
    detected = header_row is None
    if header_row is None:
        header_row = find_header_row(head, columns)
    if header_row > len(head):  # --header-row below the records read ahead: read down to it
        head = csv_file.records = plain.first_records(header_row)
    if header_row > len(head):
        raise SheetError(f"{path}: has no row {header_row} to use as the header (it has {len(head)} rows)")
    raw_header = head[header_row - 1]
    header = [clean_header(h) for h in raw_header]
    while header and not header[-1]:
        header.pop()
    if not header:
        raise SheetError(f"{path}:{header_row}: the header row is empty; use --header-row N")
    width = len(header)
    if plain.text is None:  # parsed by pandas: only the columns read, when first read
        scanned = plain.lines()
        if scanned is not None:
            return _load_lazily(path, csv_file, header_row, columns, header, raw_header, detected, *scanned)
    table, fields = plain.read(width)
    count = len(table[0])
    # A fully empty row (every cell empty or spaces) is not a row: most rows show it in the first cell.
    first = table[0]
    blank = np.fromiter(map(len, first), dtype=np.int64, count=count) == 0
    blank |= np.fromiter(map(str.isspace, first), dtype=bool, count=count)
    blank[:header_row] = True
    for i in np.flatnonzero(blank[header_row:]).tolist():
        index = i + header_row
        if any(column[index] and not column[index].isspace() for column in table[1:]):
            blank[index] = False
    kept = np.flatnonzero(~blank)
    used = len(table) if fields is not None else width
    if len(kept) == count - header_row:
        cells = [column[header_row:] for column in table[:used]]
    else:
        take = kept.tolist()
        cells = [[column[i] for i in take] for column in table[:used]]
    lengths = None
    if fields is not None:
        lengths = np.maximum(fields[kept], width)
        used = int(lengths.max()) if len(kept) else width
        cells = cells[:used]
        if used == width:
            lengths = None
    rows = ColumnRows(cells, width, lengths, plain)
    result = Sheet(path, header, rows, (kept + 1).tolist(), "csv", csv_file.encoding, csv_file.delimiter, None,
                   header_row, preamble=head[:header_row - 1], raw_header=raw_header,
                   header_detected=detected and header_row != 1)
    result.columns = map_columns(result, columns)
    return result


def _line_cells(raw: np.ndarray, delimiter: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each line of ``raw`` (a file's bytes, whole lines) ends, and how many cells it has (its
    delimiters and one). The positions of every delimiter and line break, in order, put the line breaks
    as many places apart as their line has cells (1M lines: ~0.1 s; counting each line's delimiters by
    searching the line ends took twice that)."""
    import numpy as np

    marks = np.flatnonzero((raw == delimiter) | (raw == 10))
    breaks = np.flatnonzero(raw[marks] == 10)
    ends = marks[breaks]
    if len(raw) and raw[-1] != 10:  # a last line without its line break
        ends = np.append(ends, len(raw))
        breaks = np.append(breaks, len(marks))
    return ends, np.diff(breaks, prepend=-1)


def _empty_lines(data: bytes, raw: np.ndarray, ends: np.ndarray, delimiter: str, *, many: bool) -> np.ndarray | None:
    """Whether each line of ``data`` (whole lines; ``raw`` its bytes, ``ends`` where its lines end) is an
    empty row: every byte a space, the delimiter or (decided by ``str.isspace``) part of a non-ASCII space.

    Lines that start with any other byte hold something (most lines), so only the few that do not
    are looked at byte by byte (1M lines: 0.45 s instead of 1.4 s). When many do (a blank first
    column), every byte is counted by line in numpy with ``many``; without it, None (the caller
    reads the file another way).
    """
    import numpy as np

    soft = np.zeros(256, dtype=bool)
    soft[list(_ASCII_SPACE)] = True
    soft[ord(delimiter)] = True
    soft[128:] = True  # not ASCII: decided below
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    # what an empty row's first byte can be: a space, the delimiter, or the lead byte of a non-ASCII space
    # (str.isspace: U+0085 and U+00A0 start with C2, U+1680 E1, U+2000-U+205F E2, U+3000 E3)
    leads = soft.copy()
    leads[128:] = False
    leads[[0xC2, 0xE1, 0xE2, 0xE3]] = True
    padded = np.append(raw, np.uint8(10))  # an empty last line's "first byte"
    maybe = np.flatnonzero(leads[padded[starts]] | (starts == ends))
    if len(maybe) > len(ends) // 64 + 64:  # many lines start blank-like
        if not many:
            return None
        line_of = np.zeros(len(raw) + 1, dtype=np.int32)
        line_of[ends[:-1] + 1] = 1
        line_of = np.cumsum(line_of[:-1], dtype=np.int32)
        blank = np.bincount(line_of[~soft[raw]], minlength=len(ends)) == 0
        wide = np.bincount(line_of[raw >= 128], minlength=len(ends)) > 0
    else:
        blank = np.zeros(len(ends), dtype=bool)
        wide = np.zeros(len(ends), dtype=bool)
        for line in maybe.tolist():
            seg = raw[starts[line]:ends[line]]
            blank[line] = not (~soft[seg]).any()
            wide[line] = blank[line] and bool((seg >= 128).any())
    for line in np.flatnonzero(blank & wide).tolist():
        text = data[starts[line]:ends[line]].decode("utf-8").removesuffix("\r")
        blank[line] = all(cell.isspace() or not cell for cell in text.split(delimiter))
    return blank


def _load_lazily(path: Path, csv_file: CsvFile, header_row: int, columns: Sequence[tuple[str, str]],
                 header: list[str], raw_header: list[str], detected: bool, cells: np.ndarray, blank: np.ndarray,
                 ) -> Sheet:
    """``_load_columns`` for a file pandas parses, with its lines scanned (:meth:`Columnar.lines`): the same
    sheet, its columns parsed when first read (:class:`LazyColumns`)."""
    import numpy as np

    plain = csv_file.columnar
    assert plain is not None
    width = len(header)
    blank[:header_row] = True
    kept = np.flatnonzero(~blank)
    widest = int(cells.max()) if len(cells) else 0
    lengths = None
    size = width
    if widest > width:
        lengths = np.maximum(cells[kept], width)
        size = int(lengths.max()) if len(kept) else width
        if size == width:
            lengths = None
    take = None if len(kept) == len(cells) - header_row else kept.tolist()
    lazy = LazyColumns(path, plain, size, max(width, widest, 1), len(cells), header_row, take)
    rows = ColumnRows(lazy, width, lengths, plain, count=len(kept))
    result = Sheet(path, header, rows, (kept + 1).tolist(), "csv", csv_file.encoding, csv_file.delimiter, None,
                   header_row, preamble=csv_file.records[:header_row - 1], raw_header=raw_header,
                   header_detected=detected and header_row != 1)
    result.columns = map_columns(result, columns)
    return result


class LazyColumns(Sequence):
    """The columns of a sheet pandas reads (:class:`Columnar`), each parsed the first time it is read.

    A check by columns reads a few columns: the recipients and the cells its template names
    (it says which, :meth:`want`). Parsing only those saved ~0.25 s of a million-row check of
    five columns. A column read without being wanted is parsed then; reading rows (a slice of
    the columns) parses every column still missing, in one pass.
    """

    def __init__(self, path: Path, source: Columnar, size: int, names: int, records: int, first: int,
                 take: list[int] | None) -> None:
        self._path = path
        self._source = source
        self._size = size  # columns of the sheet's rows
        self._names = names  # columns pandas is told of: at least the cells of the widest line
        self._records = records  # lines of the file, each a record
        self._first, self._take = first, take  # the first record that is a row, else the records that are rows
        self._made: dict[int, list[str]] = {}

    def want(self, indexes: Iterable[int]) -> None:
        """Parse the columns ``indexes`` not parsed yet, in one pass."""
        missing = sorted({j for j in indexes if 0 <= j < self._size and j not in self._made})
        if not missing:
            return
        parsed = self._source._frame(range(self._names), missing)
        for j, column in zip(missing, parsed, strict=True):
            if len(column) != self._records:  # pragma: no cover - the scan and pandas disagree on the lines
                raise SheetError(f"{self._path}: changed while it was being read; run again")
            self._made[j] = column[self._first:] if self._take is None else [column[i] for i in self._take]

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            picked = range(*index.indices(self._size))
            self.want(picked)
            return [self._made[j] for j in picked]
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError(index)
        self.want((index,))
        return self._made[index]

    def __iter__(self) -> Iterator[list[str]]:
        return iter(self[:])


#: CSV files at least this big (about 5 million rows) are not held in memory: their rows are read in
#: chunks by the check, and again by the preview (:class:`Streamed`).
STREAM_BYTES = 256 * 2**20
#: Bytes read at once while a streamed file is scanned.
PIECE_BYTES = 16 * 2**20
#: Bytes str.isspace counts as whitespace, among ASCII (a line of them and delimiters is an empty row).
_ASCII_SPACE = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "


def _pieces(fh, start: bytes = b""):
    """The rest of an open file in whole lines, about PIECE_BYTES at a time (the last may lack its line end)."""
    carry = start
    while True:
        more = fh.read(PIECE_BYTES)
        if not more:
            if carry:
                yield carry
            return
        data = carry + more
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data
            continue
        yield data[:cut]
        carry = data[cut:]


class Streamed:
    """A CSV file too big to hold, as :class:`Columnar` reads it, scanned once for what the sheet needs.

    The scan reads the file in pieces: it decodes each strictly (a file that is not plain
    UTF-8, or holds a quote, a NUL or a lone carriage return, is read the usual way, which
    says what is wrong), counts the lines, finds the empty rows and the widest line. Rows are
    then read by :meth:`chunks` (pandas, a chunk of columns at a time) and :meth:`line_blocks`
    (the lines' bytes, for the preview).
    """

    def __init__(self, path: Path, bom: int, delimiter: str) -> None:
        self.path = path
        self.bom = bom  # bytes of BOM at the start
        self.delimiter = delimiter
        self.lines = 0  # lines (records) in the file
        self.widest = 0  # the most cells on a line
        self.head: list[list[str]] = []  # the first records, by csv.reader

    def first_records(self, count: int) -> list[list[str]]:
        """The first ``count`` records, read from the start of the file (see :meth:`Columnar.first_records`)."""
        with open(self.path, "rb") as fh:
            fh.seek(self.bom)
            body = b""
            for piece in _pieces(fh):
                body += piece
                if _has_lines(body, count):
                    break
        return _first_records(body, self.delimiter, count)

    @classmethod
    def scan(cls, path: Path, encoding: str | None, delimiter: str | None) -> tuple[Streamed, np.ndarray] | None:
        """The file's description and the (0-based) numbers of its lines that are empty rows, or None."""
        import numpy as np

        if encoding is not None and codecs.lookup(encoding).name != "utf-8":
            return None
        with open(path, "rb") as fh:
            start = fh.read(3)
            bom = 3 if start.startswith(codecs.BOM_UTF8) else 0
            decoder = codecs.getincrementaldecoder("utf-8")("strict")
            found: Streamed | None = None
            blanks: list[np.ndarray] = []
            for piece in _pieces(fh, start[bom:]):
                if b'"' in piece or b"\x00" in piece or piece.count(b"\r") != piece.count(b"\r\n"):
                    return None
                try:
                    text = decoder.decode(piece)
                except UnicodeDecodeError:
                    return None
                if found is None:
                    if text.startswith("\ufeff"):  # a second BOM: the usual reading drops it, pandas would not
                        return None
                    delim = delimiter or detect_delimiter(text[:65536])
                    if not delim.isascii():
                        return None
                    found = cls(path, bom, delim)
                    found.head = _first_records(piece, delim, HEADER_SEARCH_ROWS)  # whole lines, decoded above
                blanks.append(found._piece(piece) + found.lines)
                found.lines += piece.count(b"\n") + (0 if piece.endswith(b"\n") else 1)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                return None
        if found is None:
            return None
        return found, np.concatenate(blanks) if blanks else np.zeros(0, dtype=np.int64)

    def _piece(self, piece: bytes) -> np.ndarray:
        """The lines of ``piece`` (whole lines) that are empty rows (:func:`_empty_lines`), numbered from 0;
        notes the widest line."""
        import numpy as np

        raw = np.frombuffer(piece, dtype=np.uint8)
        ends, cells = _line_cells(raw, ord(self.delimiter))
        self.widest = max(self.widest, int(cells.max()) if len(cells) else 0)
        return np.flatnonzero(_empty_lines(piece, raw, ends, self.delimiter, many=True))

    def chunks(self, width: int, rows: int, usecols: Sequence[int] | None = None):
        """The file's records as columns of at least ``width`` cells, ``rows`` records at a time; with
        ``usecols``, only those columns are parsed (the others are None)."""
        import pandas as pd

        with open(self.path, "rb") as fh:
            fh.seek(self.bom)
            names = range(max(width, self.widest, 1))
            wanted = sorted(set(usecols)) if usecols is not None else None
            reader = pd.read_csv(fh, sep=self.delimiter, header=None, names=names, dtype=object, na_filter=False,
                                 keep_default_na=False, skip_blank_lines=False, quoting=csv.QUOTE_NONE,
                                 encoding="utf-8", engine="c", chunksize=rows, usecols=wanted)
            for frame in reader:
                yield [frame[j].tolist() if wanted is None or j in wanted else None for j in names]

    def line_blocks(self, numbers: Sequence[int], block: int):
        """The bytes of lines ``numbers`` (1-based, ascending; without line end), ``block`` of them at a time."""
        import numpy as np

        numbers = np.asarray(numbers, dtype=np.int64)
        wanted, line, out = 0, 0, []
        with open(self.path, "rb") as fh:
            fh.seek(self.bom)
            for piece in _pieces(fh):
                if wanted >= len(numbers):
                    break
                count = piece.count(b"\n") + (0 if piece.endswith(b"\n") else 1)
                if numbers[wanted] > line + count:  # no wanted line here (the preview's second half starts
                    line += count                   # halfway through the file): counted, not split
                    continue
                lines = piece.replace(b"\r\n", b"\n").split(b"\n") if b"\r" in piece else piece.split(b"\n")
                if piece.endswith(b"\n"):
                    lines.pop()
                hi = int(np.searchsorted(numbers, line + len(lines), side="right"))
                taken = list(map(lines.__getitem__, (numbers[wanted:hi] - (1 + line)).tolist()))
                at = 0
                while at < len(taken):
                    room = block - len(out)
                    out += taken[at:at + room]
                    at += room
                    if len(out) >= block:
                        yield out
                        out = []
                wanted = hi
                line += len(lines)
        if out:
            yield out


class IntRows(Sequence):
    """Row numbers kept as an array (a streamed sheet has millions), read as ints."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return self.values[index].tolist()
        return int(self.values[index])

    def __iter__(self) -> Iterator[int]:
        return iter(self.values.tolist())

    def __contains__(self, row: object) -> bool:
        return isinstance(row, int) and self.index_or_none(row) is not None

    def index_or_none(self, row: int) -> int | None:
        import numpy as np

        at = int(np.searchsorted(self.values, row))
        return at if at < len(self.values) and int(self.values[at]) == row else None

    def index(self, row, *args) -> int:  # type: ignore[override]
        at = self.index_or_none(row)
        if at is None:
            raise ValueError(f"{row} is not a row of the sheet")
        return at

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    __hash__ = None  # type: ignore[assignment]


class StreamedRows(Sequence):
    """The rows of a streamed sheet: their number; reading one reads the whole sheet (once) the usual way,
    for the rare code that needs a row's cells (a send of millions of rows)."""

    def __init__(self, source: Streamed, count: int, width: int, load_all) -> None:
        self.streamed = source
        self.count = count
        self.width = width
        self.lengths = None
        self.widest = max(width, source.widest)
        self._load_all = load_all
        self._rows: Sequence[list[str]] | None = None

    def __len__(self) -> int:
        return self.count

    def _held(self) -> Sequence[list[str]]:
        if self._rows is None:
            self._rows = self._load_all().rows
        return self._rows

    def __getitem__(self, index):  # type: ignore[override]
        return self._held()[index]

    def __iter__(self) -> Iterator[list[str]]:
        return iter(self._held())


def _load_streamed(path: Path, encoding: str | None, delimiter: str | None, header_row: int | None,
                   columns: Sequence[tuple[str, str]]) -> Sheet | None:
    """``_load`` for a CSV file too big to hold (see :class:`Streamed`), or None to read it the usual way."""
    import numpy as np

    if delimiter is not None:
        delimiter = check_delimiter(delimiter)
    if encoding is not None:
        check_encoding(encoding)
    scanned = Streamed.scan(path, encoding, delimiter)
    if scanned is None:
        return None
    source, blank_lines = scanned
    head = source.head
    detected = header_row is None
    if header_row is None:
        header_row = find_header_row(head, columns)
    if header_row > len(head):  # --header-row below the records read ahead: read down to it
        head = source.head = source.first_records(header_row)
    if header_row > len(head):
        return None
    raw_header = head[header_row - 1]
    header = [clean_header(h) for h in raw_header]
    while header and not header[-1]:
        header.pop()
    if not header:
        return None
    keep = np.ones(source.lines, dtype=bool)
    keep[blank_lines] = False
    keep[:header_row] = False
    numbers = np.flatnonzero(keep) + 1
    enc = encoding or ("utf-8-sig" if source.bom else "utf-8")
    chosen = header_row

    def load_all() -> Sheet:
        csv_file = read_csv(path, encoding, delimiter, True)
        if csv_file.columnar is None:  # pragma: no cover - the scan found it plain
            raise SheetError(f"{path}: changed while it was being read; run again")
        return _load_columns(path, csv_file, chosen, columns)

    rows = StreamedRows(source, len(numbers), len(header), load_all)
    result = Sheet(path, header, rows, IntRows(numbers), "csv", enc, source.delimiter, None, header_row,
                   preamble=head[:header_row - 1], raw_header=raw_header,
                   header_detected=detected and header_row != 1)
    result.columns = map_columns(result, columns)
    return result


class ColumnRows(Sequence):
    """A sheet's rows as a view over its columns (a CSV file read by columns).

    ``rows[i]`` is a new list each time, exactly the row ``load`` gives otherwise: the
    record's cells, padded with "" to the header's width. The columnar check reads the
    columns themselves (:attr:`columns`); row-at-a-time code reads rows as ever.
    """

    def __init__(self, columns: Sequence[list[str]], width: int, lengths: np.ndarray | None = None,
                 source: Columnar | None = None, count: int | None = None) -> None:
        self.columns = columns  # lists, or LazyColumns
        self.width = width  # cells of a row (the header's width), unless ``lengths`` says more
        self.lengths = lengths  # cells of each row, where some rows have cells beyond the header
        self.source = source  # the file's bytes: row i is its line row_numbers[i] - 1 (the preview reuses it)
        self._count = count if count is not None else len(columns[0]) if columns else 0

    def want(self, indexes: Iterable[int]) -> None:
        """Columns about to be read (a check by columns says which): parsed at once where they are lazy."""
        if isinstance(self.columns, LazyColumns):
            self.columns.want(indexes)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        size = self.width if self.lengths is None else int(self.lengths[index])
        return [column[index] for column in self.columns[:size]]

    def __iter__(self) -> Iterator[list[str]]:
        if self.lengths is None:
            return map(list, zip(*self.columns[:self.width], strict=True))
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    __hash__ = None  # type: ignore[assignment]


def listed_names(names: Sequence[str], limit: int = 12, width: int = 40, hidden: Container[str] = frozenset()) -> str:
    """Names quoted for a one-line message: at most ``limit`` of them, each cut to ``width``.

    A file decides how many headers or sheets it has and how long they are; a message
    that lists them must not grow with it (16,384 columns would be a 200 KB line).
    """
    shown = [repr(n if len(n) <= width else n[:width - 1] + "…") + (" (hidden)" if n in hidden else "")
             for n in names[:limit]]
    more = len(names) - limit
    return ", ".join(shown) + (f" and {more:,} more" if more > 0 else "")


#: How far down a sheet the header is looked for when --header-row is not given.
HEADER_SEARCH_ROWS = 20


def find_header_row(records: Sequence[Sequence[str]], explicit: Sequence[tuple[str, str]] = ()) -> int:
    """The row that holds the header when the user did not say (``--header-row``).

    Row 1, unless the rows above the header are blank lines or a title (at most one filled
    cell each) and a later row among the first few names a recipient column (``Mobile``,
    ``To``, … or the header given by ``--column To=…``): a person sees a title and a
    header, and so does this. Anything else is row 1, as before.
    """
    recipient_keys = {header_key(h) for f, h in explicit if canonical_field(f) == TO}
    for number, record in enumerate(records[:HEADER_SEARCH_ROWS], start=1):
        filled = [c for c in record if clean_header(c)]
        if any(field_for_header(c) == TO or header_key(c) in recipient_keys for c in filled):
            return number
        if len(filled) > 1:  # a row of several cells that names no recipient: no guessing
            return 1
    return 1


def map_columns(sheet: Sheet, explicit: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Which column feeds which API field: explicit ``--column`` mappings, then header names."""
    where = f"{sheet.path}:{sheet.header_row}"
    chosen: dict[str, int] = {}
    for name, header in explicit:
        api_field = canonical_field(name)
        if api_field is None:
            raise SheetError(f"--column {name}={header}: {name!r} is not an API field; use one of {', '.join(FIELDS)}")
        index = find_header(sheet, header)
        if index is None:
            raise SheetError(
                f"--column {name}={header}: {sheet.path} has no column {header!r}; "
                f"its columns are {listed_names(sheet.header)}"
            )
        chosen[api_field] = index
    claimed: dict[str, list[int]] = {}
    for index, header in enumerate(sheet.header):
        api_field = field_for_header(header) if header else None
        if api_field and api_field not in chosen:
            claimed.setdefault(api_field, []).append(index)
    mapping: dict[str, int] = {}
    for api_field, indexes in claimed.items():
        if len(indexes) > 1:
            exact = [i for i in indexes if header_key(sheet.header[i]) == header_key(api_field)]
            if len(exact) != 1:
                names = listed_names([sheet.header[i] for i in indexes])
                raise SheetError(
                    f"{where}: columns {names} could all be {api_field}; "
                    f"choose one with --column {api_field}=HEADER"
                )
            indexes = exact
        mapping[api_field] = indexes[0]
    mapping.update(chosen)
    if TO not in mapping:
        raise SheetError(
            f"{where}: no recipient column; name one To, Mobile, Phone, Cell, Number or MSISDN, "
            f"or use --column To=HEADER (columns: {listed_names(sheet.header)})"
        )
    return mapping


def find_header(sheet: Sheet, header: str) -> int | None:
    """The index of ``header``: exact match first, then ignoring case, then as header names match."""
    header = clean_header(header)
    if header in sheet.header:
        return sheet.header.index(header)
    folded = header.casefold()
    for index, h in enumerate(sheet.header):
        if h.casefold() == folded:
            return index
    key = header_key(header)  # then as header names are matched: spaces of any kind, _ and - aside
    matches = [index for index, h in enumerate(sheet.header) if header_key(h) == key]
    return matches[0] if len(matches) == 1 else None
