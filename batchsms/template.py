"""Render each row's message text from a Jinja2 template, safely and within bounds.

The template runs in an immutable ``SandboxedEnvironment`` (no ``list.append``:
nothing grows in place) with ``StrictUndefined``: a misspelt column is an error on
the row, not an empty gap in a customer's text.
Cell values are passed in as data and never compiled, so a cell holding
``{{ 7*7 }}`` is sent as those very characters.

A sandbox stops a template from reaching Python, not from asking for the
impossible: ``{{ 7**(7**10) }}``, ``{{ 'x'*10**9 }}`` or two nested loops of a
million rounds would hang the run or take gigabytes (and Jinja folds constant
expressions while *compiling*, so such a template hung before the first row).
:class:`BoundedEnvironment` therefore bounds every template:

* nothing is computed while compiling: constant folding is off, and the
  operators, filters and the output hook below are of kinds Jinja never folds;
* every text or number a template builds is at most :data:`MAX_VALUE` characters
  or digits (a list or dict, which only refers to values, at most :data:`MAX_CHARS`
  all told): ``**``, ``*``, ``%``, widths, ``replace``, ``join``, ``indent`` … are
  checked *before* they run, every other result right after;
* every loop round, call, operator, filter and piece of output is counted: at
  most :data:`MAX_STEPS` of them and :data:`MAX_CHARS` characters built per row,
  with a wall-clock backstop of :data:`MAX_SECONDS`;
* the message itself is streamed and cut off past :data:`MAX_OUTPUT` characters.

A template that breaches a bound even with empty cells fails when it is loaded
(``templates/x.txt:3: …``), before any row is read; one that breaches it only on
some rows makes those rows errors (:class:`RenderError`).
"""

from __future__ import annotations

import difflib
import math
import operator
import re
import time
import traceback
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import jinja2
from jinja2 import nodes, pass_context, pass_environment
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

from . import dates
from .errors import TemplateError

if TYPE_CHECKING:
    from babel import Locale

_NOT_IDENT = re.compile(r"\W+")

#: The longest template source read (a message template is a few lines; this bounds compile time).
MAX_SOURCE = 100_000
#: The longest text a row may render to: 10x the 1,530 characters of a 10-part GSM-7 message, with room.
MAX_OUTPUT = 20_000
#: The longest text (or number, in digits) a template may build.
MAX_VALUE = MAX_OUTPUT
#: Loop rounds, calls, operators, filters and outputs per row: a real SMS template needs a few hundred.
MAX_STEPS = 100_000
#: Characters built per row, all intermediate values and output counted (bounds memory churn).
MAX_CHARS = 1_000_000
#: Wall-clock backstop per row; the counts above normally stop a runaway template long before.
MAX_SECONDS = 1.0
#: The largest ``tojson(indent=…)``: each level of nesting repeats it.
MAX_JSON_INDENT = 64

# Internal filters the AST pass inserts (names no template would use; calling them is harmless anyway).
_LOOP, _CONCAT, _EMIT = "batchsms_loop_round", "batchsms_concat", "batchsms_emit"
# The date filters, and the keyword the AST pass gives them: the expression they print, for error messages.
_DATE_FILTERS = frozenset({"date", "time"})
_SHOWN = "batchsms_shown"
#: The country whose locale a template prints dates in when it is given none (the CLI's --country default).
DEFAULT_COUNTRY = "AU"
# What Jinja itself passes to macros it calls (its loop and block variables): not the template's values.
_JINJA_KWARGS = frozenset({"_loop_vars", "_block_vars", "caller"})
# printf-style conversions (for ``%`` and the ``format`` filter): their width and precision.
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[diouxXeEfFgGcrsab%]")
# str.format replacement fields, with at most one nested field in the spec.
_FORMAT_FIELD = re.compile(r"\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")


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

    A name that is some column's own header means that column (so ``{{ First_Name }}``
    and ``row['First_Name']`` agree when both ``First Name`` and ``First_Name`` exist);
    identifier forms take the names still free. Among equals the first column wins.
    ``row`` is never a column's variable: it is the dict of all columns.
    """
    pairs: list[tuple[int, str]] = []
    seen: set[str] = {"row"}
    for index, h in enumerate(header):
        if h and h not in seen:
            seen.add(h)
            pairs.append((index, h))
    for index, h in enumerate(header):
        name = identifier_for(h)
        if name and name not in seen:
            seen.add(name)
            pairs.append((index, name))
    return pairs


def closest_name(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate a person most likely meant by ``name`` (case, spaces and small typos), or None."""
    folded = {c.casefold().replace(" ", "_"): c for c in candidates}
    if name.casefold() in folded:
        return folded[name.casefold()]
    found = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.75)
    return folded[found[0]] if found else None


