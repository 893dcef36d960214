"""The opt-out list: every number in a CSV, TXT or workbook file that must never be texted.

It sits next to the sheet reader and reads files the same way (the same encodings,
delimiters and workbook suffixes), so an ``.xlsb`` list is read as a workbook, not as
CSV garbage that silently suppresses nobody.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .phones import PhoneBook
from .sheet import WORKBOOK_SUFFIXES, read_csv_records, read_workbook_records


def load_optouts(path: str | Path, country: str) -> frozenset[str]:
    """Every cell of the file that is a valid phone number, in E.164 (other cells are ignored)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"--suppress {path}: no such file")
    if path.suffix.lower() in WORKBOOK_SUFFIXES:
        records, _ = read_workbook_records(path, None)
    else:
        records, _, _ = read_csv_records(path, None, None)
    book = PhoneBook(country)
    numbers = set()
    for record in records:
        for cell in record:
            if cell.strip():
                phone = book.normalise(cell)
                if phone.valid:
                    numbers.add(phone.e164)
    return frozenset(numbers)
