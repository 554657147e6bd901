"""Potentials: weights on the texts of a hole, as prefixes and as finished texts.

A :class:`Potential` assigns log-weights to the text a hole has produced so far (``prefix``) and
to a finished text (``complete``). Every potential keeps a per-sequence *state* that it advances
one token at a time (the text so far for text potentials, the automaton state for a compiled
constraint), so the runtime never re-reads a whole text to score one more token. States are
immutable values (``advance`` returns a new one): particles share them after resampling.

* **Boolean** potentials (``boolean = True``) take only the values ``0`` (holds) and ``-inf``
  (fails): ``where`` predicates, ``condition``, compiled constraints.
* **Prefix** potentials (``is_prefix = True``) are meaningful on prefixes. A boolean prefix
  potential is *prefix-monotone*: once ``prefix`` is ``-inf`` it stays ``-inf`` on every extension,
  and ``complete(y) = 0`` implies ``prefix(y) = 0``. These are the potentials AWRS can check token
  by token and that SMC can use to kill particles early.
* **Complete-only** potentials (``is_prefix = False``) have ``prefix = 0`` everywhere and act only
  through ``complete``.

The weight of one more token ``x`` after a text ``y`` is ``prefix(y x) - prefix(y)``; the weight of
ending is ``complete(y) - prefix(y)`` (:meth:`Potential.eos_weight`: never a dense vocabulary
row). These telescope: the product over a finished text is ``exp(complete(y) - prefix(""))``.

>>> short = predicate(lambda text: all(len(w) <= 3 for w in text.split()), name="short")
>>> state = short.advance(short.initial(), 0, b"abc de")
>>> short.prefix(state), short.check(state, 1, b" fg"), short.check(state, 1, b"fg")
(0.0, True, False)
>>> tally = factor(lambda text: -0.5 * len(text))
>>> tally.prefix(state), tally.complete(state)
(0.0, -3.0)
"""

from __future__ import annotations

import codecs
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from genweave.dsl.errors import GenArgumentError

NEG_INF = float("-inf")

TextFunction = Callable[[Any], Any]


class Potential(ABC):
    """A weight function on a hole's texts (see the module docstring for the contract)."""

    name: str = "potential"
    #: Values are only 0 (holds) or -inf (fails).
    boolean: bool = False
    #: ``prefix`` is meaningful (False: complete-only, ``prefix`` is 0 everywhere).
    is_prefix: bool = True

    @abstractmethod
    def initial(self) -> Any:
        """The state of the empty text."""

    @abstractmethod
    def advance(self, state: Any, token: int, data: bytes) -> Any:
        """The state after appending token ``token`` whose bytes are ``data`` (never EOS)."""

    @abstractmethod
    def prefix(self, state: Any) -> float:
        """Log-weight of the text of ``state`` as a prefix of the hole's text."""

    @abstractmethod
    def complete(self, state: Any) -> float:
        """Log-weight of the text of ``state`` as the hole's whole text."""

    def check(self, state: Any, token: int, data: bytes) -> bool:
        """Whether a boolean prefix potential still holds after one more token (what AWRS calls)."""
        return self.prefix(self.advance(state, token, data)) == 0.0

    def check_eos(self, state: Any) -> bool:
        """Whether a boolean potential holds if the text ends here."""
        return self.complete(state) == 0.0

    def eos_weight(self, state: Any) -> float:
        """``complete - prefix``: the log-weight of ending the text here."""
        return log_ratio(self.complete(state), self.prefix(state))

    def prefix_many(self, states: Sequence[Any]) -> np.ndarray:
        """``prefix`` of many states (float64 array); override with a batched implementation."""
        return np.array([self.prefix(s) for s in states], dtype=np.float64)

    def complete_many(self, states: Sequence[Any]) -> np.ndarray:
        """``complete`` of many states (float64 array); override with a batched implementation."""
        return np.array([self.complete(s) for s in states], dtype=np.float64)

    def __repr__(self) -> str:
        kind = ("predicate" if self.boolean else "factor") + ("" if self.is_prefix else ", complete-only")
        return f"{type(self).__name__}({self.name!r}, {kind})"


def log_ratio(numerator: float, denominator: float) -> float:
    """``numerator - denominator`` in log space, with ``-inf - x = -inf`` (also for ``x = -inf``)."""
    if numerator == NEG_INF:
        return NEG_INF
    return numerator - denominator


# ------------------------------------------------------------------------------------- text
def prefix_text(data: bytes) -> str:
    """The text of a prefix: UTF-8, an incomplete multi-byte sequence at the end left out (the
    next token may complete it), other invalid bytes replaced by U+FFFD."""
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data, final=False)


def complete_text(data: bytes) -> str:
    """The text of a finished hole: UTF-8 with invalid bytes replaced by U+FFFD."""
    return data.decode("utf-8", errors="replace")