class MissingVariable(Exception):
    """A template used a variable the row does not have; the message suggests the closest column."""

    def __init__(self, name: str, columns: Sequence[str], variables: Sequence[str] = ()) -> None:
        self.name = name
        shown = ", ".join(repr(c) for c in columns[:12])
        if len(columns) > 12:
            shown += f" and {len(columns) - 12} more"
        guess = closest_name(name, list(variables) or list(columns))
        message = f"the template uses {{{{ {name} }}}} but there is no such column"
        if guess:
            message += f"; did you mean {{{{ {guess} }}}}? (the columns are {shown})"
        else:
            message += f"; the columns are {shown}"
        super().__init__(message)


class RenderError(Exception):
    """The template failed on one row for another reason (a filter on the wrong type, a bound breached)."""


class LimitExceeded(Exception):
    """A template asked for more than a message can need; the text says what, for a person."""


# --------------------------------------------------------------------------- sizes and budgets


_CONTAINERS = (list, tuple, set, frozenset, dict)


def _digits(number: int) -> int:
    return number.bit_length() * 30103 // 100000 + 1


def weight(value: object, limit: int = MAX_VALUE) -> int:
    """About how many characters ``value`` takes as text; counting stops soon after ``limit``.

    Containers are walked (a list of one long text repeated is as heavy as the
    text repeated), but never more than ``limit`` entries, so weighing is cheap.
    """
    kind = type(value)
    if kind is str:
        return len(value)  # type: ignore[arg-type]
    if kind is int:
        return _digits(value)  # type: ignore[arg-type]
    if kind is bool or kind is float or value is None:
        return 1
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    if isinstance(value, int):
        return _digits(value)
    if not isinstance(value, _CONTAINERS):
        return 1  # ranges, generators, macros, undefined: no text of their own until used
    total = 0
    stack: list[Any] = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, dict):
            total += 2 * len(item) + 1
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += len(item) + 1
            if total <= limit:
                stack.extend(item)
        else:
            total += weight(item, limit)
    return total


