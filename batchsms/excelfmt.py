"""Show a number the way Excel shows it under the cell's number format: ``$#,##0.00`` and 1234.5 → ``$1,234.50``.

A workbook stores 1234.5 and a format code; the person sees ``$1,234.50``, and a text that
says "you owe 1234.5" is not what they meant. The same holds for ``0%`` (0.15 → ``15%``)
and, worse, for phone numbers typed into number cells: 412345678 under ``0000000000``
is ``0412345678`` on screen, and the leading zero decides which number gets texted.

Why this module and not a library: the Python ports that exist were tried on the cases
below. ``ssf`` 0.2.2 (2020, the port of SheetJS SSF) no longer starts with today's Babel
(KeyError 'decimal'); ``excel-text`` 1.0.0 (2023, one release) gives ``99.100`` for 99.999
under ``0.00`` and ``1,234`` for 1234.5 under ``#,##0`` and refuses ``[Red]``, ``[$€-407]``
and four sections; ``q2numfmt`` 0.1.1 drops quoted text, leading zeros and ``"+"``.
Babel's number patterns look alike but are another language (half-even rounding, no
``_``/``*``/``\\``/sections/conditions). So the subset a contact sheet uses is written out
here, small and exact, and anything outside it is refused (``compile_format`` returns
None, ``NumberFormat.format`` returns None) so the caller keeps the General text: a
number is shown plainly rather than wrongly.

Supported (each section of ``pos;neg;zero;text``):

- digit placeholders ``0`` ``#`` ``?``, the decimal point, ``,`` as thousands separator
  (``#,##0``) and as scaling by 1,000 after the last digit (``0.0,,"M"``), ``%`` (x100),
  scientific ``0.00E+00`` (one integer digit), ``General`` inside a section;
- text: ``"quoted"``, ``\\x`` escapes, ``[$€-407]`` currency tags (the text before the
  ``-``; a bare locale tag such as ``[$-409]`` shows nothing), and ``$ - + ( ) : ! ^ & ' ~
  { } < > =``, spaces and currency signs (``€ £ ¥``) written unquoted;
- ``_x`` (a space the width of x) and ``*x`` (fill to the column's width) take no part in
  the text at its ends, where they only align a column (``#,##0.00_)`` shows ``1,234.50``,
  and accounting's zero ``_-* "-"??_-`` shows ``-``); inside the text ``_x`` is one space
  and ``*x`` nothing;
- sections: one (a negative gets ``-`` in front), two (negatives take the second, without
  a sign), three (zero takes the third), four (the fourth is for text); empty sections show
  nothing; colours (``[Red]``, ``[Color10]``) are dropped; conditions ``[<1000]``,
  ``[>=100]``, ``[=0]``, ``[<>5]`` choose the section for values of zero or more;
- digits fill placeholders right to left, across text between them, extra digits going to
  the first (``(000) 000-0000``, ``0000 000 000``); rounding is Excel's: the value's 15
  significant digits, rounded half away from zero (2.675 under ``0.00`` is ``2.68``).

Not formatted (the General text is kept): dates and times (``y m d h s``, ``AM/PM``,
``[h]``: read as dates elsewhere), fractions (``# ?/?``), ``@`` on a number, engineering
notation (``##0.0E+0``), unquoted letters, ``[DBNum1]``-style and non-Latin-digit locale
tags, a negative value under a format with conditions, a negative value that rounds to
zero, and text cells (shown as typed). Separators are always ``,`` for thousands and ``.``
for decimals (as an English-language Excel shows them; a German one shows ``1.234,50``).
"""

from __future__ import annotations

import decimal
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

