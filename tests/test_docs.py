"""Every command has help text with an example, and every example (in --help and the README) is a
command line the CLI accepts, naming files that exist."""

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchsms.cli import every_command, main

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = every_command()


def command_lines(text):
    """The ``batchsms ...`` command lines in shell text, continuation lines joined, env assignments dropped."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words:
            end = words.index("&&") if "&&" in words else len(words)
            segment, words = words[:end], words[end + 1:]
            while segment and re.fullmatch(r"[A-Z_]+=\S*", segment[0]):
                segment = segment[1:]
            if segment[:1] == ["batchsms"]:
                found.append(segment[1:])
    return found


def readme_examples():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)^```", readme, flags=re.S | re.M)
    return [args for block in blocks for args in command_lines(block)]


def help_examples(name):
    """The lines under 'Example:' in a command's help."""
    text = COMMANDS[name].help.split("Example:", 1)[1]
    lines = []
    for line in text.replace("\\\n", " ").replace("\\\\\n", " ").splitlines()[1:]:
        if not line.strip():
            break
        lines.append(line)
    return command_lines("\n".join(lines))


def parses(args):
    """Parse a command line as batchsms would, without running it; raises click's UsageError if it is wrong."""
    name, *rest = args
    assert name in COMMANDS, f"no command {name!r}"
    COMMANDS[name].make_context(f"batchsms {name}", list(rest)).close()
    for word in rest:
        if word.startswith(("samples/", "templates/")):
            assert (ROOT / word).is_file(), f"{word}: no such file in the repository"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help_has_an_example_that_parses(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output
    examples = help_examples(name)
    assert [args[0] for args in examples][:1] == [name], examples
    for args in examples:
        parses(args)


@pytest.mark.parametrize("args", readme_examples(), ids=lambda args: " ".join(args)[:60])
def test_readme_example_parses(args):
    parses(args)


def test_readme_has_an_example_of_every_command():
    assert {args[0] for args in readme_examples()} == set(COMMANDS)
