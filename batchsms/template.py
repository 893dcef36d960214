"""Render each row's message text from a Jinja2 template, safely.

The template runs in a ``SandboxedEnvironment`` with ``StrictUndefined``: a
misspelt column is an error on the row, not an empty gap in a customer's text.
Cell values are passed in as data and never compiled, so a cell holding
``{{ 7*7 }}`` is sent as those very characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from .errors import TemplateError

_NOT_IDENT = re.compile(r"\W+")


def identifier_for(header: str) -> str | None:
    """The variable name offered for a header that is not an identifier (``First Name`` → ``First_Name``)."""
    name = _NOT_IDENT.sub("_", header.strip()).strip("_") if header else ""
    if not name:
        return None
    if name[0].isdigit():
        name = "_" + name
    return name


def variable_names(header: Sequence[str]) -> list[tuple[int, str]]:
    """``(column index, variable name)`` pairs: each header, and its identifier form when different.

    The first column wins when two headers give the same name.
    """
    pairs: list[tuple[int, str]] = []
    seen: set[str] = {"row"}
    for index, h in enumerate(header):
        for name in (h, identifier_for(h)):
            if name and name not in seen:
                seen.add(name)
                pairs.append((index, name))
    return pairs


class MissingVariable(Exception):
    """A template used a variable the row does not have."""

    def __init__(self, name: str, columns: Sequence[str]) -> None:
        self.name = name
        shown = ", ".join(repr(c) for c in columns)
        super().__init__(
            f"the template uses {{{{ {name} }}}} but there is no such column; the columns are {shown}"
        )


class RenderError(Exception):
    """The template failed on one row for another reason (a filter on the wrong type, say)."""


class MessageTemplate:
    """A compiled template plus the header it is rendered against."""

    def __init__(self, source: str, header: Sequence[str], name: str = "<--text>") -> None:
        self.source = source
        self.name = name
        self.header = list(header)
        self._pairs = variable_names(self.header)
        env = SandboxedEnvironment(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        try:
            self._template = env.from_string(source)
            self._fast = self._plain_substitution(env.parse(source))
            #: ``cells -> text`` when the template only puts columns into text (it cannot fail), else None.
            self.render_plain = self._compile_plain(self._fast) if self._fast else None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{name}:{exc.lineno}: template syntax error: {exc.message}") from exc

    def _plain_substitution(self, tree: nodes.Template) -> tuple[list[str], list[int]] | None:
        """The literal texts and column indexes of a template that only puts columns into text.

        ``Hi {{ First_Name }}, see you at {{ Clinic }}`` is ``(["Hi ", ", see you at ", ""], [0, 3])``;
        anything else (filters, tags, unknown names) gives None and renders with Jinja.
        """
        index_of = {name: index for index, name in self._pairs}
        literals: list[str] = [""]
        indexes: list[int] = []
        for node in tree.body:
            if not isinstance(node, nodes.Output):
                return None
            for part in node.nodes:
                if isinstance(part, nodes.TemplateData):
                    literals[-1] += part.data
                elif isinstance(part, nodes.Name) and part.ctx == "load" and part.name in index_of:
                    indexes.append(index_of[part.name])
                    literals.append("")
                else:
                    return None
        return literals, indexes

    @staticmethod
    def _compile_plain(plain: tuple[list[str], list[int]]):
        """``cells -> text`` for a plain substitution: one ``str.join`` over a tuple, ~20x a Jinja render.

        The literal texts travel as default arguments and the column indexes are
        integers, so nothing from the template or the sheet is ever part of the code.
        """
        literals, indexes = plain
        names = [f"k{i}" for i in range(len(literals))]
        pieces = [names[0]]
        for position, index in enumerate(indexes, start=1):
            pieces += [f"c[{int(index)}]", names[position]]
        defaults = ", ".join(f"{n}={n}" for n in names)
        source = f"lambda c, _join=''.join, {defaults}: _join(({', '.join(pieces)},))"
        return eval(source, {}, dict(zip(names, literals, strict=True)))  # noqa: S307 - see docstring

    def __reduce__(self):
        """Pickle as source, header and name (compiled Jinja templates do not pickle)."""
        return (MessageTemplate, (self.source, self.header, self.name))

    @classmethod
    def from_file(cls, path: str | Path, header: Sequence[str]) -> MessageTemplate:
        path = Path(path)
        try:
            source = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise TemplateError(f"{path}: no such template file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"{path}: cannot be read as UTF-8 text ({exc})") from exc
        return cls(source, header, name=str(path))

    def render(self, cells: Sequence[str]) -> str:
        """The text for one row; raises MissingVariable or RenderError."""
        if self.render_plain is not None:
            return self.render_plain(cells)
        context = {name: cells[index] for index, name in self._pairs}
        context["row"] = dict(zip(self.header, cells, strict=False))
        try:
            return self._template.render(context)
        except jinja2.UndefinedError as exc:
            match = re.search(r"'([^']+)' is undefined", str(exc))
            if match:
                raise MissingVariable(match.group(1), self.header) from None
            raise RenderError(f"template error: {exc}") from None
        except jinja2.TemplateError as exc:
            raise RenderError(f"template error: {exc}") from None
        except Exception as exc:  # a filter applied to a value it cannot take
            raise RenderError(f"template error: {type(exc).__name__}: {exc}") from None