#: Built-in formats that ECMA-376 (Part 1, 18.8.30) fixes for every locale, by numFmtId.
#: The others (5-8 and 41-44 currency and accounting, 23-36 and 50-81 East Asian) depend on
#: the locale of the Excel that shows them, so a file that names them without writing the
#: code out is shown as General; dates (14-22, 45-47) are read as dates elsewhere.
BUILTIN: dict[int, str] = {
    0: "General", 1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00", 9: "0%", 10: "0.00%", 11: "0.00E+00",
    12: "# ?/?", 13: "# ??/??", 14: "mm-dd-yy", 15: "d-mmm-yy", 16: "d-mmm", 17: "mmm-yy", 18: "h:mm AM/PM",
    19: "h:mm:ss AM/PM", 20: "h:mm", 21: "h:mm:ss", 22: "m/d/yy h:mm", 37: "#,##0 ;(#,##0)",
    38: "#,##0 ;[Red](#,##0)", 39: "#,##0.00;(#,##0.00)", 40: "#,##0.00;[Red](#,##0.00)", 45: "mm:ss",
    46: "[h]:mm:ss", 47: "mmss.0", 48: "##0.0E+0", 49: "@",
}

_PLAIN = frozenset("$-+():!^&'~{}<>= ")
_COLOURS = frozenset({"black", "blue", "cyan", "green", "magenta", "red", "white", "yellow"})
_CONDITION = re.compile(r"(<=|>=|<>|<|>|=)\s*(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)")
_LOCALE = re.compile(r"[0-9A-Fa-f]{1,4}|x-[A-Za-z0-9-]+")
_DATE_LETTERS = frozenset("yYmMdDhHsSeEgGbBaA")
_INF = float("inf")
_CONTEXT = decimal.Context(prec=400, rounding=decimal.ROUND_HALF_UP, Emax=999_999, Emin=-999_999)


class Unsupported(ValueError):
    """A format code (or a part of one) this module does not show exactly."""


# --------------------------------------------------------------------------- tokens

# A section is a list of tokens: ("lit", text), ("pad", ""), ("fill", ""), ("digit", "0"|"#"|"?"),
# ("point", "."), ("comma", ","), ("percent", "%"), ("exp", "E+"|"E-"|"e+"|"e-"), ("general", ""), ("text", "@").


def _tokens(code: str) -> tuple[list[list[tuple[str, str]]], list[tuple[str, float] | None]]:
    """The sections of ``code`` as tokens, and each section's condition; Unsupported when it is not ours."""
    sections: list[list[tuple[str, str]]] = [[]]
    conditions: list[tuple[str, float] | None] = [None]
    i, n = 0, len(code)
    while i < n:
        ch = code[i]
        out = sections[-1]
        if ch == ";":
            sections.append([])
            conditions.append(None)
        elif ch == '"':
            close = code.find('"', i + 1)
            if close < 0:
                raise Unsupported("an unclosed quote")
            out.append(("lit", code[i + 1:close]))
            i = close
        elif ch == "\\":
            if i + 1 >= n:
                raise Unsupported("a trailing backslash")
            out.append(("lit", code[i + 1]))
            i += 1
        elif ch in "_*":
            if i + 1 >= n:
                raise Unsupported(f"a trailing {ch}")
            out.append(("pad" if ch == "_" else "fill", ""))
            i += 1
        elif ch == "[":
            close = code.find("]", i)
            if close < 0:
                raise Unsupported("an unclosed [")
            tag = code[i + 1:close]
            condition = _bracket(tag, out)
            if condition is not None:
                if conditions[-1] is not None:
                    raise Unsupported("two conditions in one section")
                conditions[-1] = condition
            i = close
        elif ch in "0#?":
            out.append(("digit", ch))
        elif ch == ".":
            out.append(("point", "."))
        elif ch == "@":
            out.append(("text", "@"))  # the text of a text cell: only the fourth section may show it
        elif ch == ",":
            out.append(("comma", ","))
        elif ch == "%":
            out.append(("percent", "%"))
        elif ch in "Ee" and i + 1 < n and code[i + 1] in "+-":
            out.append(("exp", code[i:i + 2]))
            i += 1
        elif code[i:i + 7].lower() == "general":
            out.append(("general", ""))
            i += 6
        elif ch in _DATE_LETTERS:
            raise Unsupported("a date or time")
        elif ch in _PLAIN or unicodedata.category(ch) == "Sc":
            out.append(("lit", ch))
        else:
            raise Unsupported(f"{ch!r} outside quotes")
        i += 1
    if len(sections) > 4:
        raise Unsupported("more than four sections")
    return sections, conditions


