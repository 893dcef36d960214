"""Phone verdicts for a whole column at once: the common case of a million-row check, in numpy.

Why: a sheet of a million contacts holds about a million *different* numbers, so caching by
the cell (:class:`batchsms.phones.PhoneBook`) saves nothing, and the fast path costs ~3 µs a
number in Python: 3 s of a check whose target is 4 s. Here a column's cells become one byte
array, their digits a matrix (one row per cell), and the steps :class:`batchsms._phonemeta.FastPath`
replays for a plainly written number (an international prefix, the home country code, a
national prefix, the number's type) are worked out for every cell together.

How it stays exact. Only cells that :meth:`PhoneBook._lookup` would send down the fast path
(digits, spaces, ``( ) . -`` and a leading ``+``) and that come out a plainly valid mobile of
the home country are *settled* here; every other cell is left to the per-cell rules
(``rules.check_to``), which the caller runs once per distinct cell. The regexes of the
metadata are never re-implemented by hand:

* a pattern is *expanded* (:func:`expand`) into the sequences of digit sets it can match, in
  the order the regex engine tries them; for patterns of digits, groups, alternatives and
  bounded repeats (every pattern the steps below use) that is exactly its language, so
  "does some prefix match, and how long is the first match" and "does the whole number
  match" become comparisons over the digit matrix;
* the number's type is asked of :meth:`FastPath.verdict` itself, once per distinct *decisive
  prefix*: when every sequence of every pattern the verdict reads allows any digit after
  position ``p`` (``\\d{6}`` tails), numbers that share their first ``p`` digits and their
  length share their verdict, so one representative answers for all of them.

Anything outside those shapes (a pattern that will not expand, a transform rule, too many
sequences) leaves the cells unsettled: slower, never different. ``tests/test_columnar_*.py``
holds the result to ``rules.check_to`` over generated numbers of every shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, ValidationResult

from . import _phonemeta
from .phones import MOBILE_TYPES, PhoneBook

try:  # Python 3.11+: the regex parser's own reading of a pattern (private, like _phonemeta's names)
    from re import _constants as _sre
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    try:
        import sre_constants as _sre  # type: ignore[no-redef]
        import sre_parse as _sre_parse  # type: ignore[no-redef]
    except ImportError:  # a Python without either: no pattern expands, every cell is left to the rules
        _sre = _sre_parse = None  # type: ignore[assignment]

ALL_DIGITS = 0x3FF  # a digit set as a 10-bit mask: every digit
PAD = 10  # the digit matrix's filler beyond a number's end (matches no set)
MAX_DIGITS = 17  # longer digit runs are left to the per-cell rules
MAX_SEQUENCES = 4096  # a pattern that expands to more is not expanded
_TOO_SHORT_ETC = _phonemeta._TOO_SHORT_ETC


class Unsupported(Exception):
    """A pattern :func:`expand` does not model (the cells it decides stay unsettled)."""


# --------------------------------------------------------------------------- patterns as digit sets


def _class_mask(items: list) -> int:
    mask, negate = 0, False
    for op, av in items:
        if op is _sre.NEGATE:
            negate = True
        elif op is _sre.LITERAL:
            if 48 <= av <= 57:
                mask |= 1 << (av - 48)
        elif op is _sre.RANGE:
            lo, hi = av
            for code in range(max(lo, 48), min(hi, 57) + 1):
                mask |= 1 << (code - 48)
        elif op is _sre.CATEGORY and av is _sre.CATEGORY_DIGIT:
            mask = ALL_DIGITS
        else:
            raise Unsupported(f"class item {op}")
    return ALL_DIGITS & ~mask if negate else mask


def _items(items, limit: int) -> list[tuple[int, ...]]:
    """The sequences a list of regex items matches, in the order a backtracking engine tries them."""
    found: list[tuple[int, ...]] = [()]
    for op, av in items:
        alternatives = _item(op, av, limit)
        found = [s + a for s in found for a in alternatives if len(s) + len(a) <= limit]
        if len(found) > MAX_SEQUENCES:
            raise Unsupported("too many sequences")
    return found


def _item(op, av, limit: int) -> list[tuple[int, ...]]:
    if op is _sre.LITERAL:
        return [((1 << (av - 48)) if 48 <= av <= 57 else 0,)]
    if op is _sre.NOT_LITERAL:
        return [(ALL_DIGITS & ~(1 << (av - 48)) if 48 <= av <= 57 else ALL_DIGITS,)]
    if op is _sre.IN:
        return [(_class_mask(av),)]
    if op is _sre.ANY:
        return [(ALL_DIGITS,)]
    if op is _sre.SUBPATTERN:
        return _items(av[-1], limit)
    if op is _sre.BRANCH:
        out: list[tuple[int, ...]] = []
        for branch in av[1]:
            out += _items(branch, limit)
        return out
    if op is _sre.MAX_REPEAT or op is _sre.MIN_REPEAT:
        lo, hi, inner = av
        body = _items(inner, limit)
        if any(not s for s in body):
            raise Unsupported("a repeat that can match nothing")
        return _repeat(body, lo, min(hi, limit), greedy=op is _sre.MAX_REPEAT, limit=limit)
    raise Unsupported(f"regex item {op}")


def _repeat(body: list[tuple[int, ...]], lo: int, hi: int, greedy: bool, limit: int) -> list[tuple[int, ...]]:
    """X{lo,hi} as a backtracking engine tries it: greedy goes on before it stops, lazy stops first."""

    def paths(done: int, length: int) -> list[tuple[int, ...]]:
        more: list[tuple[int, ...]] = []
        if done < hi:
            for s in body:
                if length + len(s) <= limit:
                    more += [s + rest for rest in paths(done + 1, length + len(s))]
                    if len(more) > MAX_SEQUENCES:
                        raise Unsupported("too many sequences")
        stop = [()] if done >= lo else []
        return more + stop if greedy else stop + more

    return paths(0, 0)


@lru_cache(maxsize=1024)
def expand(pattern: str, limit: int = MAX_DIGITS + 3) -> tuple[tuple[int, ...], ...] | None:
    """The sequences of digit sets ``pattern`` matches (each at most ``limit`` long), in the order
    Python's regex engine tries them; None for a pattern this does not model."""
    if _sre_parse is None:  # pragma: no cover - see the import
        return None
    try:
        return tuple(_items(_sre_parse.parse(pattern).data, limit))
    except (Unsupported, RecursionError, AttributeError, TypeError):
        return None