class TextPotential(Potential):
    """A potential computed from the hole's text; the state is the text's bytes.

    ``on="str"`` passes the decoded text (see :func:`prefix_text`), ``on="bytes"`` the raw bytes.
    """

    def __init__(self, fn: TextFunction, *, is_prefix: bool, name: str | None, on: str):
        if on not in ("str", "bytes"):
            raise GenArgumentError(f"a text potential reads 'str' or 'bytes', not {on!r}")
        if not callable(fn):
            raise GenArgumentError(f"a potential needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.is_prefix = is_prefix
        self.name = name or getattr(fn, "__name__", "potential")
        self.on = on

    def initial(self) -> bytes:
        return b""

    def advance(self, state: bytes, token: int, data: bytes) -> bytes:
        return state + data

    def _text(self, state: bytes, finished: bool) -> Any:
        if self.on == "bytes":
            return state
        return complete_text(state) if finished else prefix_text(state)

    @abstractmethod
    def _value(self, result: Any) -> float:
        """The log-weight of one return value of ``fn``."""

    def prefix(self, state: bytes) -> float:
        return self._value(self.fn(self._text(state, False))) if self.is_prefix else 0.0

    def complete(self, state: bytes) -> float:
        return self._value(self.fn(self._text(state, True)))


class Predicate(TextPotential):
    """A boolean potential from ``fn(text) -> bool``: 0 where it holds, ``-inf`` where not.

    With ``is_prefix`` the function must be prefix-monotone (false on a prefix stays false on
    every extension); it is then checked on prefixes as well as on the finished text.
    """

    boolean = True

    def _value(self, result: Any) -> float:
        if not isinstance(result, bool | np.bool_):
            raise GenArgumentError(f"predicate {self.name!r} returned {type(result).__name__}, not bool",
                                   hint="a predicate must return True or False")
        return 0.0 if result else NEG_INF

    def check(self, state: bytes, token: int, data: bytes) -> bool:
        return self.prefix(state + data) == 0.0


class Factor(TextPotential):
    """A soft potential from ``fn(text) -> float``, a log-weight (``-inf`` allowed, NaN not)."""

    def _value(self, result: Any) -> float:
        try:
            value = float(result)
        except (TypeError, ValueError):
            raise GenArgumentError(f"potential {self.name!r} returned {type(result).__name__}, "
                                   "not a number", hint="a potential returns a log-weight (a float)") from None
        if math.isnan(value) or value == math.inf:
            raise GenArgumentError(f"potential {self.name!r} returned {value}",
                                   hint="a log-weight must be finite or -inf")
        return value


class ConstraintPotential(Potential):
    """A compiled constraint (``CompiledConstraint`` or ``TokenBudget``) as a boolean prefix
    potential: ``prefix`` is 0 while the state is live, ``complete`` is 0 when it accepts."""

    boolean = True
    is_prefix = True

    def __init__(self, constraint: Any, name: str | None = None):
        self.constraint = constraint
        self.name = name or repr(constraint)
        self.eos_ids = frozenset(int(i) for i in constraint.eos_ids)

    def initial(self) -> Any:
        return self.constraint.initial()

    def advance(self, state: Any, token: int, data: bytes) -> Any:
        return self.constraint.advance(state, token)

    def prefix(self, state: Any) -> float:
        return NEG_INF if self.constraint.is_dead(state) else 0.0

    def complete(self, state: Any) -> float:
        return 0.0 if self.constraint.is_complete(state) else NEG_INF

    def check(self, state: Any, token: int, data: bytes) -> bool:
        if token in self.eos_ids:
            return self.constraint.is_complete(state)
        return self.constraint.check(state, token)


# --------------------------------------------------------------------------------- builders
def predicate(fn: Callable[[str], bool], *, prefix: bool = True, name: str | None = None,
              on: str = "str") -> Predicate:
    """A ``where`` predicate (hard). ``prefix=True`` promises prefix-monotonicity (AWRS, early kills);
    ``prefix=False`` checks only the finished text (a ``condition``)."""
    return Predicate(fn, is_prefix=prefix, name=name, on=on)


def condition(fn: Callable[[str], bool], *, name: str | None = None, on: str = "str") -> Predicate:
    """A hard constraint on the finished text only (``condition expr``)."""
    return Predicate(fn, is_prefix=False, name=name, on=on)


def factor(fn: Callable[[str], float], *, prefix: bool = False, name: str | None = None,
           on: str = "str") -> Factor:
    """A soft log-weight (``factor expr``). With ``prefix=True`` it is also evaluated on prefixes,
    which SMC uses to weight particles early (the target still depends only on ``complete``)."""
    return Factor(fn, is_prefix=prefix, name=name, on=on)


def extern(fn: Callable[[str], Any], kind: str, *, prefix: bool = False, name: str | None = None
           ) -> TextPotential:
    """A host function passed in ``functions={...}``: ``kind`` is ``"predicate"`` (``str -> bool``)
    or ``"potential"`` (``str -> float``); ``prefix`` as declared by the ``prefix`` keyword."""
    if kind == "predicate":
        return Predicate(fn, is_prefix=prefix, name=name, on="str")
    if kind == "potential":
        return Factor(fn, is_prefix=prefix, name=name, on="str")
    raise GenArgumentError(f"an extern is a 'predicate' or a 'potential', not {kind!r}")


def constraint_potential(constraint: Any, name: str | None = None) -> ConstraintPotential:
    """A compiled constraint as a boolean prefix potential."""
    return ConstraintPotential(constraint, name)
