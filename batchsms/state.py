"""The state folder: what outlives one run — the registry of journals, and the locks of runners.

``batchsms due`` runs from cron every few minutes and must find every message held for
later, whichever folder its sheet was sent from; so each journal that holds messages for
later is registered here, and ``due`` walks the registry. Two runners at once would each
submit the same held message, so each takes an exclusive lock (:func:`run_lock`) first.

The folder is ``$BATCHSMS_STATE``, else the platform's user data folder (platformdirs:
``~/.local/share/batchsms`` on Linux, ``~/Library/Application Support/batchsms`` on macOS,
``%LOCALAPPDATA%\\batchsms`` on Windows), created readable by its owner alone (0700): the
registry names the user's files.

The registry is a small SQLite file, because SQLite already makes two processes
registering at once safe (each write is one short transaction, and a busy file is waited
for); a JSON-lines file would need a lock and a rewrite of its own to forget a journal.

Locks are ``fcntl.flock`` on a file in the folder, as :class:`batchsms.journal.Journal`
locks its journal: the operating system drops the lock when the process ends, however it
ends, so a crash never leaves a stale lock behind. (Windows has no ``fcntl``; a port would
use ``msvcrt.locking`` on the same file, as the journal would.)
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path

from .errors import BatchSmsError, ConfigError

STATE_VARIABLE = "BATCHSMS_STATE"
REGISTRY_NAME = "journals.sqlite"
#: How long a registration waits for another process's write to the registry, in seconds.
BUSY_TIMEOUT = 30.0
_LOCK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journals (
    path TEXT PRIMARY KEY,
    registered REAL NOT NULL
);
"""


class RunLocked(BatchSmsError):
    """Another runner holds the lock: this one must not start (the message names its pid)."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """The state folder: ``$BATCHSMS_STATE``, else ``platformdirs.user_data_dir("batchsms")``.

    Created (with its parents) when missing, the folder itself with mode 0700; an existing
    folder is used as it is (``$BATCHSMS_STATE`` may name one the user shares on purpose).
    ConfigError naming the folder when it cannot be made or is no folder.
    """
    env = os.environ if env is None else env
    value = (env.get(STATE_VARIABLE) or "").strip()
    if value:
        path, where = Path(value).expanduser(), f"{STATE_VARIABLE}={value}"
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("batchsms", appauthor=False))
        where = "the state folder"
    path = path.absolute()
    if path.is_dir():
        return path
    if path.exists():
        raise ConfigError(f"{where}: {path} is a file, not a folder; set {STATE_VARIABLE} to a folder")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)  # mkdir's mode is narrowed by the umask, never widened: set it exactly
    except OSError as exc:
        raise ConfigError(f"{where}: cannot create {path} ({exc.strerror or exc}); set {STATE_VARIABLE} to a "
                          "folder you can write") from None
    return path


# --------------------------------------------------------------------------- the registry of journals


class Registry:
    """The journals that hold messages for later, by absolute path, in ``folder``/journals.sqlite."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / REGISTRY_NAME

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigError(f"{self.path}: the registry of journals cannot be used ({exc}); move it away "
                              "(journals are registered again when they are next sent from)") from None
        return db

    def register(self, journal: str | Path) -> Path:
        """Remember ``journal`` (made absolute, links resolved); registering it again changes nothing."""
        path = Path(journal).expanduser().resolve()
        with closing(self._connect()) as db:
            db.execute("INSERT OR IGNORE INTO journals (path, registered) VALUES (?, ?)", (str(path), time.time()))
        return path

    def forget(self, journal: str | Path) -> None:
        with closing(self._connect()) as db:
            db.execute("DELETE FROM journals WHERE path = ?", (str(Path(journal).expanduser().resolve()),))

    def journals(self) -> list[Path]:
        """The registered journals that exist, in the order they were registered.

        One whose folder is there but the file is not (deleted, or moved with its results) is
        forgotten. One whose folder is missing too is kept but not returned: a drive that is
        not mounted at this moment must not lose its held messages for good.
        """
        if not self.path.exists():
            return []
        with closing(self._connect()) as db:
            rows = [Path(p) for (p,) in db.execute("SELECT path FROM journals ORDER BY registered, path")]
            found, gone = [], []
            for path in rows:
                if path.is_file():
                    found.append(path)
                elif path.parent.is_dir():
                    gone.append((str(path),))
            if gone:
                db.executemany("DELETE FROM journals WHERE path = ?", gone)
        return found


def register(journal: str | Path, env: Mapping[str, str] | None = None) -> Path:
    """Register ``journal`` in the state folder's registry (see :class:`Registry`)."""
    return Registry(state_dir(env)).register(journal)


def forget(journal: str | Path, env: Mapping[str, str] | None = None) -> None:
    """Forget ``journal`` (it moved: the drop folder files a batch away once it is sent)."""
    Registry(state_dir(env)).forget(journal)


def journals(env: Mapping[str, str] | None = None) -> list[Path]:
    """Every registered journal that exists (see :meth:`Registry.journals`)."""
    return Registry(state_dir(env)).journals()


# --------------------------------------------------------------------------- run locks


def _holder(fd: int) -> int | None:
    """The pid the lock's holder wrote into the lock file, if it has."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextmanager
def run_lock(name: str, *, folder: Path | None = None, what: str | None = None,
             env: Mapping[str, str] | None = None) -> Iterator[Path]:
    """Hold the lock ``name`` (``due``, ``watch``) for the ``with`` block, or raise RunLocked at once.

    The lock file is ``<folder>/<name>.lock`` (``folder``: the state folder by default; a drop
    folder's runner locks that folder). It holds the holder's pid, which the message names.
    ``what`` is the command named in it (default ``batchsms <name>``). The lock is released when
    the block ends, or by the operating system when the process dies.
    """
    if not _LOCK_NAME.fullmatch(name):
        raise ValueError(f"lock name {name!r}: letters, digits, '.', '_' and '-' only")
    folder = state_dir(env) if folder is None else Path(folder)
    path = folder / f"{name}.lock"
    command = what or f"batchsms {name}"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open the lock file ({exc.strerror or exc}); check the folder's "
                          "permissions") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            who = f" (pid {pid})" if pid is not None else ""
            raise RunLocked(
                f"another `{command}` is running{who}; it holds {path}. Wait for it to finish, or stop it; "
                "this run did nothing", pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