def decisive_prefix(sequences: Sequence[tuple[int, ...]], size: int) -> int:
    """How many leading digits decide whether a number of ``size`` digits fully matches: past the last
    position any sequence of that length constrains, every digit is allowed."""
    p = 0
    for s in sequences:
        if len(s) == size:
            for i in range(size - 1, -1, -1):
                if s[i] != ALL_DIGITS:
                    p = max(p, i + 1)
                    break
    return p


def _table(mask: int) -> np.ndarray:
    return np.array([(mask >> d) & 1 for d in range(10)] + [0], dtype=bool)


def first_match(digits: np.ndarray, sizes: np.ndarray, sequences: Sequence[tuple[int, ...]],
                ) -> tuple[np.ndarray, np.ndarray]:
    """``re.match`` over every row: (matched, end of the first match) for digit rows of ``sizes`` digits."""
    rows = len(sizes)
    matched = np.zeros(rows, dtype=bool)
    end = np.zeros(rows, dtype=np.int16)
    width = digits.shape[1]
    for s in sequences:
        todo = np.flatnonzero(~matched & (sizes >= len(s)))
        if not len(todo) or len(s) > width:
            continue
        for pos, mask in enumerate(s):
            if mask != ALL_DIGITS:
                todo = todo[_table(mask)[digits[todo, pos]]]
                if not len(todo):
                    break
        matched[todo] = True
        end[todo] = len(s)
    return matched, end


def full_match(digits: np.ndarray, sizes: np.ndarray, sequences: Sequence[tuple[int, ...]]) -> np.ndarray:
    """``re.fullmatch`` over every row."""
    found = np.zeros(len(sizes), dtype=bool)
    for s in sequences:
        if len(s) > digits.shape[1]:
            continue
        todo = np.flatnonzero(~found & (sizes == len(s)))
        for pos, mask in enumerate(s):
            if not len(todo):
                break
            if mask != ALL_DIGITS:
                todo = todo[_table(mask)[digits[todo, pos]]]
        found[todo] = True
    return found