def _bracket(tag: str, out: list[tuple[str, str]]) -> tuple[str, float] | None:
    """A ``[...]`` tag: a currency or locale (text), a colour (nothing), or a condition (returned)."""
    low = tag.lower()
    if tag.startswith("$"):
        text, dash, locale = tag[1:].partition("-")
        if dash and not _LOCALE.fullmatch(locale):
            raise Unsupported(f"the locale tag [{tag}]")
        if text:
            out.append(("lit", text))
        return None
    if low in _COLOURS or re.fullmatch(r"color\s*\d{1,2}", low):
        return None
    condition = _CONDITION.fullmatch(tag.strip())
    if condition is not None:
        return condition.group(1), float(condition.group(2))
    if low and set(low) <= set("hms"):
        raise Unsupported("an elapsed time")
    raise Unsupported(f"the tag [{tag}]")


# --------------------------------------------------------------------------- one section


def _group(digits: str) -> str:
    """``digits`` with a comma between each group of three, from the right."""
    if digits[0] != "0" and digits.isdigit():
        return f"{int(digits):,}"
    head = len(digits) % 3 or 3
    return ",".join([digits[:head]] + [digits[k:k + 3] for k in range(head, len(digits), 3)])


_BLANK = {"0": "0", "#": "", "?": " "}
_PAD, _FILL = "\x00", "\x01"  # stand-ins while a text is built: a space inside it, nothing at its ends


