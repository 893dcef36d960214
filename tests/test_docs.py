"""Every command has help text with an example; the README names every command."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from batchsms.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(main.commands))
def test_command_help_has_an_example(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output
    assert main.commands[name].help


def test_readme_mentions_every_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in main.commands:
        assert f"batchsms {name}" in readme
