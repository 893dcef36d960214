"""Read a contact sheet (CSV in any encoding Excel writes, or a workbook) into text cells.

Every cell becomes the text the user sees in Excel: a phone number stored as the
number 61412345678 reads ``61412345678``, never ``61412345678.0`` or ``6.14e+10``.
Rows keep the number Excel shows beside them, so a report can say "row 17".
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SheetError
from .fields import FIELDS, TO, canonical_field, field_for_header, header_key
from .perf import gc_paused

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
WORKBOOK_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
DELIMITERS = (",", ";", "\t", "|")

ENCODING_HINT = "save it as 'CSV UTF-8' from Excel, or name the encoding with --encoding"


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
    columns: dict[str, int] = field(default_factory=dict)  # API field -> column index
    preamble: list[list[str]] = field(default_factory=list)  # rows above the header, as they are
    raw_header: list[str] = field(default_factory=list)  # the header row as it is in the file

    def __len__(self) -> int:
        return len(self.rows)

    def column_of(self, api_field: str) -> str | None:
        """The header of the column that feeds ``api_field``, if one does."""
        index = self.columns.get(api_field)
        return None if index is None else self.header[index]


# --------------------------------------------------------------------------- CSV


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


def read_csv_records(path: Path, encoding: str | None, delimiter: str | None):
    """All records of a CSV file as lists of str, with the encoding and delimiter used."""
    data = path.read_bytes()
    enc = encoding or detect_encoding(data)
    try:
        text = data.decode(enc)
    except (UnicodeDecodeError, LookupError) as exc:
        if encoding:
            raise SheetError(f"{path}: cannot decode as {encoding}: {exc}; {ENCODING_HINT}") from exc
        enc = "latin-1"  # cp1252 leaves 5 bytes undefined; latin-1 reads anything
        text = data.decode(enc)
    text = text.lstrip("\ufeff")
    delim = delimiter or detect_delimiter(text)
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delim))
    except csv.Error as exc:
        raise SheetError(f"{path}: not a readable CSV file: {exc}") from exc
    return records, enc, delim


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


def read_workbook_records(path: Path, sheet: str | None) -> tuple[list[list[str]], str]:
    """All rows of one worksheet (the first, or ``sheet``) as text, from row 1 on."""
    import python_calamine

    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises several unrelated types for broken files
        raise SheetError(f"{path}: not a readable workbook ({exc})") from exc
    names = workbook.sheet_names
    if sheet is None:
        if not names:
            raise SheetError(f"{path}: the workbook has no sheets")
        sheet = names[0]
    elif sheet not in names:
        listed = ", ".join(repr(n) for n in names)
        raise SheetError(f"{path}: no sheet named {sheet!r}; the sheets are {listed} (use --sheet)")
    try:
        values = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    except Exception as exc:
        raise SheetError(f"{path}: sheet {sheet!r} cannot be read ({exc})") from exc
    return [[cell_text(v) for v in row] for row in values], sheet


# --------------------------------------------------------------------------- the sheet


def load(
    path: str | Path,
    *,
    sheet: str | None = None,
    header_row: int = 1,
    encoding: str | None = None,
    delimiter: str | None = None,
    columns: Sequence[tuple[str, str]] = (),
) -> Sheet:
    """Load ``path`` and map its headers to API fields.

    ``columns`` holds explicit ``(field, header)`` mappings that win over header names.
    """
    with gc_paused():
        return _load(Path(path), sheet, header_row, encoding, delimiter, columns)


def _load(path: Path, sheet: str | None, header_row: int, encoding: str | None, delimiter: str | None,
          columns: Sequence[tuple[str, str]]) -> Sheet:
    if not path.exists():
        raise SheetError(f"{path}: no such file")
    if path.is_dir():
        raise SheetError(f"{path}: is a folder, not a contact sheet")
    if header_row < 1:
        raise SheetError(f"--header-row must be 1 or more, not {header_row}")
    suffix = path.suffix.lower()
    enc = delim = sheet_name = None
    if suffix in WORKBOOK_SUFFIXES:
        records, sheet_name = read_workbook_records(path, sheet)
        kind = "xlsx"
    else:
        if sheet is not None:
            raise SheetError(f"{path}: --sheet applies to workbooks, and this is a CSV file")
        try:
            records, enc, delim = read_csv_records(path, encoding, delimiter)
        except OSError as exc:
            raise SheetError(f"{path}: cannot be read ({exc.strerror})") from exc
        kind = "csv"
    if len(records) < header_row:
        raise SheetError(f"{path}: has no row {header_row} to use as the header (it has {len(records)} rows)")
    header = [h.strip() for h in records[header_row - 1]]
    while header and not header[-1]:
        header.pop()
    if not header:
        raise SheetError(f"{path}:{header_row}: the header row is empty; use --header-row N")
    width = len(header)
    rows: list[list[str]] = []
    numbers: list[int] = []
    for number, record in enumerate(records[header_row:], start=header_row + 1):
        first = record[0] if record else ""
        if (not first or first.isspace()) and not "".join(record).strip():  # a fully empty row
            continue
        if len(record) < width:
            record = record + [""] * (width - len(record))
        rows.append(record)
        numbers.append(number)
    result = Sheet(path, header, rows, numbers, kind, enc, delim, sheet_name, header_row,
                   preamble=records[:header_row - 1], raw_header=list(records[header_row - 1]))
    result.columns = map_columns(result, columns)
    return result


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
                f"its columns are {', '.join(repr(h) for h in sheet.header)}"
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
                names = ", ".join(repr(sheet.header[i]) for i in indexes)
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
            f"or use --column To=HEADER (columns: {', '.join(repr(h) for h in sheet.header)})"
        )
    return mapping


def find_header(sheet: Sheet, header: str) -> int | None:
    """The index of ``header``: exact match first, then ignoring case and surrounding spaces."""
    if header in sheet.header:
        return sheet.header.index(header)
    folded = header.strip().casefold()
    for index, h in enumerate(sheet.header):
        if h.casefold() == folded:
            return index
    return None