@dataclass
class _Section:
    """One section, laid out for showing a value of zero or more."""

    tokens: list[tuple[str, str]]  # literals, pads and fills in place; the number as ("number", "")
    before: list[tuple[str, str]]  # the number's parts, in order: digits and literals before the point
    after: str  # decimal placeholders ("00", "0#", ...)
    point: bool  # the section shows a decimal point
    grouping: bool
    scale: int  # power of ten the value is multiplied by (2 a %, -3 a trailing comma)
    exponent: tuple[str, int] | None  # ("E+", min digits) for scientific notation
    general: bool  # the section shows the number as General
    shows_number: bool

    def __post_init__(self) -> None:
        # Worked out once, so a cell costs about a microsecond (a sheet may hold 200,000 of them).
        at = next((i for i, (kind, _) in enumerate(self.tokens) if kind == "number"), len(self.tokens))
        ends = _PAD + _FILL + " "
        self.left = _resolve(_join(self.tokens[:at]).lstrip(ends))
        self.right = _resolve(_join(self.tokens[at + 1:]).rstrip(ends))
        self.slots = [i for i, (kind, _) in enumerate(self.before) if kind == "digit"]
        self.plain = len(self.slots) == len(self.before)  # no text among the whole digits
        marks = [text for kind, text in self.before if kind == "digit"]
        self.blanks = ["".join(_BLANK[m] for m in marks[:k]) for k in range(len(marks) + 1)]
        self.zeros = "0" * len(self.after)
        self.trims = "#" in self.after or "?" in self.after
        self.quantum = decimal.Decimal(1).scaleb(-len(self.after))
        self.fast = self.scale == 0 and self.exponent is None

    def show(self, value: float, general: Callable[[float], str]) -> str:
        """The section's text for ``value`` (zero or more)."""
        if self.general:
            number = general(value)
        elif not self.shows_number:
            number = ""
        elif self.exponent is None and value < 1e15:
            if self.fast and value.is_integer():
                number = self._whole(str(int(value)) if value else "") + self._fraction(self.zeros)
            else:
                whole, fraction = self._rounded(value)
                number = self._whole(whole) + self._fraction(fraction)
        else:
            number = self._number(decimal.Decimal(format(value, ".15g")))
        if number and number[0] != " " and number[-1] != " ":
            return self.left + number + self.right
        parts = [number if kind == "number" else (text if kind == "lit" else (_PAD if kind == "pad" else _FILL))
                 for kind, text in self.tokens]
        return _resolve("".join(parts).strip(_PAD + _FILL + " "))

    def rounds_to_zero(self, value: float) -> bool:
        """Whether ``value`` (not zero) shows as zero in this section."""
        if self.general or self.exponent is not None:
            return False
        exact = decimal.Decimal(format(value, ".15g"))
        if self.scale:
            exact = exact.scaleb(self.scale, _CONTEXT)
        return not exact.quantize(self.quantum, context=_CONTEXT)

    def _rounded(self, value: float) -> tuple[str, str]:
        """Whole digits (no leading zeros) and the decimals of ``value`` (under 10^15) rounded as Excel rounds.

        Excel rounds the value's 15 significant digits half away from zero. Unless those
        digits end exactly on a half at the place rounded to, that is what rounding the
        binary value gives (it lies within half a unit of the 15th digit of them), and
        Python's own formatting does that in a fraction of ``Decimal``'s time.
        """
        text = format(value, ".15g")
        places = len(self.after)
        if "e" not in text:
            whole, _, fraction = text.partition(".")
            if self.scale:  # % and trailing commas move the point: exact on the digits
                digits, point = whole + fraction, len(whole) + self.scale
                if point <= 0:
                    whole, fraction = "", "0" * -point + digits
                else:
                    whole, fraction = digits[:point].ljust(point, "0"), digits[point:]
                fraction = fraction.rstrip("0")
            if len(fraction) <= places:
                return whole.lstrip("0"), fraction + "0" * (places - len(fraction))
            if not self.scale and (fraction[places] != "5" or len(fraction) > places + 1):
                whole, _, fraction = format(value, f".{places}f").partition(".")
                return whole.lstrip("0"), fraction
        exact = decimal.Decimal(text)
        if self.scale:
            exact = exact.scaleb(self.scale, _CONTEXT)
        whole, _, fraction = f"{exact.quantize(self.quantum, context=_CONTEXT):f}".partition(".")
        return whole.lstrip("0"), fraction

    def _number(self, value: decimal.Decimal) -> str:
        if self.scale:
            value = value.scaleb(self.scale, _CONTEXT)
        exponent = ""
        if self.exponent is not None:
            sign, width = self.exponent
            power = 0
            if value:
                power = value.adjusted()
                if value.scaleb(-power, _CONTEXT).quantize(self.quantum, context=_CONTEXT) >= 10:
                    power += 1  # 9.999 shown as 1.00E+01
                value = value.scaleb(-power, _CONTEXT)
            mark = "-" if power < 0 else ("+" if sign[1] == "+" else "")
            exponent = f"{sign[0]}{mark}{abs(power):0{width}d}"
        rounded = value.quantize(self.quantum, context=_CONTEXT)
        whole, _, fraction = f"{rounded:f}".partition(".")
        return self._whole(whole.lstrip("0")) + self._fraction(fraction) + exponent

    def _whole(self, digits: str) -> str:
        """The whole part: digits fill the placeholders from the right, extra ones go to the first."""
        slots = self.slots
        if not slots:
            return digits
        if self.plain:
            missing = len(slots) - len(digits)
            text = self.blanks[missing] + digits if missing > 0 else digits
            return _group(text) if self.grouping and text else text
        shown = [text for _, text in self.before]
        spare = len(digits) - len(slots)
        for k, i in enumerate(slots):
            if k == 0 and spare > 0:
                shown[i] = digits[:spare + 1]
            elif k + spare >= 0:
                shown[i] = digits[k + spare]
            else:
                shown[i] = _BLANK[self.before[i][1]]
        return "".join(shown)

    def _fraction(self, digits: str) -> str:
        """The decimals: trailing zeros under # vanish and under ? become spaces."""
        if not self.point:
            return ""
        if not self.trims:
            return "." + digits
        kept = list(digits)
        for i in range(len(kept) - 1, -1, -1):
            if kept[i] != "0" or self.after[i] == "0":
                break
            kept[i] = _BLANK[self.after[i]]
        return "." + "".join(kept)


