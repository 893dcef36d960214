"""What a run will cost: prices per segment by country, totals, and the ``--max-cost`` limit.

Prices come from ``--price 0.055`` (one price per segment for every number) or from a
``[prices]`` section of the config file (see :mod:`batchsms.config`)::

    [prices]
    currency = AUD
    AU = 0.055
    NZ = 0.09
    default = 0.10

``currency`` lives in ``[prices]`` beside the figures it qualifies (AUD when not given:
Fone Dynamics bills in Australian dollars, and ``--country`` defaults to AU). Country
keys are the ISO 3166 two-letter codes phonenumbers gives a number (``GB``, not ``UK``);
``default`` prices every other country.

Money is :class:`decimal.Decimal` throughout, because binary floats cannot hold 0.055
and a million segments would add their error up; a total is rounded (half up, to cents)
only when it is shown or compared with ``--max-cost``, which is written in cents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

import phonenumbers

from .errors import BatchSmsError, ConfigError

if TYPE_CHECKING:
    from .config import Preferences

DEFAULT_CURRENCY = "AUD"
DEFAULT_KEY = "default"
CURRENCY_KEY = "currency"
CENT = Decimal("0.01")

#: Symbols people read without a second look; any other currency is written after the amount.
SYMBOLS = {"AUD": "A$", "NZD": "NZ$", "USD": "US$", "GBP": "£", "EUR": "€"}

#: A plain decimal number: no sign, exponent, thousands separator or NaN, so "1,5" (a decimal
#: comma) or "1e3" is refused instead of being read as something the user did not mean.
_PLAIN_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)")
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")


class CostError(BatchSmsError):
    """The run would cost more than ``--max-cost``, or its cost cannot be known: nothing is sent."""


def parse_amount(text: str, where: str, *, show: bool = True) -> Decimal:
    """A non-negative amount of money from ``text``; ConfigError with one line naming ``where`` if not one.

    ``show`` quotes the value (an option the user just typed); values from the config
    file are not quoted, as no error quotes that file (a misplaced line may be the token).
    """
    value = text.strip()
    if _PLAIN_NUMBER.fullmatch(value):
        return Decimal(value)
    shown = f" {value[:40]!r}" if show else ""
    if value.startswith("-") and _PLAIN_NUMBER.fullmatch(value[1:].strip()):
        raise ConfigError(f"{where}{shown}: is negative; write 0 or more")
    raise ConfigError(f"{where}{shown}: not an amount; write a plain number such as 0.055 or 1000.00 "
                      "(a dot for decimals, no currency sign or thousands separator)")


def parse_currency(text: str, where: str, *, show: bool = True) -> str:
    """An ISO 4217 code (``AUD``) from ``text``, in upper case; ConfigError naming ``where`` if not one."""
    code = text.strip().upper()
    if not _CURRENCY_CODE.fullmatch(code):
        shown = f" {text.strip()[:40]!r}" if show else ""
        raise ConfigError(f"{where}{shown}: not a currency code; write three letters such as AUD, NZD, USD")
    return code


def _country_key(key: str, where: str) -> str:
    """An ISO region code phonenumbers knows (so a price can ever apply), else ConfigError."""
    code = key.strip().upper()
    if code in phonenumbers.SUPPORTED_REGIONS:
        return code
    hint = " (the United Kingdom is GB)" if code == "UK" else ""
    raise ConfigError(f"{where}: {code} is not a country code{hint}; use two-letter ISO codes such as "
                      f"AU, NZ, GB, or {DEFAULT_KEY}")


def format_money(amount: Decimal, currency: str) -> str:
    """``A$1,204.50``: rounded half up to cents, thousands separated, the symbol people know.

    Currencies without a symbol here are written after the amount (``272.97 XYZ``), which
    no reader can mistake for another dollar.
    """
    cents = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if cents < 0 else ""
    digits = f"{abs(cents):,.2f}"
    symbol = SYMBOLS.get(currency.upper())
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {currency.upper()}"


@dataclass(frozen=True)
class Prices:
    """Price per segment by country (ISO code), a price for every other country, and their currency.

    ``source`` says where the prices came from (``--price`` or the config file) so
    messages about them can send the user to the right place.
    """

    by_country: Mapping[str, Decimal] = field(default_factory=dict)
    default: Decimal | None = None
    currency: str = DEFAULT_CURRENCY
    source: str = "--price"

    @classmethod
    def flat(cls, text: str, currency: str = DEFAULT_CURRENCY) -> Prices:
        """``--price 0.055``: one price per segment for every number, whatever its country."""
        return cls(default=parse_amount(text, "--price"), currency=currency, source="--price")

    @classmethod
    def from_section(cls, section: Mapping[str, str], source: str) -> Prices | None:
        """The ``[prices]`` section of a config file (``source`` names it); None when it holds no price.

        Keys are country codes, ``default`` and ``currency``; a value that is no amount,
        a negative one or a key that is no country stops the run with one line naming
        the file and the key.
        """
        currency = DEFAULT_CURRENCY
        default: Decimal | None = None
        by_country: dict[str, Decimal] = {}
        for key, value in section.items():
            name = key.strip().lower()  # configparser lowers keys: country codes are shown in capitals
            where = f"{source}: [prices] {name if name in (CURRENCY_KEY, DEFAULT_KEY) else name.upper()}"
            if name == CURRENCY_KEY:
                currency = parse_currency(value, where, show=False)
            elif name == DEFAULT_KEY:
                default = parse_amount(value, where, show=False)
            else:
                by_country[_country_key(key, f"{source}: [prices]")] = parse_amount(value, where, show=False)
        if default is None and not by_country:
            return None
        return cls(by_country=by_country, default=default, currency=currency, source=source)

    def price(self, country: str | None) -> Decimal | None:
        """The price of one segment to a number in ``country``; None when no price applies."""
        if country:
            found = self.by_country.get(country.upper())
            if found is not None:
                return found
        return self.default

    def cost(self, country: str | None, segments: int) -> Decimal | None:
        """What ``segments`` segments to ``country`` cost, exactly (not rounded); None without a price."""
        price = self.price(country)
        return None if price is None else price * segments

    def unpriced(self, countries: Iterable[str | None]) -> list[str]:
        """The countries among ``countries`` no price applies to, sorted (``?`` for a number with none)."""
        return sorted({c or "?" for c in countries if self.price(c) is None})

    def total(self, segments_by_country: Mapping[str | None, int]) -> Decimal | None:
        """The exact cost of all segments, by country; None when any country with segments has no price.

        A partial total would understate the bill, and ``--max-cost`` must not pass a run on it.
        """
        total = Decimal(0)
        for country, segments in segments_by_country.items():
            if not segments:
                continue
            cost = self.cost(country, segments)
            if cost is None:
                return None
            total += cost
        return total


def run_prices(option: str | None, preferences: Preferences | None) -> Prices | None:
    """This run's prices: ``--price`` (in the config's currency) wins over the config's ``[prices]``."""
    currency = preferences.currency if preferences is not None else DEFAULT_CURRENCY
    if option is not None and option.strip():
        return Prices.flat(option, currency)
    return preferences.prices if preferences is not None else None


