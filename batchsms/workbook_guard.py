"""Refuse workbook files built to exhaust memory, before python-calamine reads them.

calamine trusts what a workbook says about itself, and some of what it trusts cannot be
caught once it has started: it reserves a shared-strings table as large as the part
declares (``uniqueCount="4000000000"`` aborts the process with a Rust backtrace, exit
134), it builds every sheet as a dense grid from A1 to the furthest cell holding a value
(one cell at XFD1048576 in a 2 KB file asks for 17 billion cells: abort), and it inflates
whatever the zip holds (a 1 MB sheet of repeated XML becomes 1 GB of text and 8 GB of
Python objects). An abort cannot be caught, so every check here runs first, on the zip's
own directory and on the XML, and ends in one ``SheetError`` line.

What is checked, in order:

1. The zip directory: part count, total inflated size, each big part's ratio.
2. The parts calamine parses on opening (workbook, relationships, styles, shared
   strings; content.xml of .ods; the .bin parts of .xlsb) are inflated once, streaming, to
   prove they hold no more than the directory declares (a forged size would dodge 1), and
   the shared-strings table may not declare more strings than it could hold.
3. The chosen worksheet (``scan_sheet``): its declared ``<dimension>``; and, for parts up
   to ``FULL_SCAN_MAX_BYTES``, every cell reference, cells written without one placed as
   calamine places them, text runs and tags. calamine sizes its grid by the cells, not the
   declaration, so a tiny forged file that declares A1:B2 is caught only this way.

The limits are far above any real contact sheet and far below what hurts:

- ``MAX_CELLS`` (30 million): Excel's own 1,048,576 rows x 26 columns (27.3 million)
  always passes, so does a million rows x 28 columns; 17 billion does not.
- ``MAX_RATIO`` (100): real sheet XML deflates 8-30 times (measured on 100,000-row sheets
  of identical values, empty styled cells and repeated long texts); bombs run near 1,000.
  Parts under ``RATIO_FLOOR_BYTES`` are never refused for their ratio: they cannot hurt.
- ``MAX_TOTAL_BYTES`` (2 GiB inflated): a real million-row x 20-column sheet is about
  1.2 GB of XML as openpyxl writes it (about 60 bytes a cell), so 1 GB would refuse it.
- ``MAX_PARTS`` (10,000): a workbook of a few sheets has tens of parts.
- ``MAX_TEXT_BYTES`` (1 MiB of text without markup): Excel caps a cell at 32,767
  characters, about 200 KB as escaped UTF-8.
- ``MAX_XLS_BYTES`` (256 MiB): an old binary .xls holds at most 65,536 x 256 cells and is
  only checked by size; calamine caps .ods grids itself (100 million cells, an error, not
  an abort).

The loader's own pass over the chosen sheet (``sheet_facts``, run in a thread while
calamine parses) also learns what calamine does not tell: hidden rows, cells holding an
Excel error (calamine reads ``#N/A`` as empty text) or a formula with no saved value, and
which number cells carry a number format that is shown otherwise than General (only when
the workbook has such formats; ``number_formats`` reads them from ``xl/styles.xml``).

Not covered: a worksheet part over ``FULL_SCAN_MAX_BYTES`` that declares a modest
dimension and still holds a far cell (reading every reference costs about 2.3 ns a byte,
14% of a 200,000-row load: raise the constant to buy it), and the binary cell records of
.xlsb.
"""

from __future__ import annotations

import html
import os
import posixpath
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .errors import SheetError

Feed = Callable[[bytes, int, int], None]  # a scanner, handed (data, start, end) spans of a part

MAX_PARTS = 10_000
MAX_TOTAL_BYTES = 2 * 1024**3
MAX_RATIO = 100
RATIO_FLOOR_BYTES = 4 * 1024**2
MAX_CELLS = 30_000_000
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLUMNS = 16_384
MAX_SHARED_STRINGS = MAX_CELLS
MAX_TEXT_BYTES = 1024**2
MAX_XLS_BYTES = 256 * 1024**2
MAX_SMALL_PART_BYTES = 64 * 1024**2  # workbook.xml, its relationships, styles
MAX_TAG_BYTES = 64 * 1024  # one XML tag (a cell's is about 40 bytes)
FULL_SCAN_MAX_BYTES = 4 * 1024**2  # sheet parts read through cell by cell before calamine (see scan_sheet)

CHUNK_BYTES = MAX_TEXT_BYTES  # most inflated bytes handed to the scanners at a time
_READ_BYTES = 64 * 1024  # compressed bytes fed to zlib at a time (about 600 KB inflated: stays in cache)

HINT = "re-save it from Excel, or export it as CSV"

# The parts calamine parses when it opens an .xlsx/.xlsm (fixed names in calamine's reader).
_WORKBOOK = "xl/workbook.xml"
_WORKBOOK_RELS = "xl/_rels/workbook.xml.rels"
_SHARED_STRINGS = "xl/sharedStrings.xml"
_STYLES = "xl/styles.xml"
_OPENED_PARTS = (_WORKBOOK, _WORKBOOK_RELS, _SHARED_STRINGS, _STYLES)


def refuse(path: Path, what: str) -> SheetError:
    """The one-line refusal every check raises."""
    return SheetError(f"{path}: refused: {what}; {HINT}")