def _join(tokens: list[tuple[str, str]]) -> str:
    """Literal tokens as text, pads and fills as their stand-ins."""
    return "".join(text if kind == "lit" else (_PAD if kind == "pad" else _FILL) for kind, text in tokens)


def _resolve(text: str) -> str:
    """Stand-ins left inside a text: a pad is one space, a fill nothing."""
    if _PAD in text or _FILL in text:
        return text.replace(_PAD, " ").replace(_FILL, "")
    return text


def _section(tokens: list[tuple[str, str]]) -> _Section:
    """Lay one section out: where the number stands, its placeholders, scaling and grouping."""
    number_kinds = {"digit", "point", "comma", "exp"}
    positions = [i for i, (kind, _) in enumerate(tokens) if kind in number_kinds]
    general = any(kind == "general" for kind, _ in tokens)
    percents = sum(kind == "percent" for kind, _ in tokens)
    if any(kind == "text" for kind, _ in tokens):
        raise Unsupported("@ (a text cell's text) in a number's section")
    if general and (positions or percents):
        raise Unsupported("General beside digit placeholders")
    if not positions:
        laid = [("number", "") if kind == "general" else (("lit", "%") if kind == "percent" else (kind, text))
                for kind, text in tokens]
        if any(kind == "comma" for kind, _ in tokens):
            raise Unsupported("a comma outside a number")
        return _Section(laid, [], "", False, False, 2 * percents, None, general, False)
    first, last = positions[0], positions[-1]
    inner = tokens[first:last + 1]
    if any(kind not in number_kinds | {"lit"} for kind, _ in inner):
        raise Unsupported("padding, fill or % inside the number")
    kinds = [kind for kind, _ in inner]
    if kinds.count("point") > 1 or kinds.count("exp") > 1:
        raise Unsupported("two decimal points or exponents")
    end = kinds.index("exp") if "exp" in kinds else len(inner)
    exponent = None
    if end < len(inner):
        tail = inner[end + 1:]
        if not tail or any(t != ("digit", "0") for t in tail):
            raise Unsupported("an exponent that is not 0s")
        exponent = (inner[end][1], len(tail))
    body = inner[:end]
    point = next((k for k, (kind, _) in enumerate(body) if kind == "point"), len(body))
    before, after_tokens = body[:point], body[point + 1:]
    scale = 2 * percents
    # Commas right after the last digit placeholder scale by 1,000 each; between digits they group.
    while before and before[-1][0] == "comma":
        before.pop()
        scale -= 3
    while after_tokens and after_tokens[-1][0] == "comma":
        after_tokens.pop()
        scale -= 3
    grouping = any(kind == "comma" for kind, _ in before)
    if any(kind != "digit" for kind, _ in after_tokens):
        raise Unsupported("text or commas among the decimals")
    whole_digits = [text for kind, text in before if kind == "digit"]
    if grouping:
        if any(kind == "lit" for kind, _ in before) or "?" in whole_digits:
            raise Unsupported("grouping with text or ? among the digits")
        if before[0][0] != "digit" or before[-1][0] != "digit":
            raise Unsupported("a comma at the edge of the digits")
        before = [t for t in before if t[0] != "comma"]
    elif any(kind == "comma" for kind, _ in before):
        raise Unsupported("a comma that neither groups nor scales")
    if "0" in whole_digits and "#" in whole_digits[whole_digits.index("0"):]:
        raise Unsupported("# after 0 among the whole digits")
    if exponent is not None and (len(whole_digits) != 1 or any(kind == "lit" for kind, _ in before)):
        raise Unsupported("scientific notation with more than one integer digit")
    after = "".join(text for _, text in after_tokens)
    laid = [*tokens[:first], ("number", ""), *tokens[last + 1:]]
    laid = [("lit", "%") if kind == "percent" else (kind, text) for kind, text in laid]
    if any(kind == "general" for kind, _ in laid):
        raise Unsupported("General beside digit placeholders")
    return _Section(laid, before, after, point < len(body), grouping, scale, exponent, False, True)


