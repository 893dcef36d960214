"""Prices from --price and from the config file, exact totals, money as people read it, --max-cost."""

from decimal import Decimal

import pytest

from batchsms.config import Preferences, load_preferences, load_settings
from batchsms.errors import BatchSmsError, ConfigError
from batchsms.pricing import (
    HOW_TO_SET_PRICES,
    CostError,
    Prices,
    check_budget,
    format_money,
    missing_prices_hint,
    parse_amount,
    run_prices,
)


def config(tmp_path, text: str, name: str = "config.ini"):
    """A real config file, and the environment that points batchsms at it."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path, {"BATCHSMS_CONFIG": str(path)}


# --------------------------------------------------------------------------- where prices come from


def test_one_price_from_the_option_applies_to_every_country():
    prices = Prices.flat("0.055")
    assert (prices.currency, prices.source) == ("AUD", "--price")
    assert prices.cost("AU", 3) == Decimal("0.165")
    assert prices.cost("NZ", 1) == prices.cost(None, 1) == Decimal("0.055")


def test_prices_by_country_from_the_config_file(tmp_path):
    path, env = config(tmp_path, "[batchsms]\ntimezone = Australia/Sydney\n\n"
                                 "[prices]\ncurrency = nzd\nAU = 0.055\nnz = 0.09\nDefault = 0.10\n")
    preferences = load_preferences(env)
    prices = preferences.prices
    assert prices is not None and preferences.currency == prices.currency == "NZD"
    assert prices.by_country == {"AU": Decimal("0.055"), "NZ": Decimal("0.09")}
    assert (prices.cost("au", 2), prices.cost("NZ", 2), prices.cost("GB", 2)) == (
        Decimal("0.110"), Decimal("0.18"), Decimal("0.20"))
    assert prices.source == str(path) and preferences.path == path


def test_a_country_without_a_price_and_no_default_has_no_cost(tmp_path):
    _, env = config(tmp_path, "[prices]\nAU = 0.055\n")
    prices = load_preferences(env).prices
    assert prices is not None and prices.currency == "AUD"  # the default currency
    assert prices.cost("NZ", 4) is None
    assert prices.total({"AU": 10, "NZ": 2}) is None  # a partial total would understate the bill
    assert prices.total({"AU": 10, "NZ": 0}) == Decimal("0.550")
    assert prices.unpriced(["AU", "NZ", None, "US"]) == ["?", "NZ", "US"]
    assert missing_prices_hint(prices, ["NZ", "US"]).startswith("no price for NZ, US in ")


def test_the_option_wins_over_the_config_and_takes_its_currency(tmp_path):
    _, env = config(tmp_path, "[prices]\ncurrency = USD\nAU = 0.055\n")
    preferences = load_preferences(env)
    chosen = run_prices("0.07", preferences)
    assert chosen is not None and (chosen.default, chosen.by_country, chosen.currency) == (Decimal("0.07"), {}, "USD")
    assert run_prices(None, preferences) is preferences.prices
    assert run_prices(None, Preferences()) is None
    assert run_prices(None, None) is None


def test_a_currency_alone_is_no_prices_but_is_the_currency_of_the_option(tmp_path):
    _, env = config(tmp_path, "[prices]\ncurrency = GBP\n")
    preferences = load_preferences(env)
    assert (preferences.prices, preferences.currency) == (None, "GBP")
    chosen = run_prices("0.04", preferences)
    assert chosen is not None and format_money(chosen.cost("GB", 1000), chosen.currency) == "£40.00"


def test_no_config_file_gives_the_defaults_without_credentials(tmp_path):
    preferences = load_preferences({"XDG_CONFIG_HOME": str(tmp_path)})
    assert preferences == Preferences()
    assert (preferences.prices, preferences.currency, preferences.timezone) == (None, "AUD", None)


def test_a_file_with_only_prices_leaves_the_credentials_to_the_environment(tmp_path):
    _, env = config(tmp_path, "[prices]\ndefault = 0.1\n")
    env.update(BATCHSMS_ACCOUNT_SID="ACENV", BATCHSMS_AUTH_TOKEN="t", BATCHSMS_PROPERTY_SID="PS1")
    assert load_settings(env=env).account_sid == "ACENV"
    assert load_preferences(env).prices == Prices(default=Decimal("0.1"), source=env["BATCHSMS_CONFIG"])


# --------------------------------------------------------------------------- totals and money


def test_totals_are_exact_and_rounded_half_up_only_when_shown():
    prices = Prices.flat("0.055")
    total = prices.total({"AU": 4963})
    assert total == Decimal("272.965")  # a float would hold 272.96499999...
    assert format_money(total, "AUD") == "A$272.97"
    tenths = Prices.flat("0.1").total({"AU": 3})
    assert tenths == Decimal("0.3")  # 0.1 * 3 in floats is 0.30000000000000004


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("272.965", "AUD", "A$272.97"),
        ("272.964", "AUD", "A$272.96"),
        ("1204.5", "AUD", "A$1,204.50"),
        ("1234567.891", "NZD", "NZ$1,234,567.89"),
        ("0.005", "USD", "US$0.01"),
        ("0", "GBP", "£0.00"),
        ("99.999", "EUR", "€100.00"),
        ("272.97", "XYZ", "272.97 XYZ"),
        ("5", "jpy", "5.00 JPY"),
        ("-1.005", "AUD", "-A$1.01"),
    ],
)
def test_format_money(amount, currency, shown):
    assert format_money(Decimal(amount), currency) == shown


# --------------------------------------------------------------------------- bad values: one line, where and which key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-0.05", "--price '-0.05': is negative; write 0 or more"),
        ("abc", "--price 'abc': not an amount; write a plain number such as 0.055 or 1000.00 "
                "(a dot for decimals, no currency sign or thousands separator)"),
        ("0,055", "--price '0,055': not an amount"),
        ("$0.05", "--price '$0.05': not an amount"),
        ("1e3", "--price '1e3': not an amount"),
        ("NaN", "--price 'NaN': not an amount"),
        ("", "--price '': not an amount"),
    ],
)
def test_a_bad_price_option_is_one_line(text, message):
    with pytest.raises(ConfigError) as caught:
        Prices.flat(text)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("AUS = 0.05", "[prices]: AUS is not a country code; use two-letter ISO codes such as AU, NZ, GB, or default"),
        ("UK = 0.05", "[prices]: UK is not a country code (the United Kingdom is GB); use two-letter ISO codes"),
        ("AU = -0.05", "[prices] AU: is negative; write 0 or more"),
        ("NZ = cheap", "[prices] NZ: not an amount; write a plain number such as 0.055"),
        ("default = ", "[prices] default: not an amount"),
        ("currency = dollars", "[prices] currency: not a currency code; write three letters such as AUD, NZD, USD"),
    ],
)
def test_a_bad_prices_section_names_the_file_and_the_key_in_one_line(tmp_path, section, message):
    path, env = config(tmp_path, f"[prices]\nGB = 0.04\n{section}\n")
    with pytest.raises(ConfigError) as caught:
        load_preferences(env)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text
    value = section.split("=", 1)[1].strip()
    assert not value or value not in text.removeprefix(str(path))  # a value from the file is never quoted back


def test_a_non_utf8_or_broken_config_is_one_line_without_its_lines(tmp_path):
    path = tmp_path / "config.ini"
    path.write_bytes(b"[prices]\nAU = 0.055\ncurrency = \xa3\n")
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 0xa3\); save it as UTF-8"):
        load_preferences({"BATCHSMS_CONFIG": str(path)})
    path.write_text("[prices]\nAU = 0.055\nsecret-token-line\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_preferences({"BATCHSMS_CONFIG": str(path)})
    assert "not a valid config file near line 3" in str(caught.value)
    assert "secret-token-line" not in str(caught.value)
    with pytest.raises(ConfigError, match="no such file"):
        load_preferences({"BATCHSMS_CONFIG": str(tmp_path / "none.ini")})


def test_unknown_keys_and_sections_are_warnings_not_silence(tmp_path):
    path, env = config(tmp_path, "[batchsms]\naccount_sid = AC1\ntimezon = Australia/Sydney\ncurrency = AUD\n"
                                 "[price]\nAU = 0.05\n")
    preferences = load_preferences(env)
    assert preferences.prices is None and preferences.timezone is None
    assert preferences.warnings == (
        f"{path}: [batchsms] timezon is not a setting batchsms knows (ignored); it reads account_sid, "
        "auth_token, base_url, batch_size, locale, marketing, optouts, property_sid, quiet_days, quiet_hours, "
        "timezone",
        f"{path}: currency under [batchsms] is ignored; it belongs under [prices]",
        f"{path}: section [price] is ignored; batchsms reads [batchsms] and [prices]",
    )


# --------------------------------------------------------------------------- --max-cost


def test_parse_max_cost():
    assert parse_amount("1000", "--max-cost") == Decimal("1000")
    assert parse_amount(" 250.50 ", "--max-cost") == Decimal("250.50")
    with pytest.raises(ConfigError, match=r"^--max-cost '1,000': not an amount"):
        parse_amount("1,000", "--max-cost")


def test_over_the_limit_stops_the_run_before_anything_is_sent():
    with pytest.raises(CostError) as caught:
        check_budget(Decimal("1204.4951"), Decimal("1000"), "AUD")
    assert str(caught.value) == (
        "the messages would cost A$1,204.50, over --max-cost A$1,000.00; nothing was sent")
    assert isinstance(caught.value, BatchSmsError) and caught.value.exit_code == 2


def test_at_or_under_the_limit_passes():
    assert check_budget(Decimal("999.99"), Decimal("1000"), "AUD") is None
    assert check_budget(Decimal("1000.004"), Decimal("1000.00"), "AUD") is None  # A$1,000.00 as shown
    assert check_budget(Decimal("0"), Decimal("0"), "AUD") is None
    assert check_budget(None, None, "AUD") is None  # no limit, no prices: segments only
    with pytest.raises(CostError):
        check_budget(Decimal("1000.005"), Decimal("1000.00"), "AUD")  # A$1,000.01 as shown


def test_a_limit_without_prices_refuses():
    with pytest.raises(CostError) as caught:
        check_budget(None, Decimal("100"), "AUD")
    assert str(caught.value) == "--max-cost needs prices: --price or [prices] in the config; nothing was sent"
    with pytest.raises(CostError) as caught:
        check_budget(None, Decimal("100"), "AUD", unpriced=["NZ", "US", "NZ"])
    assert str(caught.value).startswith("--max-cost needs a price for every number: none for NZ, US; ")


def test_the_summary_says_how_to_set_prices():
    assert missing_prices_hint(None, ["AU"]) == HOW_TO_SET_PRICES
    assert "--price 0.055" in HOW_TO_SET_PRICES and "[prices]" in HOW_TO_SET_PRICES
