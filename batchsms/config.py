"""The config file: the API credentials and target (:func:`load_settings`), and the preferences
every command reads, credentials or not (:func:`load_preferences`).

The config file (INI) is ``$BATCHSMS_CONFIG`` or ``~/.config/batchsms/config.ini``::

    [batchsms]
    account_sid = AC...
    auth_token = ...
    property_sid = PS...
    base_url = https://api.fonedynamics.com
    timezone = Australia/Sydney       ; the run's zone (default: the machine's)

    [prices]                          ; per segment, by ISO country code (see pricing.py)
    currency = AUD
    AU = 0.055
    NZ = 0.09
    default = 0.10

Credentials: options, then environment, then the file. The token is held in a field
that ``repr`` never shows, and no error quotes a line of the file (one may hold it).
A file holding only ``[prices]`` is fine: the credentials may come from the environment.
"""

from __future__ import annotations

import configparser
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import clock
from .endpoint import DEFAULT_BASE_URL
from .errors import ConfigError
from .pricing import DEFAULT_CURRENCY, Prices, parse_currency

SECTION = "batchsms"
PRICES_SECTION = "prices"
#: Keys of [batchsms] :func:`load_settings` reads.
CREDENTIAL_KEYS = frozenset({"account_sid", "auth_token", "property_sid", "base_url"})
#: Keys of [batchsms] :func:`load_preferences` reads. A later preference (marketing, quiet_hours,
#: optouts) is one more name here, one more field of Preferences and one line in load_preferences.
PREFERENCE_KEYS = frozenset({"timezone", "locale", "marketing", "optouts", "quiet_hours", "quiet_days",
                             "batch_size"})
#: The largest ``batch_size`` (the same bound as ``send --batch-size``).
MAX_BATCH_SIZE = 1000
#: Keys people put under [batchsms] that belong elsewhere: named in the warning.
MISPLACED = {"currency": PRICES_SECTION}


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


def _parse(path: Path, explicit: bool) -> configparser.ConfigParser | None:
    """The parsed config file; None when there is none and none was named.

    Errors are one line and never quote the file's lines: one of them may hold the token.
    """
    if not path.exists():
        if explicit:
            raise ConfigError(f"BATCHSMS_CONFIG={path}: no such file")
        return None
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
        if line is None and isinstance(exc, configparser.ParsingError) and exc.errors:
            line = exc.errors[0][0]  # (line number, line): only the number is shown
        where = f" near line {line}" if line else ""
        raise ConfigError(f"{path}: not a valid config file{where} ({exc.__class__.__name__}); "
                          f"write key = value lines under [{SECTION}] or [{PRICES_SECTION}]") from None
    if not parser.has_section(SECTION) and not parser.has_section(PRICES_SECTION):
        raise ConfigError(f"{path}: has no [{SECTION}] section")
    return parser


def read_config(path: Path, explicit: bool) -> dict[str, str]:
    """The ``[batchsms]`` section of the config file; ``{}`` when there is none and none was named.

    Errors never quote the file's lines: one of them may hold the token.
    """
    parser = _parse(path, explicit)
    if parser is None or not parser.has_section(SECTION):
        return {}
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


@dataclass(frozen=True)
class Preferences:
    """What the config file says about how runs behave, apart from credentials.

    ``check`` reads it too, so nothing here needs (or reads) the token. Every field has
    the value a run gets without a config file, so a later key is one more field.
    """

    path: Path | None = None  # the file read, None when there is none
    prices: Prices | None = None  # from [prices]; None when it holds no price
    currency: str = DEFAULT_CURRENCY  # [prices] currency, also the currency of --price
    timezone: str | None = None  # [batchsms] timezone, checked to be a zone; None: the machine's
    locale: str | None = None  # [batchsms] locale for dates (en_AU); None: English as written in --country
    marketing: bool = False  # [batchsms] marketing = true: every run checks the law's marketing rules
    optouts: Path | None = None  # [batchsms] optouts: the opt-out file every check reads (STOP replies land there)
    quiet_hours: str | None = None  # [batchsms] quiet_hours = 21:00-08:00, in each recipient's time
    quiet_days: str | None = None  # [batchsms] quiet_days = Sun: whole days without sends
    batch_size: int | None = None  # [batchsms] batch_size = 100: send through BatchMessages; None (or 0): one each
    warnings: tuple[str, ...] = ()  # keys and sections that were ignored (typos, misplaced keys)


