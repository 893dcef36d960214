"""The catalogue of problem codes is the one place codes are spelled, and the README lists every one."""

import re
from pathlib import Path

from batchsms import codes

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "batchsms"


def constant_names():
    return {name: value for name, value in vars(codes).items() if isinstance(value, codes.Code)}


def package_sources():
    return {path: path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py") if path.name != "codes.py"}


def test_every_catalogue_entry_has_a_constant_a_meaning_and_a_fix():
    by_code = {entry.code: name for name, entry in constant_names().items()}
    assert set(by_code) == set(codes.CATALOGUE)
    for code, entry in codes.CATALOGUE.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", code)
        assert by_code[code] == code.upper().replace("-", "_")
        assert entry.meaning and entry.fix and entry.severity in (codes.ERROR, codes.WARNING)


def test_no_catalogue_entry_is_unused():
    sources = "\n".join(package_sources().values())
    unused = [name for name in constant_names() if not re.search(rf"\b{name}\b", sources)]
    assert unused == []


def test_no_module_spells_a_code_out():
    spelled = {}
    for path, text in package_sources().items():
        for code in codes.CATALOGUE:
            if re.search(rf"[\"']{re.escape(code)}[\"']", text):
                spelled.setdefault(path.name, []).append(code)
    assert spelled == {}


def test_the_readme_lists_every_code():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [code for code in codes.CATALOGUE if f"`{code}`" not in readme]
    assert missing == []
