"""Issue #14: invisible characters around headers must not hide a column."""

import codecs
import unicodedata

from click.testing import CliRunner

from batchsms.cli import main
from batchsms.fields import FORMAT_RANGES, header_key
from batchsms.sheet import load

from .helpers import write_csv


def test_the_format_character_table_is_unicodes_category_cf():
    """Exactly Cf in the Unicode of Python 3.11; a later Unicode may add (never remove) some."""
    listed = {c for low, high in FORMAT_RANGES for c in range(low, high + 1)}
    cf = {c for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"}
    assert listed <= cf
    assert {c for c in cf if c <= 0xFFFF} <= listed  # every one a keyboard or a web form can paste


def test_a_bom_and_a_zero_width_space_before_the_header_as_a_web_form_exports_it(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(codecs.BOM_UTF8 + "\ufeff\u200bphone number,First\u200d Name\r\n0412345678,Ann\r\n".encode())
    sheet = load(path)
    assert sheet.header == ["phone number", "First\u200d Name".replace("\u200d", "")]
    assert sheet.column_of("To") == "phone number"
    result = CliRunner().invoke(main, ["check", str(path), "--text", "Hi {{ First_Name }} {{ row['First Name'] }}",
                                       "--json", "--no-preview"])
    assert result.exit_code == 0, result.output
    report = CliRunner().invoke(main, ["check", str(path), "--text", "{{ First_Name }}", "--column",
                                       "To=\u2060phone\u00a0number"])
    assert report.exit_code == 0, report.output


def test_a_joiner_inside_a_header_and_unicode_spaces_fold_away():
    assert header_key("Mo\u200cbile\u2003Number") == header_key("Mobile Number") == "mobilenumber"
    assert header_key("\u180eTo") == "to"


def test_blank_lines_before_the_header_are_skipped_and_said(tmp_path):
    path = write_csv(tmp_path / "c.csv", [[], [], ["Mobile", "Name"], ["0412345678", "Ann"]])
    result = CliRunner().invoke(main, ["check", str(path), "--text", "Hi {{ Name }}"])
    assert result.exit_code == 0
    assert "header found on row 3; --header-row 3 to be explicit" in result.output
