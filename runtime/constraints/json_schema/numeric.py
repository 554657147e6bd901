"""JSON numbers: exact integer ranges, decimal ranges and ``multipleOf`` as byte DFAs.

Integers are written canonically, ``0|-?[1-9][0-9]*`` (no ``-0``), so an integer range is an exact
regular expression (:func:`integer_range_regex`). A ``number`` without bounds is any JSON number
(exponents included). A ``number`` with ``minimum``/``maximum``/``exclusive*`` is written without
exponent, ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?`` (no negative zero), and the bound is compared on the
*decimal text*, exactly, against the bound's shortest decimal form. Rounding to the nearest double
is monotone, so ``x <= b`` on the text implies ``float(x) <= float(b)``; for an *exclusive* bound
the text also has at most 15 significant digits, so two different texts never round to the same
double and ``x < b`` survives parsing. ``multipleOf`` is exact for integer divisors (a residue
automaton) and for dyadic ones such as ``0.5`` or ``13.5`` (then only integers are written, which
floating-point division checks exactly); other divisors such as ``0.01`` are rejected, because
validators that divide doubles disagree with decimal arithmetic on them.

>>> import re
>>> pattern = integer_range_regex(-15, 123)
>>> [bool(re.fullmatch(pattern, str(v))) for v in (-16, -15, 0, 99, 123, 124)]
[False, True, True, True, True, False]
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

import numpy as np

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import DEAD, ByteDFA
from genweave.runtime.constraints.json_schema.automata import difference, intersection, minimize, trim
from genweave.runtime.constraints.regex import regex_dfa

INTEGER = r"(?:0|-?[1-9][0-9]*)"
NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_UNSIGNED_DECIMAL = r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
_POSITIVE_DECIMAL = r"(?:0\.[0-9]*[1-9][0-9]*|[1-9][0-9]*(?:\.[0-9]+)?)"
_FRACTION = r"(?:\.[0-9]+)?"
MAX_DIVISOR = 10_000  # states of a residue automaton


def _digits(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def _same_length(low: str, high: str) -> str:
    """Regex of the decimal strings of one length between ``low`` and ``high`` (inclusive)."""
    if low == high:
        return low
    if low[0] == high[0]:
        return low[0] + _same_length(low[1:], high[1:])
    rest = len(low) - 1
    low_full, high_full = low[1:] == "0" * rest, high[1:] == "9" * rest
    first = int(low[0]) if low_full else int(low[0]) + 1
    last = int(high[0]) if high_full else int(high[0]) - 1
    parts = []
    if not low_full:
        parts.append(low[0] + _same_length(low[1:], "9" * rest))
    if first <= last:
        parts.append(_digits(first, last) + (f"[0-9]{{{rest}}}" if rest else ""))
    if not high_full:
        parts.append(high[0] + _same_length("0" * rest, high[1:]))
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def _natural_range(low: int, high: int | None) -> str | None:
    """Regex of the naturals in ``[low, high]`` (``high=None``: unbounded), or None if empty."""
    if high is not None and low > high:
        return None
    parts = []
    top = len(str(high)) if high is not None else len(str(low))
    for length in range(len(str(low)), top + 1):
        lo = max(low, 10 ** (length - 1) if length > 1 else 0)
        hi = min(high, 10 ** length - 1) if high is not None else 10 ** length - 1
        if lo <= hi:
            parts.append(_same_length(str(lo), str(hi)))
    if high is None:
        parts.append(f"[1-9][0-9]{{{len(str(low))},}}")
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def integer_range_regex(low: int | None, high: int | None) -> str | None:
    """Regex of the canonical integers in ``[low, high]`` (None: unbounded), or None if empty."""
    parts = []
    if high is None or high >= 0:
        natural = _natural_range(max(low, 0) if low is not None else 0, high)
        if natural:
            parts.append(natural)
    if low is None or low < 0:
        negative = _natural_range(max(-high, 1) if high is not None else 1, -low if low is not None else None)
        if negative:
            parts.append("-" + negative)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def _geq_fraction(digits: str) -> str:
    """Digit strings (nonempty) that, zero-extended, are >= ``digits`` (no trailing zero)."""
    head, rest = int(digits[0]), digits[1:]
    parts = [f"{_digits(head + 1, 9)}[0-9]*"] if head < 9 else []
    parts.append(f"{head}{_geq_fraction(rest)}" if rest else f"{head}[0-9]*")
    return "(?:" + "|".join(parts) + ")"


def _leq_fraction(digits: str) -> str:
    """Digit strings (nonempty) that, zero-extended, are <= ``digits`` (no trailing zero)."""
    head, rest = int(digits[0]), digits[1:]
    parts = [f"{_digits(0, head - 1)}[0-9]*"] if head > 0 else []
    parts.append(f"{head}(?:{_leq_fraction(rest)})?" if rest else f"{head}0*")
    return "(?:" + "|".join(parts) + ")"


def _split(bound: Decimal) -> tuple[int, str]:
    """(integer part, fraction digits without trailing zeros) of a nonnegative decimal."""
    text = format(bound, "f")
    whole, _, fraction = text.partition(".")
    return int(whole), fraction.rstrip("0")


def _unsigned_at_least(bound: Decimal) -> str:
    whole, fraction = _split(bound)
    above = _natural_range(whole + 1, None)
    at = f"{whole}" + (_FRACTION if not fraction else rf"\.{_geq_fraction(fraction)}")
    return f"(?:{above}{_FRACTION}|{at})"


def _unsigned_at_most(bound: Decimal) -> str:
    whole, fraction = _split(bound)
    parts = []
    below = _natural_range(0, whole - 1) if whole > 0 else None
    if below:
        parts.append(f"{below}{_FRACTION}")
    parts.append(f"{whole}" + (r"(?:\.0+)?" if not fraction else rf"(?:\.{_leq_fraction(fraction)})?"))
    return "(?:" + "|".join(parts) + ")"


def _equal(value: Decimal) -> str:
    """Every decimal text (no exponent) of ``value``."""
    whole, fraction = _split(abs(value))
    sign = "-" if value < 0 else ""
    return f"{sign}{whole}" + (r"(?:\.0+)?" if not fraction else rf"\.{fraction}0*")


@lru_cache(maxsize=256)
def _decimal_dfa(pattern: str) -> ByteDFA:
    return regex_dfa(pattern)


def decimal_range_dfa(low: Decimal | None, high: Decimal | None, *, exclusive_low: bool = False,
                      exclusive_high: bool = False) -> ByteDFA:
    """Decimal texts (no exponent, no negative zero) with a value in the range (exactly)."""
    result = _decimal_dfa(f"{_UNSIGNED_DECIMAL}|-{_POSITIVE_DECIMAL}")
    if low is not None:
        if low >= 0:
            above = _unsigned_at_least(low)
        else:
            above = f"{_UNSIGNED_DECIMAL}|-(?:{_unsigned_at_most(-low)})"
        result = intersection(result, _decimal_dfa(above))
        if exclusive_low:
            result = difference(result, _decimal_dfa(_equal(low)))
    if high is not None:
        if high >= 0:
            below = f"{_unsigned_at_most(high)}|-{_POSITIVE_DECIMAL}"
        else:
            below = f"-(?:{_unsigned_at_least(-high)})"
        result = intersection(result, _decimal_dfa(below))
        if exclusive_high:
            result = difference(result, _decimal_dfa(_equal(high)))
    if exclusive_low or exclusive_high:
        result = intersection(result, _significant_digits(15))
    return minimize(result) if not result.is_empty() else result


@lru_cache(maxsize=4)
def _significant_digits(limit: int) -> ByteDFA:
    """Decimal texts with at most ``limit`` digits in all (so at most that many significant)."""
    forms = [f"[0-9]{{1,{limit}}}"] + [f"[0-9]{{{k}}}\\.[0-9]{{1,{limit - k}}}" for k in range(1, limit)]
    return regex_dfa("-?(?:" + "|".join(forms) + ")")


def residue_dfa(divisor: int) -> ByteDFA:
    """Canonical integers divisible by ``divisor`` (a residue automaton with divisor + 3 states)."""
    if divisor > MAX_DIVISOR:
        raise GenCheckError(f"multipleOf {divisor} is too large to enforce (limit {MAX_DIVISOR})")
    start, minus, zero = divisor, divisor + 1, divisor + 2
    table = np.full((divisor + 3, 256), DEAD, dtype=np.int32)
    residues = np.arange(divisor)
    for digit in range(10):
        table[residues, ord("0") + digit] = (residues * 10 + digit) % divisor
        if digit:
            table[start, ord("0") + digit] = digit % divisor
            table[minus, ord("0") + digit] = digit % divisor
    table[start, ord("0")] = zero
    table[start, ord("-")] = minus
    accepting = np.zeros(divisor + 3, dtype=bool)
    accepting[[0, zero]] = True
    return minimize(trim(table, accepting, start))


def integer_divisor(multiple_of, pointer: str) -> int:
    """The integer ``k`` such that the integers that are multiples of ``multiple_of`` are exactly
    the multiples of ``k``; raises for divisors that are not integers or dyadic fractions."""
    value = Fraction(Decimal(repr(multiple_of)) if isinstance(multiple_of, float) else multiple_of)
    if value <= 0:
        raise GenCheckError(f"{pointer}: multipleOf must be positive, not {multiple_of!r}")
    denominator = value.denominator
    if denominator & (denominator - 1):  # not a power of two: floating-point checks disagree
        raise GenCheckError(
            f"{pointer}: multipleOf {multiple_of!r} is not supported (unsupported keyword value)",
            hint="use an integer or a power-of-two fraction such as 0.5; decimal fractions like 0.01 "
                 "are checked with inexact floating-point division by JSON Schema validators")
    return value.numerator


def integer_dfa(low: int | None, high: int | None, divisor: int | None) -> ByteDFA:
    """Canonical integers in ``[low, high]`` divisible by ``divisor`` (None: no such condition)."""
    pattern = integer_range_regex(low, high)
    if pattern is None:
        return ByteDFA(np.zeros((0, 256), np.int32), np.zeros(0, bool), DEAD)
    result = _decimal_dfa(pattern)
    if divisor is not None and divisor > 1:
        result = intersection(result, residue_dfa(divisor))
    if (low is None or high is None or high - low > 10 ** 15) and divisor is not None and divisor > 1:
        # Dyadic divisors are exact in doubles only while the quotient is: keep |x| < 2**53.
        result = intersection(result, _decimal_dfa(integer_range_regex(-(2 ** 53) + 1, 2 ** 53 - 1)))
    return result


def number_bounds(schema: dict) -> tuple[Decimal | None, bool, Decimal | None, bool]:
    """(low, low exclusive, high, high exclusive) from a schema's numeric keywords (draft 4
    boolean ``exclusiveMinimum`` included), bounds as the decimals of their shortest form."""
    low, low_exclusive, high, high_exclusive = None, False, None, False

    def tighter(current, exclusive, value, value_exclusive, better):
        if current is None or better(value, current) or (value == current and value_exclusive):
            return value, value_exclusive or (value == current and exclusive)
        return current, exclusive

    if "minimum" in schema:
        low, low_exclusive = _decimal(schema["minimum"]), schema.get("exclusiveMinimum") is True
    if "maximum" in schema:
        high, high_exclusive = _decimal(schema["maximum"]), schema.get("exclusiveMaximum") is True
    if not isinstance(schema.get("exclusiveMinimum", False), bool):
        low, low_exclusive = tighter(low, low_exclusive, _decimal(schema["exclusiveMinimum"]), True,
                                     lambda a, b: a > b)
    if not isinstance(schema.get("exclusiveMaximum", False), bool):
        high, high_exclusive = tighter(high, high_exclusive, _decimal(schema["exclusiveMaximum"]), True,
                                       lambda a, b: a < b)
    return low, low_exclusive, high, high_exclusive


def _decimal(value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GenCheckError(f"a numeric bound must be a number, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise GenCheckError(f"a numeric bound must be finite, not {value!r}")
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def integer_bounds(low: Decimal | None, low_exclusive: bool, high: Decimal | None,
                   high_exclusive: bool) -> tuple[int | None, int | None]:
    """The integer range ``[lo, hi]`` of a decimal range."""
    lo = hi = None
    if low is not None:  # x > low, or x >= a non-integer low: the next integer up
        lo = math.floor(low) + 1 if low_exclusive or low != math.floor(low) else int(low)
    if high is not None:
        hi = math.ceil(high) - 1 if high_exclusive or high != math.ceil(high) else int(high)
    return lo, hi
