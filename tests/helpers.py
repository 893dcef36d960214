"""Make real contact sheets for the tests: CSV in any encoding and delimiter, .xlsx via openpyxl."""

from __future__ import annotations

import csv
import io
import re
import shutil
import zipfile
from pathlib import Path

import openpyxl


def write_csv(path: Path, rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",") -> Path:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, rows: list[list[object]], *, title: str = "Sheet1", extra_sheets=(),
               formulas: bool = True) -> Path:
    """A workbook; with ``formulas=False`` a cell text starting with = is stored as text, not a formula."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
        if not formulas:
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"
    for name in extra_sheets:
        wb.create_sheet(name)
    wb.save(path)
    return path


def add_cached_formula_values(path: Path, values: dict[str, str]) -> None:
    """openpyxl writes formulas without results; put in the cached values Excel would have saved."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                for ref, value in values.items():
                    text = re.sub(rf'(<c r="{ref}"[^>]*>)<f>(.*?)</f><v\s*/>', rf"\1<f>\2</f><v>{value}</v>", text)
                data = text.encode()
            dst.writestr(item, data)
    shutil.move(tmp, path)