def regular_file(path: Path) -> os.stat_result:
    """``stat`` of ``path``, refusing anything but a regular file.

    A FIFO would block the reader forever and a device (``/dev/zero``) never ends; both
    are refused by ``stat``, which does not open them.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SheetError(f"{path}: no such file") from None
    except OSError as exc:
        raise SheetError(f"{path}: cannot be read ({exc.strerror})") from exc
    if stat.S_ISDIR(st.st_mode):
        raise SheetError(f"{path}: is a folder, not a contact sheet")
    if not stat.S_ISREG(st.st_mode):
        raise SheetError(f"{path}: is not a regular file (a pipe, device or socket); save the sheet to a file")
    return st


def many(n: int) -> str:
    """A count as a person reads it: 17 billion, 34 million, 12,345."""
    if n >= 10**9:
        return f"{n / 10**9:.3g} billion"
    if n >= 10**6:
        return f"{n / 10**6:.3g} million"
    return f"{n:,}"


def column_letters(n: int) -> str:
    """Excel's letters for column ``n`` (1 = A)."""
    letters = ""
    while n > 0:
        n, rest = divmod(n - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def column_number(letters: bytes | str) -> int:
    """Column number of Excel letters, either case, as calamine reads them (A = 1)."""
    if isinstance(letters, bytes):
        letters = letters.decode("ascii")
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


# --------------------------------------------------------------------------- the zip


@dataclass
class Workbook:
    """What the guard learnt from a workbook zip, for the loader."""

    path: Path
    sheet_parts: dict[str, str] = field(default_factory=dict)  # sheet name -> zip part (.xlsx/.xlsm)


def check_workbook(path: Path) -> Workbook:
    """Check a workbook file before calamine opens it; where the sheets live, for ``scan_sheet``."""
    st = regular_file(path)
    with open(path, "rb") as fh:
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            # Not a zip: an old binary .xls, or a broken or encrypted file that calamine
            # will reject with its own error. Only its size can be judged here.
            if st.st_size > MAX_XLS_BYTES:
                raise refuse(path, f"it is {many(st.st_size)} bytes, more than a contact sheet can be "
                                   f"(the limit is {many(MAX_XLS_BYTES)})") from None
            return Workbook(path)
        with zf:
            return _check_zip(path, fh, zf)


def _check_zip(path: Path, fh: BinaryIO, zf: zipfile.ZipFile) -> Workbook:
    infos = zf.infolist()
    if len(infos) > MAX_PARTS:
        raise refuse(path, f"it holds {many(len(infos))} parts (a workbook has tens; the limit is {MAX_PARTS:,})")
    total = 0
    for info in infos:
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise refuse(path, f"its parts inflate to more than {many(MAX_TOTAL_BYTES)} bytes")
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            raise refuse(path, f"its part {info.filename} inflates {ratio:,} times, to {many(info.file_size)} bytes "
                               f"(real sheets inflate about 10 times; the limit is {MAX_RATIO})")
    names = {info.filename: info for info in infos}
    # calamine parses these when it opens the file: make sure each inflates to no more
    # than the directory says (a forged size would dodge the ratio check) and, for the
    # shared strings, that the table it declares is not one calamine would reserve in vain.
    for name in _OPENED_PARTS:
        opened = names.get(name)
        if opened is None:
            continue
        if name != _SHARED_STRINGS and opened.file_size > MAX_SMALL_PART_BYTES:
            raise refuse(path, f"its part {name} is {many(opened.file_size)} bytes")
        head = b""
        for chunk in inflate(path, fh, zf, opened):
            if len(head) < 65536:
                head += chunk[:65536]
        if name == _SHARED_STRINGS:
            _check_shared_strings(path, opened, head)
    for info in infos:  # .ods keeps every sheet in content.xml; .xlsb keeps binary parts
        if info.filename == "content.xml" or info.filename.endswith(".bin"):
            for _ in inflate(path, fh, zf, info):
                pass
    return Workbook(path, _sheet_parts(path, zf, names))


_SST = re.compile(rb"<(?:[\w.-]+:)?sst\b[^>]*>")
_UNIQUE_COUNT = re.compile(rb"\suniqueCount\s*=\s*[\"']\s*(\d+)")


def _check_shared_strings(path: Path, info: zipfile.ZipInfo, head: bytes) -> None:
    """Refuse a shared-strings table that declares more strings than it could hold.

    calamine reserves room for ``uniqueCount`` strings up front; a string needs at least
    ``<si></si>`` (9 bytes), so a part of N bytes holds fewer than N / 9 of them.
    """
    tag = _SST.search(head)
    if tag is None:
        return
    declared = _UNIQUE_COUNT.search(tag.group(0))
    if declared is None:
        return
    count = int(declared.group(1))
    if count > MAX_SHARED_STRINGS or count > info.file_size // 9 + 1:
        raise refuse(path, f"its shared-strings part declares {many(count)} strings in {many(info.file_size)} bytes")


def _sheet_parts(path: Path, zf: zipfile.ZipFile, names: dict[str, zipfile.ZipInfo]) -> dict[str, str]:
    """Sheet name -> worksheet part, resolved exactly as calamine resolves it."""
    if _WORKBOOK not in names or _WORKBOOK_RELS not in names:
        return {}
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        book = ElementTree.fromstring(zf.read(_WORKBOOK))
        rels = ElementTree.fromstring(zf.read(_WORKBOOK_RELS))
    except (ElementTree.ParseError, DefusedXmlException, zipfile.BadZipFile, OSError, zlib.error) as exc:
        raise SheetError(f"{path}: not a readable workbook ({exc})") from exc
    targets = {rel.get("Id"): rel.get("Target") or "" for rel in rels.iter() if rel.tag.endswith("Relationship")}
    parts = {}
    for sheet in book.iter():
        if not sheet.tag.endswith("}sheet") and sheet.tag != "sheet":
            continue
        rid = next((v for k, v in sheet.attrib.items() if k.endswith("}id")), None)
        target = targets.get(rid)
        if target is None:
            continue
        if target.startswith("/xl/"):
            target = target[1:]
        elif not target.startswith("xl/"):
            target = posixpath.join("xl", target)
        parts[sheet.get("name", "")] = target
    return parts


def inflate(path: Path, fh: BinaryIO, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The part's bytes, inflated a chunk at a time, and exactly as many as the zip declares.

    zlib is driven directly (zipfile stops quietly at the declared size, calamine's zip
    reader does not), so a part that inflates to more than it declares is refused after
    reading no more than it declared.
    """
    if info.flag_bits & 1:
        raise SheetError(f"{path}: its part {info.filename} is encrypted; save the workbook without a password")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        yield from _inflate_other(path, zf, info)
        return
    fh.seek(info.header_offset)
    local = fh.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise SheetError(f"{path}: not a readable workbook (its part {info.filename} is damaged)")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    fh.seek(info.header_offset + 30 + name_len + extra_len)
    left = info.compress_size
    declared = info.file_size
    produced = 0
    if info.compress_type == zipfile.ZIP_STORED:
        if left != declared:
            raise SheetError(f"{path}: not a readable workbook (its part {info.filename} is damaged)")
        while left:
            data = fh.read(min(left, CHUNK_BYTES))
            if not data:
                break
            left -= len(data)
            yield data
        if left:
            raise SheetError(f"{path}: not a readable workbook (its part {info.filename} is cut short)")
        return
    inflater = zlib.decompressobj(-15)
    try:
        while not inflater.eof:
            if inflater.unconsumed_tail:
                data = inflater.unconsumed_tail
            else:
                data = fh.read(min(left, _READ_BYTES)) if left else b""
                left -= len(data)
                if not data:
                    break
            out = inflater.decompress(data, CHUNK_BYTES)
            produced += len(out)
            if produced > declared:
                raise refuse(path, f"its part {info.filename} inflates to more than the {many(declared)} bytes "
                                   "its zip directory declares")
            if out:
                yield out
    except zlib.error as exc:
        raise SheetError(f"{path}: not a readable workbook (its part {info.filename} is damaged: {exc})") from exc
    if not inflater.eof or produced != declared:
        raise SheetError(f"{path}: not a readable workbook (its part {info.filename} is damaged or cut short)")


def _inflate_other(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """Parts packed with bzip2/LZMA (no spreadsheet program does): zipfile stops at the declared size."""
    try:
        with zf.open(info) as part:
            while chunk := part.read(CHUNK_BYTES):
                yield chunk
    except (NotImplementedError, zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise SheetError(f"{path}: not a readable workbook (its part {info.filename}: {exc})") from exc


# --------------------------------------------------------------------------- one worksheet


def _over_letters(n: int) -> str:
    """A regex for column letters (either case) of a column after ``n``."""
    s = column_letters(n)
    alternatives = [f"[A-Za-z]{{{len(s) + 1}}}"]
    for i, ch in enumerate(s):
        if ch == "Z":
            continue
        nxt = chr(ord(ch) + 1)
        prefix = "".join(f"[{c}{c.lower()}]" for c in s[:i])
        rest = f"[A-Za-z]{{{len(s) - i - 1}}}" if len(s) - i - 1 else ""
        alternatives.append(f"{prefix}[{nxt}-Z{nxt.lower()}-z]{rest}")
    return "|".join(alternatives)


# A row number at or above a step is a hit. Narrow sheets step by powers of ten (one
# branch, the cheapest pattern to test on every reference); once a column past Z shows up
# the steps get finer, so that a wide sheet's bound stays within 2.5 times its real depth.
_BEYOND_EXCEL = EXCEL_MAX_ROWS + 1
_COARSE_STEPS = (1_000, 10_000, 100_000, 1_000_000, _BEYOND_EXCEL)
_FINE_STEPS = (1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, _BEYOND_EXCEL)
_PAST_EXCEL = r"\d{8}|[2-9]\d{6}|1[1-9]\d{5}|10[5-9]\d{4}|1049\d{3}|1048[6-9]\d\d|10485[89]\d|104857[7-9]"


def _at_least(n: int) -> str:
    """A regex for a row number >= ``n`` (leading zeros count as digits: a false hit, never a miss)."""
    if n == _BEYOND_EXCEL:
        return _PAST_EXCEL
    s = str(n)
    if s.strip("0") == "1":  # a power of ten: enough digits is the whole test, one branch
        return rf"\d{{{len(s)}}}"
    alternatives = [rf"\d{{{len(s) + 1}}}"]
    for i, ch in enumerate(s):
        tail = rf"\d{{{len(s) - i - 1}}}" if len(s) - i - 1 else ""
        if not s[i + 1:].strip("0"):  # only zeros follow: this digit or more, then anything
            alternatives.append(f"{s[:i]}[{ch}-9]{tail}")
            break
        if ch != "9":
            alternatives.append(f"{s[:i]}[{int(ch) + 1}-9]{tail}")
    return "|".join(alternatives)


_REF = re.compile(rb"r\s*=\s*[\"']([A-Za-z]*)(\d*)[\"']")
_DIMENSION = re.compile(rb"<(?:[\w.-]+:)?dimension\s[^>]*?\bref\s*=\s*[\"']([^\"']*)[\"']")
_CELL_REF = re.compile(r"\$?([A-Za-z]{1,7})\$?(\d{1,10})")


class _Extent:
    """How far right and down the cell references reach, found by one stepping regex.

    The regex only stops where a reference goes past the current bounds (a column past the
    widest so far, a row at or past the current step), so a normal sheet is one C-speed
    search per chunk and a handful of Python steps. The bound it proves is every column
    <= ``columns`` and every row < ``rows``.
    """

    def __init__(self, path: Path, sheet: str, *, widest: int = 0, rows: int = _COARSE_STEPS[0]) -> None:
        self.path, self.sheet = path, sheet
        self.columns = max(widest, 26)  # single-letter columns always fit: 26 x 1,048,576 < MAX_CELLS
        self.rows = rows
        self.widest = widest  # the widest column and deepest row actually seen past the bounds
        self.deepest = 0
        self.pattern = self._compile()

    def _compile(self) -> re.Pattern[bytes]:
        rows = _at_least(self.rows)
        if self.columns == 26:  # the common case, as cheap as a pattern can be
            text = rf"r\s*=\s*[\"'][A-Za-z](?:[A-Za-z]|(?:{rows}))"
        else:
            text = rf"r\s*=\s*[\"'](?:{_over_letters(self.columns)}|[A-Za-z]{{1,3}}(?:{rows}))"
        return re.compile(text.encode())

    def feed(self, data: bytes, start: int, end: int) -> None:
        search = self.pattern.search
        pos = start
        while (hit := search(data, pos, end)) is not None:
            pos = hit.end()
            ref = _REF.match(data, hit.start())
            if ref is None or not ref.group(2):
                continue  # an attribute that merely ends in r (operator="between"), not a cell
            row, col = int(ref.group(2)), column_number(ref.group(1))
            if row > EXCEL_MAX_ROWS or col > EXCEL_MAX_COLUMNS:
                raise refuse(self.path, f"its sheet {self.sheet!r} has a cell at {ref.group(1).decode()}"
                                        f"{ref.group(2).decode()}, beyond Excel's last cell, XFD1048576")
            self.widest, self.deepest = max(self.widest, col), max(self.deepest, row)
            if self.deepest * max(self.widest, 1) > MAX_CELLS:
                raise refuse(self.path, f"its sheet {self.sheet!r} reaches {column_letters(self.widest)}"
                                        f"{self.deepest}, a grid of {many(self.deepest * self.widest)} cells "
                                        f"(the limit is {many(MAX_CELLS)})")
            steps = _COARSE_STEPS if max(self.columns, col) == 26 else _FINE_STEPS
            self.rows = max(self.rows, next(step for step in steps if step > row))
            self.columns = max(self.columns, col)
            self.pattern = self._compile()
            search = self.pattern.search

    def settled(self) -> bool:
        """Whether the bounds prove the grid small enough (else an exact second pass decides)."""
        return (self.rows - 1) * self.columns <= MAX_CELLS


class _Unreferenced:
    """Whether any cell is written without an ``r`` attribute (no spreadsheet program does).

    calamine places such a cell by counting: the row after the last row closed, the column
    after the last cell. A run of them can widen the grid without any reference saying so.
    """

    def __init__(self) -> None:
        self.found = False

    def feed(self, data: bytes, start: int, end: int) -> None:
        if not self.found and _UNREFERENCED_CELL.search(data, start, end):
            self.found = True


def _place_like_calamine(path: Path, fh: BinaryIO, zf: zipfile.ZipFile, info: zipfile.ZipInfo, sheet: str) -> None:
    """Refuse the sheet if its cells, placed exactly as calamine places them, span too big a grid.

    Only run when some cell has no ``r``: it steps through every row and cell tag in Python.
    """
    row = col = deepest = widest = 0  # 0-based, as calamine counts

    def feed(data: bytes, start: int, end: int) -> None:
        nonlocal row, col, deepest, widest
        for tag in _ROW_OR_CELL.finditer(data, start, end):
            closing, name, attrs = tag.groups()
            if closing:
                if name == b"row":
                    row, col = row + 1, 0
                continue
            if attrs.endswith(b"/"):
                continue  # an empty element: calamine skips it without counting
            ref = _REF_ATTR.search(attrs)
            if name == b"row":
                if ref is not None and ref.group(2):
                    row = int(ref.group(2)) - 1
                continue
            at_row = row
            if ref is not None and ref.group(2):
                at_row, col = int(ref.group(2)) - 1, column_number(ref.group(1)) - 1
            deepest, widest = max(deepest, at_row), max(widest, col)
            col += 1
            if (deepest + 1) * (widest + 1) > MAX_CELLS or deepest >= EXCEL_MAX_ROWS or widest >= EXCEL_MAX_COLUMNS:
                raise refuse(path, f"its sheet {sheet!r} places cells written without a reference out to "
                                   f"{column_letters(widest + 1)}{deepest + 1} and more, a grid of "
                                   f"{many((deepest + 1) * (widest + 1))} cells (the limit is {many(MAX_CELLS)})")

    _scan(path, fh, zf, info, sheet, (feed,), first=False)


_UNREFERENCED_CELL = re.compile(rb"<(?:[\w.-]+:)?c(?=[\s>])(?![^>]*\sr\s*=)[^>]*(?<!/)>")
_ROW_OR_CELL = re.compile(rb"<(/?)(?:[\w.-]+:)?(row|c)(?=[\s>/])([^>]*)>")
_REF_ATTR = re.compile(rb"(?:^|\s)r\s*=\s*[\"']([A-Za-z]*)(\d*)[\"']")


class _Hidden:
    """Excel row numbers of rows marked ``hidden="1"`` (by hand, by grouping or by a filter).

    A chunk without the word "hidden" costs one substring test. Rows written without an
    ``r`` attribute (Excel always writes it) are numbered afterwards the way calamine
    numbers them.
    """

    def __init__(self) -> None:
        self.rows: set[int] = set()
        self.unnumbered = False

    def feed(self, data: bytes, start: int, end: int) -> None:
        if data.find(b"hidden", start, end) < 0:
            return
        for hit in _HIDDEN.finditer(data, start, end):
            lt = data.rfind(b"<", 0, hit.start())
            if lt < 0 or not _ROW_TAG.match(data, lt):
                continue  # a hidden column (<col hidden="1">), not a row
            gt = data.find(b">", hit.end(), end)
            number = _ROW_NUMBER.search(data, lt, gt if gt >= 0 else end)
            if number is None:
                self.unnumbered = True
            else:
                self.rows.add(int(number.group(1)))


_HIDDEN = re.compile(rb"hidden\s*=\s*[\"'](?:1|true)[\"']")
_ROW_TAG = re.compile(rb"<(?:[\w.-]+:)?row\b")
_ROW_NUMBER = re.compile(rb"\sr\s*=\s*[\"']0*(\d+)[\"']")
_ANY_ROW = re.compile(rb"<(?:[\w.-]+:)?row\b[^>]*>|</(?:[\w.-]+:)?row\s*>")


def scan_sheet(book: Workbook, sheet: str) -> None:
    """Refuse the worksheet if its declared or actual extent is a grid over ``MAX_CELLS``.

    Every sheet's ``<dimension ref=...>`` is checked (the first kilobytes of the part).
    calamine ignores that declaration and sizes its grid by the cells themselves, so a
    forged file can declare A1:B2 and hold a cell at XFD1048576; parts up to
    ``FULL_SCAN_MAX_BYTES`` are therefore read through, every cell reference checked, and
    text runs and tags bounded. That costs about 2.3 ns a byte (zlib, then one regex
    pass), which on a 200,000-row sheet (60 MB of XML) would add 14% to the load; bigger
    parts are held to the ratio limit and their declared dimension instead.
    """
    part = book.sheet_parts.get(sheet)
    if part is None:
        return  # not an .xlsx/.xlsm worksheet: calamine reports it if it is broken
    path = book.path
    with open(path, "rb") as fh, zipfile.ZipFile(fh) as zf:
        try:
            info = zf.getinfo(part)
        except KeyError:
            return
        if info.file_size > FULL_SCAN_MAX_BYTES:
            for chunk in inflate(path, fh, zf, info):
                _check_dimension(path, sheet, chunk[:65536])
                return
            return
        extent, unreferenced = _Extent(path, sheet), _Unreferenced()
        _scan(path, fh, zf, info, sheet, (extent.feed, unreferenced.feed), first=True)
        if not extent.settled():
            exact = _Extent(path, sheet, widest=extent.widest, rows=MAX_CELLS // extent.widest + 1)
            _scan(path, fh, zf, info, sheet, (exact.feed,), first=False)
        if unreferenced.found:
            _place_like_calamine(path, fh, zf, info, sheet)


def hidden_rows(book: Workbook, sheet: str) -> set[int]:
    """Excel row numbers of the rows hidden in the worksheet (``<row hidden="1">``).

    A streaming pass of its own (about 100 ms for 60 MB of sheet XML), meant to run in a
    thread while calamine, which lets go of the GIL, parses the same sheet: with a core to
    spare it costs the load nothing. It bounds text runs and tags as it goes.
    """
    part = book.sheet_parts.get(sheet)
    if part is None:
        return set()
    path = book.path
    with open(path, "rb") as fh, zipfile.ZipFile(fh) as zf:
        try:
            info = zf.getinfo(part)
        except KeyError:
            return set()
        rows = _Hidden()
        _scan(path, fh, zf, info, sheet, (rows.feed,), first=False)
        if rows.unnumbered:
            return _number_rows_like_calamine(path, fh, zf, info, sheet)
        return rows.rows


def _scan(path: Path, fh: BinaryIO, zf: zipfile.ZipFile, info: zipfile.ZipInfo, sheet: str,
          feeds: tuple[Feed, ...], *, first: bool) -> None:
    """Hand the part to ``feeds`` as (bytes, start, end) spans that never split a tag.

    A chunk ends wherever zlib stopped. The tag left open at its end is carried over and
    handed on joined with the head of the next chunk; the rest of each chunk is handed on
    in place (no copy). Text runs and tags longer than any real sheet holds are refused.
    """
    carry = b""
    text_run = 0  # bytes since the last '<'
    for chunk in inflate(path, fh, zf, info):
        if first:
            _check_dimension(path, sheet, chunk[:65536])
            first = False
        lt = chunk.find(b"<")
        text_run += len(chunk) if lt < 0 else lt
        if text_run > MAX_TEXT_BYTES:
            raise refuse(path, f"its sheet {sheet!r} holds a cell of more than {many(MAX_TEXT_BYTES)} bytes of text "
                               "(Excel's limit is 32,767 characters)")
        if lt >= 0:
            text_run = len(chunk) - chunk.rfind(b"<") - 1
        start = 0
        if carry:  # the tag left open ends at this chunk's first '>'
            close = chunk.find(b">")
            if close < 0:
                carry += chunk
                if len(carry) > MAX_TAG_BYTES:
                    raise refuse(path, f"its sheet {sheet!r} holds a tag of more than {many(MAX_TAG_BYTES)} bytes")
                continue
            start = close + 1
            head = carry + chunk[:start]
            for feed in feeds:
                feed(head, 0, len(head))
            carry = b""
        end = len(chunk)
        cut = chunk.rfind(b"<", start)
        if cut >= 0 and chunk.find(b">", cut) < 0:  # a tag still open at the end
            carry, end = chunk[cut:], cut
            if len(carry) > MAX_TAG_BYTES:
                raise refuse(path, f"its sheet {sheet!r} holds a tag of more than {many(MAX_TAG_BYTES)} bytes")
        for feed in feeds:
            feed(chunk, start, end)
    if carry:
        for feed in feeds:
            feed(carry, 0, len(carry))


def _check_dimension(path: Path, sheet: str, head: bytes) -> None:
    """Refuse a sheet whose ``<dimension ref=...>`` claims a grid over the limit."""
    found = _DIMENSION.search(head)
    if found is None:
        return
    ref = found.group(1).decode("ascii", "replace")
    corners = [_CELL_REF.fullmatch(p) for p in ref.split(":")]
    if not corners or any(c is None for c in corners):
        return
    cols = [column_number(c.group(1)) for c in corners if c]
    rows = [int(c.group(2)) for c in corners if c]
    cells = max(rows) * max(cols)  # calamine hands the grid over from A1
    if cells > MAX_CELLS or max(rows) > EXCEL_MAX_ROWS or max(cols) > EXCEL_MAX_COLUMNS:
        raise refuse(path, f"its sheet {sheet!r} claims {many(cells)} cells ({ref})")


def _number_rows_like_calamine(path: Path, fh: BinaryIO, zf: zipfile.ZipFile, info: zipfile.ZipInfo,
                               sheet: str) -> set[int]:
    """Hidden rows when some rows carry no ``r``: such a row follows the previous one."""
    found: set[int] = set()
    row = 1

    def feed(data: bytes, start: int, end: int) -> None:
        nonlocal row
        for tag in _ANY_ROW.finditer(data, start, end):
            text = tag.group(0)
            if text.startswith(b"</"):
                row += 1
                continue
            number = _ROW_NUMBER.search(text)
            if number is not None:
                row = int(number.group(1))
            if _HIDDEN.search(text):
                found.add(row)

    _scan(path, fh, zf, info, sheet, (feed,), first=False)
    return found


# --------------------------------------------------------------------------- what calamine does not tell


def number_formats(book: Workbook) -> tuple[dict[int, str], list[int]]:
    """The workbook's own number formats (numFmtId -> format code) and each cell style's numFmtId, in order.

    A cell's ``s`` attribute is an index into the styles' ``cellXfs``; each names a
    ``numFmtId``, either one of the workbook's ``<numFmt>`` codes or a built-in one. Empty
    for workbooks that are not .xlsx/.xlsm or whose styles do not parse (their cells keep
    the General reading).
    """
    if not book.sheet_parts:
        return {}, []
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        with zipfile.ZipFile(book.path) as zf:
            if _STYLES not in zf.namelist():
                return {}, []
            root = ElementTree.fromstring(zf.read(_STYLES))  # at most MAX_SMALL_PART_BYTES (check_workbook)
    except (ElementTree.ParseError, DefusedXmlException, zipfile.BadZipFile, OSError, zlib.error):
        return {}, []  # styles calamine may still read: the cells keep the General reading, as before
    codes: dict[int, str] = {}
    styles: list[int] = []
    for element in root:
        name = element.tag.rpartition("}")[2]
        if name == "numFmts":
            for fmt in element:
                fmt_id = _number(fmt.get("numFmtId"))
                if fmt_id is not None and fmt.get("formatCode") is not None:
                    codes[fmt_id] = fmt.get("formatCode", "")
        elif name == "cellXfs":
            styles = [_number(xf.get("numFmtId")) or 0 for xf in element if xf.tag.rpartition("}")[2] == "xf"]
    return codes, styles


def _number(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


@dataclass
class CellError:
    """A cell that shows an Excel error, or holds a formula with no saved value (calamine reads both as '')."""

    row: int  # Excel's row number
    column: int  # 1 = A
    error: str  # "#N/A", "#REF!", ...; "" for a formula Excel has not calculated
    formula: str = ""  # the formula's text without "=", when the file holds it


@dataclass
class SheetFacts:
    """What one pass over a worksheet's XML learnt besides what calamine reads."""

    hidden_rows: set[int] = field(default_factory=set)
    styled: list[tuple[int, int, int]] = field(default_factory=list)  # (row, column, style) in the styles asked
    errors: list[CellError] = field(default_factory=list)
    unplaced_errors: int = 0  # error cells written without a reference (no spreadsheet program writes them)


def sheet_facts(book: Workbook, sheet: str, styles: Collection[int] = (), *, hidden: bool = True,
                errors: bool = True) -> SheetFacts:
    """Hidden rows, error cells and the cells in ``styles``, in one streaming pass over the sheet's XML.

    Meant to run in a thread while calamine (which lets go of the GIL) parses the same
    sheet. For a sheet of plain numbers and text each chunk costs a few substring searches
    (``hidden``; ``#`` and ``f``, one byte each, so ``memchr``); a chunk is looked at more
    closely only where one of them is found. The cells in ``styles`` are looked for only
    when ``styles`` is not empty. Cells are found by their ``r`` reference and attributes
    written as every spreadsheet program writes them (``s="3"``, ``t="e"``).
    """
    part = book.sheet_parts.get(sheet)
    if part is None or not (hidden or errors or styles):
        return SheetFacts()
    path = book.path
    with open(path, "rb") as fh, zipfile.ZipFile(fh) as zf:
        try:
            info = zf.getinfo(part)
        except KeyError:
            return SheetFacts()
        rows = _Hidden() if hidden else None
        cells = _Cells(styles, errors) if errors or styles else None
        feeds = tuple(f.feed for f in (rows, cells) if f is not None)
        _scan(path, fh, zf, info, sheet, feeds, first=False)
        hidden_set = set()
        if rows is not None:
            hidden_set = _number_rows_like_calamine(path, fh, zf, info, sheet) if rows.unnumbered else rows.rows
    if cells is None:
        return SheetFacts(hidden_set)
    return SheetFacts(hidden_set, cells.styled, sorted(cells.errors.values(), key=lambda e: (e.row, e.column)),
                      cells.unplaced)


_SHEET_DATA = re.compile(rb"<([\w.-]+:)?sheetData[\s>/]")
_T_ATTR = re.compile(rb"\st\s*=\s*[\"']([^\"']*)[\"']")
_TAG_SPACE = (b" ", b"\t", b"\r", b"\n", b">")
MAX_PENDING_BYTES = 4 * MAX_TEXT_BYTES  # more than any cell (its text runs are at most MAX_TEXT_BYTES each)


class _Cells:
    """Error cells, formulas with no saved value, and cells in chosen styles, as ``_scan`` hands the XML over.

    Spans are cut into regions of whole cells (from after one ``</c>`` to the end of the last
    ``</c>``; the unfinished cell at a span's end is kept and joined to the head of the next
    span), so a cell is always seen whole. A region is searched for ``#`` (an error value
    starts ``<v>#``) and ``<f`` (a formula) at C speed, and only the places found are read.
    """

    def __init__(self, styles: Collection[int], errors: bool) -> None:
        self.want_errors = errors
        self.style_ids = sorted(set(styles))
        self.prefix: bytes | None = None  # the cells' namespace prefix (b"" or b"x:"), once sheetData is seen
        self.pending = b""
        self.errors: dict[tuple[int, int], CellError] = {}
        self.unplaced = 0
        self.styled: list[tuple[int, int, int]] = []

    def _start(self, prefix: bytes) -> None:
        self.prefix = prefix
        p = re.escape(prefix)
        self.open, self.close, self.formula = b"<" + prefix + b"c", b"</" + prefix + b"c>", b"<" + prefix + b"f"
        self.value_open = b"<" + prefix + b"v>"
        has_value = rb"(?!\s*<" + p + rb"v>[^<])"  # a formula followed by a non-empty saved value
        self.uncalculated = (re.compile(rb"</" + p + rb"f>" + has_value),
                             re.compile(rb"<" + p + rb"f\b[^>]*/>" + has_value))
        self.value = re.compile(rb"<" + p + rb"v(?:\s[^>]*)?(?:/>|>(.*?)</" + p + rb"v>)", re.S)
        self.formula_text = re.compile(rb"<" + p + rb"f(?:\s[^>]*)?>(.*?)</" + p + rb"f>", re.S)
        self.styles: tuple[re.Pattern[bytes], ...] = ()
        if self.style_ids:
            # r and s as every spreadsheet program writes them; a cell written otherwise keeps General.
            ids = b"(" + b"|".join(str(i).encode() for i in self.style_ids) + b")"
            ref = rb'r="([A-Za-z]{1,3})(\d{1,7})"'
            self.styles = (re.compile(rb"<" + p + rb"c " + ref + rb" s=\"" + ids + rb"\"[\s/>]"),
                           re.compile(rb"<" + p + rb"c s=\"" + ids + rb"\" " + ref + rb"[\s/>]"))
        self.columns: dict[bytes, int] = {}

    def feed(self, data: bytes, start: int, end: int) -> None:
        if self.prefix is None:
            found = _SHEET_DATA.search(data, start, end)
            if found is None:
                return  # no cell comes before sheetData
            self._start(found.group(1) or b"")
            start = found.end()
        last = data.rfind(self.close, start, end)
        if last < 0:
            self._hold(data, start, end)
            return
        cut = last + len(self.close)
        if self.pending:
            first = data.find(self.close, start, cut) + len(self.close)
            head, self.pending = self.pending + data[start:first], b""
            self._region(head, 0, len(head))
            start = first
        if start < cut:
            self._region(data, start, cut)
        self._hold(data, cut, end)

    def _hold(self, data: bytes, start: int, end: int) -> None:
        """Keep the cell left open at the end of a span for the next one."""
        if self.pending:
            self.pending += data[start:end]
        else:
            at = self._open_before(data, start, end)
            gt = data.find(b">", at, end) if at >= 0 else -1
            if at >= 0 and (gt < 0 or data[gt - 1:gt] != b"/"):  # a cell still open, not <c .../>
                self.pending = data[at:end]
        if len(self.pending) > MAX_PENDING_BYTES:
            self.pending = b""  # no cell is this long: nothing here to read

    def _open_before(self, data: bytes, start: int, pos: int) -> int:
        """Where the last cell tag (``<c ...>``, not ``<col``/``<color``) before ``pos`` starts, or -1."""
        size = len(self.open)
        while (pos := data.rfind(self.open, start, pos)) >= 0:
            if data[pos + size:pos + size + 1] in _TAG_SPACE:
                return pos
        return -1

    def _region(self, data: bytes, start: int, end: int) -> None:
        if self.want_errors:
            pos = data.find(b"#", start, end)
            while pos >= 0:
                if data.startswith(self.value_open, pos - len(self.value_open)):
                    self._error_at(data, start, end, pos)
                pos = data.find(b"#", pos + 1, end)
            # A one-byte search (memchr) first: most chunks of a sheet without formulas hold no f at all.
            first_f = data.find(b"f", start, end)
            if first_f >= 0 and data.find(self.formula, max(start, first_f - len(self.formula)), end) >= 0:
                for pattern in self.uncalculated:
                    for hit in pattern.finditer(data, start, end):
                        self._formula_at(data, start, end, hit.start())
        if self.styles:  # one C-speed findall a region; about 0.5 us a styled cell in all
            columns = self.columns
            r_first, s_first = self.styles
            found = r_first.findall(data, start, end)
            for letters in {hit[0] for hit in found} - columns.keys():
                columns[letters] = column_number(letters)
            self.styled += [(int(row), columns[letters], int(style)) for letters, row, style in found]
            for style, letters, row in s_first.findall(data, start, end):  # no hit from the programs we know
                self.styled.append((int(row), column_number(letters), int(style)))

    def _cell(self, data: bytes, start: int, end: int, pos: int) -> tuple[bytes, bytes] | None:
        """The open tag and the content of the cell around ``pos``."""
        at = self._open_before(data, start, pos)
        if at < 0:
            return None
        tag_end = data.find(b">", at, end) + 1
        close = data.find(self.close, pos, end)
        return data[at:tag_end], data[tag_end:close if close >= 0 else end]

    def _place(self, tag: bytes) -> tuple[int, int] | None:
        ref = _REF_ATTR.search(tag)
        if ref is None or not ref.group(2) or not ref.group(1):
            self.unplaced += 1
            return None
        return int(ref.group(2)), column_number(ref.group(1))

    def _error_at(self, data: bytes, start: int, end: int, pos: int) -> None:
        cell = self._cell(data, start, end, pos)
        if cell is None:
            return
        kind = _T_ATTR.search(cell[0])
        if kind is None or kind.group(1) != b"e":
            return  # text that starts with # in a cell that is not an error
        place = self._place(cell[0])
        if place is not None:
            stop = data.find(b"<", pos, end)
            error = data[pos:stop if stop >= 0 else end].decode("utf-8", "replace").strip()[:32]
            self.errors[place] = CellError(*place, error, self._formula(cell[1]))

    def _formula_at(self, data: bytes, start: int, end: int, pos: int) -> None:
        cell = self._cell(data, start, end, pos)
        if cell is None:
            return
        tag, body = cell
        kind = _T_ATTR.search(tag)
        kind_name = kind.group(1) if kind is not None else b"n"
        if kind_name == b"inlineStr":
            return  # its value is its inline text
        value = self.value.search(body)
        if value is not None and (value.group(1) or kind_name == b"str"):
            return  # a saved value (an empty text is a formula's answer too: =IF(A1="","",A1))
        place = self._place(tag)
        if place is not None and place not in self.errors:
            self.errors[place] = CellError(*place, "", self._formula(body))

    def _formula(self, body: bytes) -> str:
        found = self.formula_text.search(body)
        if found is None:
            return ""
        return html.unescape(found.group(1).decode("utf-8", "replace"))