def _describe(value: object, size: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"the template computes a number too large to be a message (about {size:,} digits)"
    return (f"the template builds a value of about {size:,} characters; the limit is {MAX_VALUE:,} "
            "(an SMS of 10 parts holds 1,530)")


def _as_text(value: object) -> int:
    """The weight of a value about to become text, or LimitExceeded past MAX_VALUE."""
    if type(value) is str and len(value) <= MAX_VALUE:  # the common case, kept cheap
        return len(value)
    size = weight(value)
    if size > MAX_VALUE:
        raise LimitExceeded(_describe(value, size))
    return size


def _bounded(value: object) -> int:
    """The weight of a value an operation built, or LimitExceeded when it is more than a message can use.

    A text or number is held to MAX_VALUE. A list or dict only refers to values that
    already exist (``row|dictsort`` with one long cell built nothing long), so it is
    held to MAX_CHARS; it is weighed again at MAX_VALUE if it is ever made text.
    """
    if type(value) is str and len(value) <= MAX_VALUE:
        return len(value)
    if isinstance(value, _CONTAINERS):
        size = weight(value, MAX_CHARS)
        if size > MAX_CHARS:
            raise LimitExceeded(_describe(value, size))
        return size
    return _as_text(value)


def _bounded_input(value: object) -> None:
    """Refuse a value too heavy to hand to a filter or function: one built of many references to a
    long text (``[s, s, s, …]``) turns into text far larger than its source. Plain texts pass as
    they are (a long cell is data, and a filter's output is weighed anyway)."""
    if isinstance(value, _CONTAINERS) and weight(value, MAX_CHARS) > MAX_CHARS:
        raise LimitExceeded(
            f"the template hands a filter or function a value of more than {MAX_CHARS:,} characters"
        )


class _Budget:
    """What one row's render may still spend (see the module docstring)."""

    __slots__ = ("steps", "chars", "deadline")

    def __init__(self) -> None:
        self.steps = 0
        self.chars = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def charge(self, chars: int) -> None:
        self.steps += 1
        self.chars += chars
        if self.steps > MAX_STEPS:
            raise LimitExceeded(
                f"the template does too much work for one message (more than {MAX_STEPS:,} loop rounds "
                "and operations); check its loops"
            )
        if self.chars > MAX_CHARS:
            raise LimitExceeded(
                f"the template builds more than {MAX_CHARS:,} characters of text for one message; "
                "check its loops"
            )
        if not self.steps & 255 and time.monotonic() > self.deadline:
            raise LimitExceeded(f"the template took more than {MAX_SECONDS:g} s for one message; check its loops")


# --------------------------------------------------------------------------- checks made before an operation


def _size_arg(what: str, number: object) -> None:
    if isinstance(number, int) and not isinstance(number, bool) and abs(number) > MAX_VALUE:
        raise LimitExceeded(
            f"the template asks {what} for {number:,}; a message needs at most {MAX_VALUE:,}"
        )


def _estimate(what: str, size: float) -> None:
    if size > MAX_VALUE:
        raise LimitExceeded(
            f"the template's {what} would make about {size:,.0f} characters; the limit is {MAX_VALUE:,}"
        )


def _check_power(base: object, exponent: object) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if exponent > 10**9:  # even 2 ** exponent has 300 million digits (and exponent * log10 overflows)
            raise LimitExceeded("the template computes a number too large to be a message")
        digits = exponent * math.log10(abs(base))
        if digits > MAX_VALUE:
            shown = f" ({base:,} ** {exponent:,} would have about {digits:,.0f} digits)" if abs(base) < 10**12 else ""
            raise LimitExceeded(f"the template computes a number too large to be a message{shown}")


def _check_repeat(left: object, right: object) -> None:
    for sequence, times in ((left, right), (right, left)):
        if isinstance(times, int) and isinstance(sequence, (str, bytes, list, tuple)) and times > 0:
            limit = MAX_VALUE if isinstance(sequence, (str, bytes)) else MAX_CHARS  # as _bounded holds them
            size = weight(sequence, limit) * times
            if size > limit:
                raise LimitExceeded(
                    f"the template builds a value too long to be a message ({times:,} copies of "
                    f"{weight(sequence, limit):,} characters); the limit is {limit:,}"
                )
    if isinstance(left, int) and isinstance(right, int) and _digits(left) + _digits(right) > MAX_VALUE:
        raise LimitExceeded(_describe(0, _digits(left) + _digits(right)))


def _check_printf(fmt: str) -> None:
    """Refuse ``%``-formats with a width or precision no message can hold, or one computed at run time."""
    if "%" not in fmt:
        return
    for match in _PRINTF_SPEC.finditer(fmt):
        for number in match.groups():
            if number == "*":
                raise LimitExceeded("the template formats with a computed width (%*); write the width out")
            if number and (len(number) > 9 or int(number) > MAX_VALUE):
                raise LimitExceeded(f"the template formats with a width of {number}; the limit is {MAX_VALUE:,}")


def _check_format(fmt: str) -> None:
    """The same for ``str.format``: widths are written out and at most MAX_VALUE."""
    if "{" not in fmt:
        return
    for field in _FORMAT_FIELD.findall(fmt):
        spec = field[1:-1].partition(":")[2]
        if "{" in spec:
            raise LimitExceeded("the template formats with a computed width ({:{w}}); write the width out")
        for number in re.findall(r"\d+", spec):
            if len(number) > 9 or int(number) > MAX_VALUE:
                raise LimitExceeded(f"the template formats with a width of {number}; the limit is {MAX_VALUE:,}")


def _replaced_size(text: object, old: object, new: object, count: object = -1) -> None:
    if isinstance(text, (str, bytes)) and isinstance(old, type(text)) and isinstance(new, type(text)):
        hits = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        _estimate("replace()", len(text) + hits * (len(new) - len(old)))  # type: ignore[arg-type]


def _bounded_items(iterable: Iterable[Any], sep: int) -> list[Any]:
    """The items of ``iterable`` as a list, refusing them as soon as their text would be too long."""
    items: list[Any] = []
    total = 0
    for item in iterable:
        total += weight(item) + sep
        if total > MAX_VALUE:
            _estimate("join", total)
        items.append(item)
    return items


def _check_builtin_method(method: Any, args: tuple, kwargs: dict) -> tuple:
    """Pre-checks for methods of str, bytes and numbers; returns the (maybe materialised) arguments."""
    owner = method.__self__
    name = method.__name__
    for value in (*args, *kwargs.values()):
        _size_arg(f"{type(owner).__name__}.{name}()", value)
    if isinstance(owner, (str, bytes)):
        if name == "join" and args:
            args = (_bounded_items(args[0], len(owner)), *args[1:])
        elif name == "replace":
            _replaced_size(owner, *args[:3])
        elif name == "expandtabs":
            tab = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(tab, int):
                _estimate("expandtabs()", len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * tab)
        elif name == "translate" and args and isinstance(args[0], dict):
            longest = max((weight(v) for v in args[0].values()), default=1)
            _estimate("translate()", len(owner) * max(longest, 1))
    return args


# --------------------------------------------------------------------------- filters


def _check_filter(name: str, value: Any, args: tuple, kwargs: dict) -> tuple[Any, tuple]:
    """Pre-checks for the built-in filters whose output can be much larger than their input."""
    if name == "join":
        sep = args[0] if args else kwargs.get("d", "")
        value = _bounded_items(value, weight(sep))
    elif name == "replace":
        _replaced_size(str(value), *[str(a) if i < 2 else a for i, a in enumerate(args[:3])])
    elif name == "center":
        _size_arg("center()", args[0] if args else kwargs.get("width", 80))
    elif name == "indent":
        width = args[0] if args else kwargs.get("width", 4)
        step = width if isinstance(width, int) else weight(width)
        _size_arg("indent()", step)
        _estimate("indent()", len(str(value)) * 2 + (str(value).count("\n") + 1) * step)
    elif name == "wordwrap":
        width = args[0] if args else kwargs.get("width", 79)
        wrap = args[2] if len(args) > 2 else kwargs.get("wrapstring") or "\n"
        if isinstance(width, int) and width > 0:
            text = len(str(value))
            _estimate("wordwrap()", text + (text // width + 1) * weight(wrap))
    elif name in ("batch", "slice"):
        _size_arg(f"{name}()", args[0] if args else kwargs.get("linecount", kwargs.get("slices")))
    elif name == "format":
        _check_printf(str(value))
    elif name == "tojson":
        indent = args[0] if args else kwargs.get("indent")
        if isinstance(indent, int) and indent > MAX_JSON_INDENT:
            raise LimitExceeded(f"the template asks tojson for an indent of {indent:,}; the limit is {MAX_JSON_INDENT}")
    elif name == "sum":
        start = args[1] if len(args) > 1 else kwargs.get("start", 0)
        if isinstance(start, (list, tuple, str)):
            raise LimitExceeded("the template adds up lists with sum(); use a loop or join")
    return value, args


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with its inputs and output weighed and charged to the row's budget.

    Always ``pass_context``, which also stops Jinja from running it while compiling.
    """
    pass_arg = _PassArg.from_obj(func)

    @pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget: _Budget = context.budget  # type: ignore[attr-defined]
        _bounded_input(value)
        for arg in (*args, *kwargs.values()):
            _bounded_input(arg)
        value, args = _check_filter(name, value, args, kwargs)
        if pass_arg is _PassArg.context:
            result = func(context, value, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg is _PassArg.environment:
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        budget.charge(_bounded(result))
        return result

    bounded.__name__ = f"bounded_{name}"
    return bounded


@pass_environment
def _date_filter(env: BoundedEnvironment, value: Any, pattern: Any = dates.DEFAULT_DATE_PATTERN,
                 batchsms_shown: str = "the date filter") -> str:
    """``{{ Appointment | date("EEE d MMM") }}`` → ``Thu 3 Dec``, in the template's locale (see :mod:`.dates`)."""
    return dates.format_date(value, pattern, env.date_style, shown=batchsms_shown)


@pass_environment
def _time_filter(env: BoundedEnvironment, value: Any, pattern: Any = None,
                 batchsms_shown: str = "the time filter") -> str:
    """``{{ Appointment | time }}`` → ``9:30am``, in the template's locale (see :mod:`.dates`)."""
    return dates.format_time(value, pattern, env.date_style, shown=batchsms_shown)


@pass_context
def _loop_rounds(context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    """Wraps every ``{% for %}``'s iterable: each round is a step of the budget."""
    budget: _Budget = context.budget  # type: ignore[attr-defined]
    for item in iterable:
        budget.charge(1)
        yield item


@pass_context
def _concat(context: Context, parts: list[Any]) -> str:
    """The ``~`` operator (Jinja cannot intercept it): the parts weighed before, the text after."""
    budget: _Budget = context.budget  # type: ignore[attr-defined]
    for part in parts:
        _as_text(part)
    text = "".join([str(part) for part in parts])
    budget.charge(_bounded(text))
    return text


@pass_context
def _emit(context: Context, size: int) -> str:
    """Charges the literal text of an output inside a loop or macro, each time it is written."""
    context.budget.charge(size)  # type: ignore[attr-defined]
    return ""


@pass_context
def _finalize(context: Context, value: Any) -> Any:
    """Every ``{{ … }}`` written, weighed before it becomes text (pass_context: never folded)."""
    context.budget.charge(_as_text(value))  # type: ignore[attr-defined]
    return value


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_VALUE:
        raise LimitExceeded(
            f"the template asks for range() of {len(numbers):,} numbers; the limit is {MAX_VALUE:,}"
        )
    return numbers


class _Guard(NodeTransformer):
    """Rewrites a parsed template so that loops, ``~`` and repeated output go through the budget.

    It also renames ``self`` to ``alias`` when a column is named ``self`` (Jinja would
    otherwise give its own template reference, and the fast path the column).
    """

    def __init__(self, alias: str | None) -> None:
        self.alias = alias
        self.depth = 0  # inside a loop, macro or call block: output there may repeat
        self.dated = False  # the template uses the date or time filter
        self.patterns: list[tuple[int, Any]] = []  # (line, pattern) each constant date pattern

    def visit_Filter(self, node: nodes.Filter) -> nodes.Filter:
        """The date filters are told the expression they print, so a bad cell's error can name it.

        ``{{ Appointment | date }}`` becomes ``{{ Appointment | date(batchsms_shown="{{ Appointment | date }}") }}``.
        """
        if node.name not in _DATE_FILTERS:
            return cast(nodes.Filter, self.generic_visit(node))
        self.dated = True
        shown = f"{{{{ {_source(node.node)} | {node.name} }}}}" if node.node is not None else f"the {node.name} filter"
        keywords = cast(list[nodes.Keyword], node.kwargs)  # Jinja annotates them as Pair; its parser makes Keyword
        pattern = node.args[0] if node.args else next((k.value for k in keywords if k.key == "pattern"), None)
        if isinstance(pattern, nodes.Const):
            self.patterns.append((node.lineno, pattern.value))
        node = cast(nodes.Filter, self.generic_visit(node))
        if all(k.key != _SHOWN for k in keywords):  # given twice, Python would refuse the compiled call
            keywords.append(nodes.Keyword(_SHOWN, nodes.Const(shown, lineno=node.lineno), lineno=node.lineno))
        return node

    def _filter(self, node: nodes.Expr, name: str, lineno: int) -> nodes.Filter:
        return nodes.Filter(node, name, [], [], None, None, lineno=lineno)

    def visit_For(self, node: nodes.For) -> nodes.For:
        node.iter = self._filter(self.visit(node.iter), _LOOP, node.lineno)
        node.target = self.visit(node.target)
        if node.test is not None:
            node.test = self.visit(node.test)
        self.depth += 1
        node.body = [self.visit(child) for child in node.body]
        self.depth -= 1
        node.else_ = [self.visit(child) for child in node.else_]
        return node

    def _repeated(self, node: nodes.Node) -> nodes.Node:
        self.depth += 1
        node = self.generic_visit(node)
        self.depth -= 1
        return node

    visit_Macro = visit_CallBlock = visit_Block = _repeated

    def visit_Concat(self, node: nodes.Concat) -> nodes.Filter:
        parts = [self.visit(child) for child in node.nodes]
        return self._filter(nodes.List(parts, lineno=node.lineno), _CONCAT, node.lineno)

    def visit_Name(self, node: nodes.Name) -> nodes.Name:
        if self.alias and node.name == "self":
            return nodes.Name(self.alias, node.ctx, lineno=node.lineno)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Output:
        node = self.generic_visit(node)
        literal = sum(len(child.data) for child in node.nodes if isinstance(child, nodes.TemplateData))
        if self.depth and literal:
            node.nodes.insert(0, self._filter(nodes.Const(literal, lineno=node.lineno), _EMIT, node.lineno))
        return node


def _source(node: nodes.Node | None) -> str:
    """The template text an expression was most likely written as (Jinja keeps lines, not columns)."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Const):
        return repr(node.value)
    if isinstance(node, nodes.Getitem):
        return f"{_source(node.node)}[{_source(node.arg)}]"
    if isinstance(node, nodes.Getattr):
        return f"{_source(node.node)}.{node.attr}"
    if isinstance(node, nodes.Filter):
        args = "(…)" if node.args or node.kwargs else ""
        return f"{_source(node.node)} | {node.name}{args}"
    return "…"


class _BoundedContext(Context):
    """A render's context: it carries that render's budget (a fresh one for every row)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = _Budget()


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with the bounds of the module docstring.

    ``intercepted_binops`` routes ``*``, ``**``, ``+`` and ``%`` through :meth:`call_binop`
    (and Jinja never folds an intercepted operator while compiling); every call goes
    through :meth:`call`; filters are wrapped by :func:`_bounded_filter`, batchsms's own
    ``date`` and ``time`` (:mod:`.dates`) as much as Jinja's.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    context_class = _BoundedContext

    def __init__(self, locale: Locale | str | None = None, country: str = DEFAULT_COUNTRY) -> None:
        super().__init__(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
                         finalize=_finalize, optimized=False)
        self.globals["range"] = _bounded_range
        self.globals.pop("lipsum", None)  # lipsum(n=10**6): nothing a text message needs
        filters = {**self.filters, "date": _date_filter, "time": _time_filter}
        self.filters = {name: _bounded_filter(name, func) for name, func in filters.items()}
        self.filters.update({_LOOP: _loop_rounds, _CONCAT: _concat, _EMIT: _emit})
        self.locale, self.country = locale, country
        self._date_style: dates.DateStyle | None = None

    @property
    def date_style(self) -> dates.DateStyle:
        """The locale the date filters print in, loaded on first use: a template without them never loads Babel.

        ValueError for a locale Babel does not know.
        """
        if self._date_style is None:
            locale = self.locale
            if locale is None:
                locale = dates.locale_for(self.country, None)
            elif isinstance(locale, str):
                locale = dates.locale_for("", locale)
            self._date_style = dates.DateStyle.of(locale)
        return self._date_style

    def render(self, template: jinja2.Template, context: dict[str, Any]) -> str:
        """The template's text for ``context``, streamed and cut off past MAX_OUTPUT characters."""
        pieces: list[str] = []
        size = 0
        try:
            # Template.generate() without its extra generator layer: the same pieces, the same errors.
            for piece in template.root_render_func(template.new_context(context)):
                size += len(piece)
                if size > MAX_OUTPUT:
                    raise LimitExceeded(
                        f"the message is longer than {MAX_OUTPUT:,} characters (an SMS of 10 parts holds "
                        "at most 1,530); check the template's loops"
                    )
                pieces.append(piece)
        except Exception:
            self.handle_exception()  # re-raises with the template's own line numbers in the traceback
        return "".join(pieces)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget: _Budget = context.budget  # type: ignore[attr-defined]
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_repeat(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_printf(left)
            _as_text(right)
        result = self.binop_table[operator](left, right)
        budget.charge(_bounded(result))
        return result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        budget: _Budget = context.budget  # type: ignore[attr-defined]
        for arg in args:
            _bounded_input(arg)
        for key, arg in kwargs.items():
            if key not in _JINJA_KWARGS:
                _bounded_input(arg)
        if isinstance(obj, types.BuiltinMethodType) and isinstance(
            getattr(obj, "__self__", None), (str, bytes, int, float)
        ):
            args = _check_builtin_method(obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        budget.charge(_bounded(result))
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is not None:
            _check_format(value.__self__)
        return wrapper


# --------------------------------------------------------------------------- the template


def _plain_renderer(literals: list[str], indexes: list[int]) -> Callable[[Sequence[str]], str]:
    """``cells -> text`` for a plain substitution: one ``str.join`` over a tuple.

    A function per number of columns up to four, its pieces bound as default
    arguments (local loads): within ~5% of the ``eval``-built lambda this replaced
    (timeit, two columns: 83 vs 81 ns), where a loop over the pieces costs 2-3x.
    More columns interleave the cells into a copy of the literals (about twice
    the lambda's time, and rare).
    """
    join = "".join
    count = len(indexes)
    if count == 0:
        text = literals[0]
        return lambda c, text=text: text
    if count == 1:
        k0, k1 = literals
        (i0,) = indexes
        return lambda c, k0=k0, k1=k1, i0=i0, join=join: join((k0, c[i0], k1))
    if count == 2:
        k0, k1, k2 = literals
        i0, i1 = indexes
        return lambda c, k0=k0, k1=k1, k2=k2, i0=i0, i1=i1, join=join: join((k0, c[i0], k1, c[i1], k2))
    if count == 3:
        k0, k1, k2, k3 = literals
        i0, i1, i2 = indexes
        return lambda c, k0=k0, k1=k1, k2=k2, k3=k3, i0=i0, i1=i1, i2=i2, join=join: join(
            (k0, c[i0], k1, c[i1], k2, c[i2], k3))
    if count == 4:
        k0, k1, k2, k3, k4 = literals
        i0, i1, i2, i3 = indexes
        return lambda c, k0=k0, k1=k1, k2=k2, k3=k3, k4=k4, i0=i0, i1=i1, i2=i2, i3=i3, join=join: join(
            (k0, c[i0], k1, c[i1], k2, c[i2], k3, c[i3], k4))
    base: list[str] = [""] * (2 * count + 1)
    base[0::2] = literals
    cells_of = operator.itemgetter(*indexes)

    def render(cells: Sequence[str], base: list[str] = base, cells_of: Any = cells_of) -> str:
        parts = base.copy()
        parts[1::2] = cells_of(cells)
        return join(parts)

    return render


class MessageTemplate:
    """A compiled template plus the header it is rendered against.

    Names, one rule for both renderers (the fast plain substitution and Jinja):
    a variable named like a column's header is that column, even ``self``,
    ``loop`` or ``range`` (a column wins over Jinja's own names); a header that is
    not an identifier is also offered in identifier form (``First Name`` →
    ``First_Name``) when no column has that header; when two columns give the same
    name the **first column wins**, for ``{{ Name }}`` and ``row['Name']`` alike.
    ``row`` is always the dict of every column by header. Headers that are Jinja
    words (``True``, ``none``, ``and``, ``if`` …) are constants or syntax in a
    template, so such a column is reached as ``row['True']``.

    ``locale`` (a Babel ``Locale`` or a name like ``"en_AU"``; None is the locale of
    :data:`DEFAULT_COUNTRY`, as the CLI's defaults give) is what the ``date`` and
    ``time`` filters print in and how they read ``3/12/2026``. Cells stay text: a cell
    printed plainly is what the user sees, and only the filters read it as a date.
    """

    def __init__(self, source: str, header: Sequence[str], name: str = "<--text>",
                 locale: Locale | str | None = None, country: str = DEFAULT_COUNTRY) -> None:
        self.source = source
        self.name = name
        self.header = list(header)
        self.locale, self.country = locale, country
        if len(source) > MAX_SOURCE:
            raise TemplateError(
                f"{name}: the template is {len(source):,} characters long; a message template may have "
                f"at most {MAX_SOURCE:,}"
            )
        self._pairs = variable_names(self.header)
        first: dict[str, int] = {}
        for index, h in enumerate(self.header):
            first.setdefault(h, index)
        self._row_keys = list(first.items())  # header -> its first column, for row['...']
        names = {n for _, n in self._pairs}
        self._self_alias: str | None = None
        if "self" in names:
            alias = "batchsms_self_column"
            while alias in names:
                alias += "_"
            self._self_alias = alias
        self._env = BoundedEnvironment(locale, country)
        try:
            tree = self._env.parse(source)
            self._plain_parts = self._plain_substitution(tree)
            self._bare = self._bare_variables(tree)
            guard = _Guard(self._self_alias)
            tree = guard.visit(tree)
            if guard.dated:
                self._check_dates(guard.patterns)
            tree.set_environment(self._env)
            code = self._env.compile(tree, filename=name)
            self._template = self._env.template_class.from_code(self._env, code, self._env.make_globals(None))
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{name}:{exc.lineno}: template syntax error: {exc.message}"
                                f"{self._syntax_hint(source, exc)}") from exc
        except (RecursionError, MemoryError, SyntaxError) as exc:
            raise TemplateError(
                f"{name}: the template is nested too deeply to compile ({type(exc).__name__}); simplify it"
            ) from None
        #: ``cells -> text`` when the template only puts columns into text (it cannot fail), else None.
        self.render_plain = _plain_renderer(*self._plain_parts) if self._plain_parts else None
        if self.render_plain is None:
            self._trial()

    def _check_dates(self, patterns: list[tuple[int, Any]]) -> None:
        """A template that prints dates: its locale and its written-out patterns are checked once, when it
        is loaded, instead of failing on every row."""
        try:
            self._env.date_style  # noqa: B018 - loads the locale (and Babel) now
        except ValueError as exc:
            raise TemplateError(f"{self.name}: {exc}") from None
        except ImportError:
            raise TemplateError(f"{self.name}: the date and time filters need Babel (pip install babel)") from None
        for line, pattern in patterns:
            try:
                dates.check_pattern(pattern)
            except dates.NotADate as exc:
                raise TemplateError(f"{self.name}:{line}: {exc}") from None

    def _syntax_hint(self, source: str, exc: jinja2.TemplateSyntaxError) -> str:
        """``{{ First Name }}`` is a syntax error to Jinja: say which variable the person meant."""
        for match in re.finditer(r"\{\{\s*([^{}|]+?)\s*\}\}", source):
            words = match.group(1)
            if " " in words and not re.search(r"[^\w ]", words):
                meant = identifier_for(words)
                if meant and meant in {n for _, n in self._pairs}:
                    return f"; did you mean {{{{ {meant} }}}}? A column whose header has spaces is written with _"
        return ""

    def blank_variables(self, cells: Sequence[str]) -> list[str]:
        """The variables printed as they are (``{{ First_Name }}``) whose cell is empty on this row.

        Such a row reads "Hi , …". A variable behind a filter or inside a tag (``default``,
        ``if``) is the template's own business and is not named.
        """
        return [name for index, name in self._bare if not cells[index].strip()] if self._bare else []

    def columns_of_variables(self) -> dict[str, str]:
        """Each variable name and the header of the column it reads."""
        return {name: self.header[index] for index, name in self._pairs}

    def _bare_variables(self, tree: nodes.Template) -> list[tuple[int, str]]:
        """The columns printed bare at the template's top level: ``{{ Name }}`` outside any tag."""
        index_of = {name: index for index, name in self._pairs}
        bare: dict[str, int] = {}
        for node in tree.body:
            if isinstance(node, nodes.Output):
                for part in node.nodes:
                    if isinstance(part, nodes.Name) and part.ctx == "load" and part.name in index_of:
                        bare.setdefault(part.name, index_of[part.name])
        return [(index, name) for name, index in bare.items()]

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

    def _context(self, cells: Sequence[str]) -> dict[str, Any]:
        context: dict[str, Any] = {name: cells[index] for index, name in self._pairs}
        if self._self_alias is not None:
            context[self._self_alias] = context["self"]
        context["row"] = {h: cells[index] for h, index in self._row_keys}
        return context

    def _line(self, exc: BaseException) -> int | None:
        """The template line an error was raised on (Jinja rewrites tracebacks to template lines)."""
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == self.name]
        return lines[-1] if lines else None

    def _trial(self) -> None:
        """Render once with every cell empty: a bound breached even then is the template's fault."""
        try:
            self._env.render(self._template, self._context([""] * len(self.header)))
        except LimitExceeded as exc:
            line = self._line(exc)
            where = f"{self.name}:{line}" if line else self.name
            raise TemplateError(f"{where}: {exc}") from None
        except Exception:  # noqa: S110 - other errors depend on the data: reported per row
            pass

    def __reduce__(self):
        """Pickle as source, header, name and locale name (compiled Jinja templates do not pickle)."""
        locale = self.locale if self.locale is None or isinstance(self.locale, str) else str(self.locale)
        return (MessageTemplate, (self.source, self.header, self.name, locale, self.country))

    @classmethod
    def from_file(cls, path: str | Path, header: Sequence[str], locale: Locale | str | None = None,
                  country: str = DEFAULT_COUNTRY) -> MessageTemplate:
        path = Path(path)
        try:
            source = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise TemplateError(f"{path}: no such template file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"{path}: cannot be read as UTF-8 text ({exc})") from exc
        return cls(source, header, name=str(path), locale=locale, country=country)

    def render(self, cells: Sequence[str]) -> str:
        """The text for one row; raises MissingVariable or RenderError."""
        if self.render_plain is not None:
            return self.render_plain(cells)
        try:
            return self._env.render(self._template, self._context(cells))
        except LimitExceeded as exc:
            line = self._line(exc)
            raise RenderError(f"{exc} (line {line} of the template)" if line else str(exc)) from None
        except jinja2.UndefinedError as exc:
            match = re.search(r"'([^']+)' is undefined", str(exc))
            if match:
                raise MissingVariable(match.group(1), self.header, [n for _, n in self._pairs]) from None
            raise RenderError(f"template error: {exc}") from None
        except jinja2.TemplateError as exc:
            raise RenderError(f"template error: {exc}") from None
        except dates.NotADate as exc:  # a cell the date filters cannot read: the message says what to write
            raise RenderError(str(exc)) from None
        except Exception as exc:  # a filter applied to a value it cannot take
            raise RenderError(f"template error: {type(exc).__name__}: {exc}") from None