def load_preferences(env: Mapping[str, str] | None = None) -> Preferences:
    """The non-credential settings of the config file at ``$BATCHSMS_CONFIG`` or the default path.

    No file (and none named) gives the defaults. A bad value stops the run with one line
    naming the file and the key; an unknown key or section is a warning, since a typo
    (``timezon``) would otherwise be ignored without a word.
    """
    env = os.environ if env is None else env
    path = config_path(env)
    parser = _parse(path, explicit=bool(env.get("BATCHSMS_CONFIG")))
    if parser is None:
        return Preferences()
    warnings = []
    main = dict(parser[SECTION]) if parser.has_section(SECTION) else {}
    for key in main:
        if key in MISPLACED:
            warnings.append(f"{path}: {key} under [{SECTION}] is ignored; it belongs under [{MISPLACED[key]}]")
        elif key not in CREDENTIAL_KEYS | PREFERENCE_KEYS:
            warnings.append(f"{path}: [{SECTION}] {key} is not a setting batchsms knows (ignored); it reads "
                            f"{', '.join(sorted(CREDENTIAL_KEYS | PREFERENCE_KEYS))}")
    for name in parser.sections():
        if name not in (SECTION, PRICES_SECTION):
            warnings.append(f"{path}: section [{name}] is ignored; batchsms reads [{SECTION}] and "
                            f"[{PRICES_SECTION}]")
    timezone = main.get("timezone", "").strip() or None
    if timezone is not None:
        clock.zone_named(timezone, f"{path}: [{SECTION}] timezone", show=False)
    marketing = _flag(main.get("marketing", ""), f"{path}: [{SECTION}] marketing")
    optouts = main.get("optouts", "").strip() or None
    optouts_path = (path.parent / Path(optouts).expanduser()) if optouts is not None else None
    prices, currency = None, DEFAULT_CURRENCY
    if parser.has_section(PRICES_SECTION):
        section = dict(parser[PRICES_SECTION])
        prices = Prices.from_section(section, str(path))
        if "currency" in section:  # also without a price: it is the currency of --price
            currency = parse_currency(section["currency"], f"{path}: [{PRICES_SECTION}] currency", show=False)
    return Preferences(path=path, prices=prices, currency=currency, timezone=timezone,
                       locale=main.get("locale", "").strip() or None, marketing=marketing, optouts=optouts_path,
                       quiet_hours=main.get("quiet_hours", "").strip() or None,
                       quiet_days=main.get("quiet_days", "").strip() or None,
                       batch_size=_batch_size(main.get("batch_size", ""), f"{path}: [{SECTION}] batch_size"),
                       warnings=tuple(warnings))


def _batch_size(raw: str, where: str) -> int | None:
    """``batch_size``: a whole number of messages a BatchMessages request, 0 or empty for single sends."""
    value = raw.strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and int(value) <= MAX_BATCH_SIZE):
        raise ConfigError(f"{where} = {value[:40]!r}: write a whole number of messages from 1 to "
                          f"{MAX_BATCH_SIZE:,} (100 is usual), or 0 to send each message on its own")
    return int(value) or None


def _flag(raw: str, where: str) -> bool:
    """A yes/no setting: true/false, yes/no, on/off, 1/0 in any case; empty is no."""
    value = raw.strip().casefold()
    if value in ("", "false", "no", "off", "0"):
        return False
    if value in ("true", "yes", "on", "1"):
        return True
    raise ConfigError(f"{where} = {raw.strip()[:40]!r}: write true or false")