# --------------------------------------------------------------------------- the format


def _holds(condition: tuple[str, float], value: float) -> bool:
    op, limit = condition
    return {"<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit,
            "=": value == limit, "<>": value != limit}[op]


class NumberFormat:
    """A compiled format code: ``format(value)`` is the text Excel shows, or None to keep General."""

    def __init__(self, code: str, sections: list[_Section], conditions: list[tuple[str, float] | None],
                 general: Callable[[float], str]) -> None:
        self.code = code
        self.sections = sections[:3]  # a fourth section is for text cells
        self.conditions = conditions[:3]
        self._general = general
        self.conditional = any(c is not None for c in self.conditions)

    def __repr__(self) -> str:
        return f"NumberFormat({self.code!r})"

    def format(self, value: float | int) -> str | None:
        """The text Excel shows for the number ``value``; None when this module cannot show it exactly."""
        value = float(value)
        if value != value or value in (_INF, -_INF):
            return None
        section, signed = self._choose(value)
        if section is None:
            return None
        text = section.show(-value if value < 0 else value, self._general)
        if signed and value < 0:
            if not (section.shows_number or section.general) or section.rounds_to_zero(-value):
                return None  # a negative shown as zero, or not shown: Excel's sign here is not ours to guess
            return "-" + text
        return text

    def _choose(self, value: float) -> tuple[_Section | None, bool]:
        """The section for ``value``, and whether a minus goes in front of it."""
        sections, conditions = self.sections, self.conditions
        if self.conditional:
            if value < 0 or conditions[0] is None:
                return None, False
            for section, condition in zip(sections, conditions, strict=True):
                if condition is None or _holds(condition, value):
                    return section, False
            return None, False
        if len(sections) == 1:
            return sections[0], True
        if value < 0:
            return sections[1], False
        if value == 0 and len(sections) > 2:
            return sections[2], False
        return sections[0], False


def _general_text(value: float) -> str:
    """General as batchsms shows it (``sheet.cell_text``): whole numbers without ``.0``, else 15 digits."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return format(value, ".15g")


@lru_cache(maxsize=1024)
def compile_format(code: str) -> NumberFormat | None:
    """``code`` ready to show numbers, or None when it is General, a date or time, text, or not supported."""
    if not code or code.strip().lower() in ("general", "@"):
        return None
    try:
        tokens, conditions = _tokens(code)
        sections = [_section(t) for t in tokens[:3]]
    except Unsupported:
        return None
    if all(s.general and len(s.tokens) == 1 for s in sections):
        return None  # General in every section: nothing to do
    return NumberFormat(code, sections, conditions, _general_text)


def format_number(value: float | int, code: str) -> str | None:
    """The text Excel shows for ``value`` under ``code``, or None when General should be kept."""
    compiled = compile_format(code)
    return None if compiled is None else compiled.format(value)


def formats_by_style(codes: dict[int, str], style_formats: list[int]) -> dict[int, NumberFormat]:
    """Cell style index (a cell's ``s``) -> its format, for the styles that show numbers otherwise than General.

    ``codes`` are the workbook's own number formats (numFmtId -> code; they win over the
    built-in ones of the same id); ``style_formats`` the numFmtId of each cell style, in order.
    """
    shown: dict[int, NumberFormat] = {}
    for index, fmt_id in enumerate(style_formats):
        code = codes.get(fmt_id, BUILTIN.get(fmt_id))
        compiled = compile_format(code) if code else None
        if compiled is not None:
            shown[index] = compiled
    return shown
