"""Write a table of text (header + rows) as CSV or .xlsx, with every cell inert.

The .xlsx writer streams the sheet XML itself: every cell is an inline string, so
no value can become a formula (openpyxl turns any string starting with ``=``
into one), a phone number keeps its ``+`` and leading zero, and 200k rows are
written in a few seconds rather than the ~20 s openpyxl needs.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from .cells import csv_safe

# Characters XML 1.0 cannot hold at all (control characters other than tab, LF, CR).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>
</Types>"""
_ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
_WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets>
</workbook>"""
_WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>
</Relationships>"""
_STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts>
<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>"""
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<sheetViews><sheetView workbookViewId="0"><pane ySplit="{split}" topLeftCell="A{below}" state="frozen" '
    'activePane="bottomLeft"/></sheetView></sheetViews><sheetData>'
)
_SHEET_TAIL = "</sheetData></worksheet>"


def _umask() -> int:
    """The process's umask (read by setting it, then putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _xml_text(value: str) -> str:
    value = _XML_ILLEGAL.sub("", value)
    return escape(value)


def _xlsx_row(cells: Sequence[str], style: str = "") -> str:
    parts = ["<row>"]
    for value in cells:
        if value:
            space = ' xml:space="preserve"' if value != value.strip() or "\n" in value else ""
            parts.append(f'<c t="inlineStr"{style}><is><t{space}>{_xml_text(value)}</t></is></c>')
        else:
            parts.append("<c/>")
    parts.append("</row>")
    return "".join(parts)


def write_xlsx(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]], sheet: str = "Sheet1",
               preamble: Sequence[Sequence[str]] = ()) -> None:
    """A workbook of one sheet, every cell an inline string (so never a formula), the header frozen."""
    name = _xml_text(re.sub(r"[\[\]:*?/\\]", "_", sheet)[:31] or "Sheet1").replace('"', "&quot;")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _ROOT_RELS)
        zf.writestr("xl/workbook.xml", _WORKBOOK.format(name=name))
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        zf.writestr("xl/styles.xml", _STYLES)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
            split = len(preamble) + 1
            buffer = [_SHEET_HEAD.format(split=split, below=split + 1)]
            buffer += [_xlsx_row(row) for row in preamble]
            buffer.append(_xlsx_row(header, ' s="1"'))
            for row in rows:
                buffer.append(_xlsx_row(row))
                if len(buffer) >= 2000:
                    out.write("".join(buffer).encode("utf-8"))
                    buffer.clear()
            buffer.append(_SHEET_TAIL)
            out.write("".join(buffer).encode("utf-8"))


def _inert_rows(rows: Iterable[Sequence[str]], quoted: Any, already_safe: bool) -> Iterator[Sequence[str]]:
    """``rows`` with every cell inert (see :mod:`cells`); a row holding a cell made inert is written
    here and now by ``quoted`` (every field in quotes) instead of being yielded.

    ``csv.writer.writerows`` writes each row as it takes it from this generator, so
    the rows written here land in their place in the file. Quoting keeps a
    neutralised cell one field for a spreadsheet that splits at its delimiter.
    """
    for row in rows:
        if already_safe:  # the caller ran csv_safe: a changed cell starts with '
            joined = "\x00".join(row)
            if joined.startswith("'") or "\x00'" in joined:
                quoted.writerow(row)
                continue
            yield row
            continue
        cells = [csv_safe(c) for c in row]
        # csv_safe returns an unchanged value as the same object: comparing is one C loop of identity checks.
        if cells != (row if type(row) is list else list(row)):
            quoted.writerow(cells)
            continue
        yield cells


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]], delimiter: str = ",",
              safe: bool = False, preamble: Sequence[Sequence[str]] = ()) -> None:
    """UTF-8 with a BOM (so Excel reads the accents right), formula-like cells made inert and quoted.

    ``safe=True`` says the caller already made every cell inert (see :func:`cells.csv_safe`).
    """
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        quoted = csv.writer(fh, delimiter=delimiter, quoting=csv.QUOTE_ALL)
        writer.writerows(_inert_rows(preamble, quoted, False))
        writer.writerows(_inert_rows([header], quoted, False))
        writer.writerows(_inert_rows(rows, quoted, safe))


def write_table(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[str]], *,
                delimiter: str = ",", sheet: str = "Sheet1", csv_rows: Iterable[Sequence[str]] | None = None,
                preamble: Sequence[Sequence[str]] = (), mode: int | None = None) -> None:
    """Write atomically (temp file + rename), so an interrupted write never leaves half a file.

    The file gets ``mode`` (the input sheet's permissions, so a shared folder stays
    shared), or the usual permissions for a new file, never the temp file's 0600.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    os.fchmod(fd, mode if mode is not None else 0o666 & ~_umask())
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            write_xlsx(tmp, header, rows, sheet, preamble)
        elif csv_rows is not None:  # rows the caller already made inert for CSV
            write_csv(tmp, header, csv_rows, delimiter, safe=True, preamble=preamble)
        else:
            write_csv(tmp, header, rows, delimiter, preamble=preamble)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