# --------------------------------------------------------------------------- cells to digits


_DIGIT = np.zeros(256, dtype=bool)
_DIGIT[48:58] = True
_PUNCT = np.zeros(256, dtype=bool)  # what PhoneBook._lookup deletes: " ().-"
for _c in b" ().-":
    _PUNCT[_c] = True
_ALLOWED = _DIGIT | _PUNCT
_ALLOWED[ord("+")] = True


class Digits:
    """The cells of a column that are plainly written numbers, as a digit matrix.

    ``rows`` are the cell indexes (into the column) of the plain cells, ``digits`` their digits
    (one row each, ``PAD`` beyond the end), ``sizes`` how many, ``plus`` whether a ``+`` leads.
    A plain cell is, stripped of whitespace, one PhoneBook._lookup sends down the fast path:
    only digits, spaces, ``( ) . -`` and one ``+`` before the first digit, starting with ``+``,
    ``(`` or a digit, at most :data:`MAX_DIGITS` digits in at most :data:`WIDTH` characters
    (longer cells are left to the per-cell rules).
    """

    WIDTH = 20

    def __init__(self, cells: Sequence[str]) -> None:
        count = len(cells)
        width = self.WIDTH
        lengths = np.fromiter(map(len, cells), dtype=np.int64, count=count)
        blob = "\n".join(cells).encode("utf-8", "surrogatepass")
        if len(blob) != int(lengths.sum()) + count - 1:  # some cell is not ASCII: never a plain one
            cells = [c if c.isascii() else "" for c in cells]
            lengths = np.fromiter(map(len, cells), dtype=np.int64, count=count)
            blob = "\n".join(cells).encode("ascii")
        data = np.frombuffer(blob + b" " * width, dtype=np.uint8)
        starts = np.zeros(count, dtype=np.int64)
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
        short = (lengths <= width) & (lengths > 0)
        matrix = np.empty((count, width), dtype=np.uint8)
        at = starts.copy()
        for j in range(width):  # a column at a time: no index array of count x width
            column = data[at]
            column[lengths <= j] = 32
            matrix[:, j] = column
            at += 1
        allowed = _ALLOWED[matrix].all(axis=1)
        is_digit = _DIGIT[matrix]
        sizes = is_digit.sum(axis=1)
        is_plus = matrix == 43
        pluses = is_plus.sum(axis=1)
        lead = matrix[np.arange(count), np.argmax(matrix != 32, axis=1)]
        lead_ok = _DIGIT[lead] | (lead == 43) | (lead == 40)
        plus_ok = (pluses == 0) | ((pluses == 1) & (np.argmax(is_plus, axis=1) < np.argmax(is_digit, axis=1)))
        plain = short & allowed & lead_ok & plus_ok & (sizes >= 1) & (sizes <= MAX_DIGITS)
        self.rows = np.flatnonzero(plain)
        is_digit = is_digit[self.rows]
        picked = matrix[self.rows]
        out = np.full((len(self.rows), MAX_DIGITS), PAD, dtype=np.uint8)
        # Cells share a few shapes ("0412 345 678", "+61 412 345 678", "0412345678"): the digits of
        # one shape sit at the same places, so each shape is one slice of the matrix.
        bits = np.packbits(is_digit, axis=1, bitorder="little")
        shapes = np.zeros(len(self.rows), dtype=np.int64)
        for i in range(bits.shape[1]):
            shapes |= bits[:, i].astype(np.int64) << (8 * i)
        distinct, inverse = np.unique(shapes, return_inverse=True)
        inverse = inverse.reshape(-1)
        if len(distinct) <= 64:
            for k, shape in enumerate(distinct.tolist()):
                at = [j for j in range(width) if shape >> j & 1]
                group = np.flatnonzero(inverse == k)
                out[group[:, None], np.arange(len(at))[None, :]] = picked[group][:, at] - 48
        else:
            rank = np.cumsum(is_digit, axis=1, dtype=np.int8) - 1
            r, c = np.nonzero(is_digit)
            out[r, rank[r, c]] = picked[r, c] - 48
        self.digits = out
        self.sizes = sizes[self.rows].astype(np.int16)
        self.plus = pluses[self.rows] == 1


