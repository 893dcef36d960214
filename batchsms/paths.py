"""Where the tool writes: never over the user's input, and only where it can write.

Every file batchsms writes (report, results, journal, preview) goes through
:func:`check_output` before the check starts, so a wrong ``--results`` path is one
clear line at once, not a replaced workbook, nor an error after a long check.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from .errors import ConfigError


def same_file(a: Path, b: Path) -> bool:
    """True when both paths name one file (also through links, case-folding file systems, ``..``)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(os.path.abspath(a)) == Path(os.path.abspath(b))


def check_output(path: Path, what: str, inputs: Iterable[tuple[str, Path | None]]) -> Path:
    """Refuse an output ``path`` that is one of the ``inputs`` or cannot be written; returns it.

    ``what`` names the output as the user set it (``--results``); ``inputs`` pairs a
    description (``the contact sheet``) with each file the run reads.
    """
    path = Path(path)
    for name, source in inputs:
        if source is not None and same_file(path, source):
            raise ConfigError(f"{what} {path}: is {name}; batchsms never writes over its input, choose another path")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise ConfigError(f"{what} {path}: the folder {folder} does not exist; create it or choose another path")
    if not folder.is_dir():
        raise ConfigError(f"{what} {path}: {folder} is not a folder")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{what} {path}: exists and is not a regular file; choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: the folder {folder} is read-only for you; choose another path")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{what} {path}: the file is read-only; choose another path")
    return path


def input_mode(path: Path) -> int | None:
    """The permission bits of an input file, for outputs written beside it (None if unknown)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