#: For the summary when no price is known: how to get a cost estimate.
HOW_TO_SET_PRICES = ("no prices set: give --price 0.055 (per segment) or a [prices] section in the config file "
                     "(AU = 0.055, default = 0.10, currency = AUD)")


def missing_prices_hint(prices: Prices | None, countries: Iterable[str | None]) -> str:
    """Why there is no total, for the summary: no prices at all, or the countries without one."""
    if prices is None:
        return HOW_TO_SET_PRICES
    missing = prices.unpriced(countries)
    return (f"no price for {', '.join(missing)} in {prices.source}; add them, or default = …, "
            "under [prices]")


def check_budget(total: Decimal | None, max_cost: Decimal | None, currency: str,
                 *, unpriced: Iterable[str] = ()) -> None:
    """Refuse a run whose estimated cost is over ``--max-cost`` (or unknown while a limit is set).

    Called before any request goes out, so the message can promise nothing was sent.
    The total is compared in cents, as shown, so the user never reads "A$1,000.00 is
    over A$1,000.00". ``unpriced`` names the countries that left the total unknown.
    """
    if max_cost is None:
        return
    if total is None:
        missing = sorted(set(unpriced))
        if missing:
            raise CostError(f"--max-cost needs a price for every number: none for {', '.join(missing)}; "
                            "add them or default = … under [prices] in the config, or give --price; "
                            "nothing was sent")
        raise CostError("--max-cost needs prices: --price or [prices] in the config; nothing was sent")
    shown = total.quantize(CENT, rounding=ROUND_HALF_UP)
    if shown > max_cost:
        raise CostError(f"the messages would cost {format_money(total, currency)}, over --max-cost "
                        f"{format_money(max_cost, currency)}; nothing was sent")