def _int_of(digits: np.ndarray, width: int) -> np.ndarray:
    """The first ``width`` digits of each row as an integer (``width`` <= 18)."""
    value = np.zeros(len(digits), dtype=np.int64)
    for i in range(width):
        value = value * 10 + digits[:, i].astype(np.int64)
    return value


# --------------------------------------------------------------------------- the verdicts


class ColumnVerdicts:
    """Plainly valid home-country mobiles of a column, settled together; the rest left unsettled.

    ``settled`` holds cell indexes, ``e164`` their E.164 texts (in the same order), and
    ``keys`` their digits as int64 (a compact key for the batch rules).
    """

    def __init__(self, rows: np.ndarray, e164: list[str], keys: np.ndarray, heads: set[str] | None = None) -> None:
        self.settled = rows
        self.e164 = e164
        self.keys = keys
        self.heads = heads if heads is not None else set()  # the first four characters of the E.164 texts


class Settler:
    """Works out what :meth:`PhoneBook._lookup` + ``rules.check_to`` would say of plain cells, for one book."""

    def __init__(self, book: PhoneBook) -> None:
        self.book = book
        self.fast = book._fast
        self.ok = self.fast is not None and self.fast.home is not None
        if not self.ok:
            return
        home = self.fast.home
        self.home = home
        self.code = home.code
        self.code_digits = [int(c) for c in self.code]
        # the plus form finds this code only if no shorter prefix of it is a code itself
        self.plus_ok = all(int(self.code[:k]) not in COUNTRY_CODE_TO_REGION_CODE for k in range(1, len(self.code)))
        meta = home.metadata
        self.idd = expand(meta.international_prefix) if meta.international_prefix else ()
        self.prefix = expand(meta.national_prefix_for_parsing) if meta.national_prefix_for_parsing else ()
        self.general = expand(meta.general_desc.national_number_pattern) \
            if meta.general_desc.national_number_pattern else ()
        self.transform = bool(home.transform)
        if self.idd is None or self.prefix is None or self.general is None:
            self.ok = False
            return
        self.regions = [r for r in map(self.fast._region, COUNTRY_CODE_TO_REGION_CODE.get(home.country_code, ()))
                        if r is not None]
        main = self.regions[0] if self.regions else None
        main_prefix = main.metadata.national_prefix_for_parsing if main is not None else None
        self.main_prefix = expand(main_prefix) if main_prefix else ()
        self.suspect = np.array(sorted(int(t) for t in book._suspect_tails if t.isdigit()), dtype=np.int64)
        self._decisive: dict[tuple[int, int], int] = {}
        self._kinds: dict[tuple[int, str], int | None] = {}
        self._tables: dict[tuple[int, int], np.ndarray | dict] = {}

    def decisive(self, size: int, first: int) -> int:
        """The leading digits of a national number of ``size`` digits starting with ``first`` that decide
        ``FastPath.verdict``'s type: past them, every sequence of every pattern it reads that could
        still match allows any digit (only sequences whose first set holds ``first`` count)."""
        key = (size, first)
        found = self._decisive.get(key)
        if found is None:
            bit = 1 << first
            found = 1  # the leading-zero test
            widths = [self.main_prefix]
            patterns = []
            for region in self.regions:
                meta = region.metadata
                if meta.leading_digits:
                    widths.append(expand(meta.leading_digits))
                patterns.append(meta.general_desc.national_number_pattern)
                patterns += [pattern for _, _, pattern, _ in region.descs]
                patterns.append(region.mobile.pattern)
            for sequences in widths:
                if sequences is None:
                    found = size
                    break
                found = max([found] + [len(s) for s in sequences if not s or s[0] & bit])
            for pattern in patterns:
                if pattern is None:
                    continue
                sequences = expand(pattern)
                if sequences is None:
                    found = size
                else:
                    found = max(found, decisive_prefix([s for s in sequences if s and s[0] & bit], size))
            found = self._decisive[key] = min(found, size)
        return found

    #: Cells worked on at once: the temporaries stay in the processor's cache (measured here: a million
    #: cells at once spend more time faulting in fresh pages than computing).
    CHUNK = 32768

    def settle(self, cells: Sequence[str]) -> ColumnVerdicts:
        """The cells (already stripped) that are plainly valid mobiles, with their E.164 form."""
        rows, e164, keys, heads = [], [], [], set()
        for lo in range(0, len(cells) if self.ok else 0, self.CHUNK):
            part = self._settle(cells[lo:lo + self.CHUNK])
            rows.append(part.settled + lo)
            e164 += part.e164
            keys.append(part.keys)
            heads |= part.heads
        if not rows:
            return ColumnVerdicts(np.zeros(0, dtype=np.int64), [], np.zeros(0, dtype=np.int64))
        return ColumnVerdicts(np.concatenate(rows), e164, np.concatenate(keys), heads)

    def _settle(self, cells: Sequence[str]) -> ColumnVerdicts:
        empty = ColumnVerdicts(np.zeros(0, dtype=np.int64), [], np.zeros(0, dtype=np.int64))
        plain = Digits(cells)
        if not len(plain.rows):
            return empty
        d, n = plain.digits, plain.sizes.astype(np.int64)
        rows = len(n)
        offset = np.zeros(rows, dtype=np.int64)
        alive = np.ones(rows, dtype=bool)
        code, c = self.code_digits, len(self.code_digits)
        starts = n >= c
        for i, digit in enumerate(code):
            starts &= d[:, i] == digit
        # + and digits: the country code must be this book's
        plus = plain.plus
        alive &= ~plus | (starts & self.plus_ok)
        offset[plus] = c
        # digits alone: FastPath.verdict's steps for the default country
        national = ~plus & alive
        if self.idd:
            hit, _ = first_match(d, n, self.idd)
            alive &= ~(national & hit)
            national &= alive
        strip_code = np.zeros(rows, dtype=bool)
        with_code = national & starts
        if with_code.any():
            shifted = np.full_like(d, PAD)
            shifted[:, :d.shape[1] - c] = d[:, c:]
            rest = n - c
            if self.prefix:
                hit, _ = first_match(shifted, rest, self.prefix)
                alive &= ~(with_code & hit)
                with_code &= alive
            too_long = np.array([self.home.test_length("0" * int(k)) == ValidationResult.TOO_LONG
                                 for k in range(MAX_DIGITS + 1)])[n]
            viable = full_match(d, n, self.general)
            viable_rest = full_match(shifted, rest, self.general)
            strip_code = with_code & ((~viable & viable_rest) | too_long)
            offset[strip_code] = c
        national &= alive & ~strip_code
        if self.prefix and national.any():
            hit, end = first_match(d, n, self.prefix)
            hit &= national
            bad = hit & (end == 0)
            if self.transform:
                bad |= hit
            lengths = np.array([self.home.test_length("0" * k) in _TOO_SHORT_ETC for k in range(MAX_DIGITS + 1)])
            bad |= hit & lengths[np.maximum(n - end, 0)]
            alive &= ~bad
            take = hit & ~bad
            offset[take] = end[take]
        size = n - offset
        alive &= (size >= 1) & (size <= MAX_DIGITS)
        first = d[np.arange(rows), np.minimum(offset, d.shape[1] - 1)]
        alive &= first != 0
        # the national number's type, once per distinct decisive prefix
        cc = self.code
        mobile = np.zeros(rows, dtype=bool)
        nsn = np.full_like(d, PAD)
        for shift in np.unique(offset[alive]).tolist():
            group = np.flatnonzero(alive & (offset == shift))
            block = nsn[group]
            block[:, :d.shape[1] - shift] = d[group, shift:]
            nsn[group] = block
        shape = size * 16 + nsn[:, 0]
        for kind in np.unique(shape[alive]).tolist():
            group = np.flatnonzero(alive & (shape == kind))
            length, first = divmod(kind, 16)
            p = self.decisive(length, first)
            if p > 18:  # pragma: no cover - defensive: the key is an int64
                continue
            keys = _int_of(nsn[group], p)
            mobile[group] = self._mobile_by_prefix(length, p, keys)
        alive &= mobile
        # placeholders (seven equal digits, counting up, example numbers) are left to the rules
        tail = np.zeros(rows, dtype=np.int64)
        for i in range(8):
            col = np.clip(size - 8 + i, 0, d.shape[1] - 1)
            tail = tail * 10 + nsn[np.arange(rows), col].astype(np.int64)
        suspect = (size >= 8) & np.isin(tail, self.suspect)
        # a national number under 8 digits: the rules' tail (the E.164 text's last 8 characters) reaches into
        # the country code, or to its "+" (Tokelau's example mobile +690 7290): ask the rules
        short = size < 8
        alive &= ~suspect & ~short
        picked = np.flatnonzero(alive)
        e164: list[str] = [""] * len(picked)
        keys = np.zeros(len(picked), dtype=np.int64)
        order = size[picked]
        for length in np.unique(order):
            part = np.flatnonzero(order == length)
            block = nsn[picked[part], :length] + 48
            line = np.full((len(part), length + len(cc) + 2), 10, dtype=np.uint8)
            line[:, 0] = 43
            line[:, 1:1 + len(cc)] = np.frombuffer(cc.encode(), dtype=np.uint8)
            line[:, 1 + len(cc):1 + len(cc) + length] = block
            texts = line.tobytes().decode("ascii").split("\n")
            texts.pop()
            if len(part) == len(picked):
                e164 = texts
            else:
                spread = np.empty(len(picked), dtype=object)
                spread[:] = e164
                spread[part] = texts
                e164 = spread.tolist()
            if length + len(cc) <= 18:
                keys[part] = int(cc) * 10 ** int(length) + _int_of(nsn[picked[part]], int(length))
            else:  # pragma: no cover - no valid number is this long
                keys[part] = -1
        heads = set()
        if len(picked):  # "+614": the calling code and what follows, as check.reading_books wants them
            lead = cc[:3]
            need = 3 - len(lead)
            if need:
                tops = np.unique(_int_of(nsn[picked], need) * 100 + np.minimum(size[picked], need))
                for top in tops.tolist():
                    value, available = divmod(top, 100)
                    heads.add("+" + lead + str(value).rjust(need, "0")[:available])
            else:
                heads.add("+" + lead)
        return ColumnVerdicts(plain.rows[picked], e164, keys, heads)

    def _mobile_by_prefix(self, size: int, p: int, keys: np.ndarray) -> np.ndarray:
        """Whether the numbers of ``size`` digits whose first ``p`` digits are ``keys`` are mobiles,
        asked of FastPath once per prefix in this run (a table of 10**p answers when that is small)."""
        table = self._tables.get((size, p))
        if table is None:
            table = self._tables[(size, p)] = np.zeros(10 ** p if p <= 7 else 0, dtype=np.int8) if p <= 7 else {}
        if isinstance(table, dict):
            return np.array([self._is_mobile(size, p, k, table) for k in keys.tolist()], dtype=bool)
        answers = table[keys]
        unknown = np.unique(keys[answers == 0])
        for key in unknown.tolist():
            table[key] = 1 if self._is_mobile(size, p, key, {}) else 2
        if len(unknown):
            answers = table[keys]
        return answers == 1

    def _is_mobile(self, size: int, p: int, key: int, seen: dict) -> bool:
        found = seen.get(key)
        if found is None:
            kind = self._kind(size, str(key).rjust(p, "0") if p else "")
            found = seen[key] = kind is not None and kind in MOBILE_TYPES
        return found

    def _kind(self, size: int, head: str) -> int | None:
        """FastPath.verdict's type for a national number of ``size`` digits starting ``head``."""
        found = self._kinds.get((size, head), False)
        if found is False:
            answer = self.fast.verdict(True, self.code + head + "0" * (size - len(head)))
            found = self._kinds[(size, head)] = answer[1] if answer is not None else None
        return found  # type: ignore[return-value]
