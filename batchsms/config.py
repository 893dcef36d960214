"""Where the API credentials and target come from: options, then environment, then a config file.

The config file (INI) is ``$BATCHSMS_CONFIG`` or ``~/.config/batchsms/config.ini``::

    [batchsms]
    account_sid = AC...
    auth_token = ...
    property_sid = PS...
    base_url = https://api.fonedynamics.com

The token is held in a field that ``repr`` never shows.
"""

from __future__ import annotations

import configparser
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .client import DEFAULT_BASE_URL
from .errors import ConfigError

SECTION = "batchsms"


@dataclass(frozen=True)
class Settings:
    base_url: str
    account_sid: str
    auth_token: str = field(repr=False)
    property_sid: str
    warnings: tuple[str, ...] = ()  # for the person running it (a config file others can read)
    name: str | None = None  # what journals call this target, when not its URL (the built-in sandbox)

    @property
    def target(self) -> str:
        """What a journal is tied to: the API and property the messages went to."""
        return self.name or f"{self.base_url.strip().rstrip('/')}/v2/Properties/{self.property_sid}"


def config_path(env: Mapping[str, str]) -> Path:
    if env.get("BATCHSMS_CONFIG"):
        return Path(env["BATCHSMS_CONFIG"]).expanduser()
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "batchsms" / "config.ini"


def read_config(path: Path, explicit: bool) -> dict[str, str]:
    """The ``[batchsms]`` section of the config file; ``{}`` when there is none and none was named.

    Errors never quote the file's lines: one of them may hold the token.
    """
    if not path.exists():
        if explicit:
            raise ConfigError(f"BATCHSMS_CONFIG={path}: no such file")
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            parser.read_file(fh, source=str(path))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text (byte {exc.object[exc.start]:#04x}); "
                          "save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        where = f" near line {line}" if line else ""
        raise ConfigError(f"{path}: not a valid config file{where} ({exc.__class__.__name__}); "
                          "write key = value lines under [batchsms]") from None
    if not parser.has_section(SECTION):
        raise ConfigError(f"{path}: has no [{SECTION}] section")
    return dict(parser[SECTION])


def load_settings(*, base_url: str | None = None, property_sid: str | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    path = config_path(env)
    file = read_config(path, explicit=bool(env.get("BATCHSMS_CONFIG")))

    def pick(option: str | None, var: str, key: str, default: str = "") -> str:
        return (option or env.get(var) or file.get(key) or default).strip()

    warnings = []
    if file.get("auth_token") and os.name == "posix":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            warnings.append(f"{path} holds the auth token and others can read it (mode {mode:o}); "
                            f"run: chmod 600 {path}")
    return Settings(
        base_url=pick(base_url, "BATCHSMS_BASE_URL", "base_url", DEFAULT_BASE_URL),
        account_sid=pick(None, "BATCHSMS_ACCOUNT_SID", "account_sid"),
        auth_token=pick(None, "BATCHSMS_AUTH_TOKEN", "auth_token"),
        property_sid=pick(property_sid, "BATCHSMS_PROPERTY_SID", "property_sid"),
        warnings=tuple(warnings),
    )
