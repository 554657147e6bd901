"""One-hole problems on tiny ToyLMs, shared by the inference tests (imported as
``inference_problems``). Each has an exactly enumerable target (``exact_target``).

The token list ``a, b, ab, c`` (plus ``<eos>``) has overlapping tokens, so most texts have several
tokenizations; the problems mix a regular constraint, prefix and complete-only predicates, soft
factors (prefix and complete-only) and token budgets.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from genweave.runtime.constraints import compile_constraint, regex
from genweave.runtime.inference.hole import Hole
from genweave.runtime.inference.potentials import condition, factor, predicate
from genweave.runtime.models.toy import ToyLM

TOKENS = [b"a", b"b", b"ab", b"c"]


@dataclass(frozen=True)
class Problem:
    name: str
    model: ToyLM
    prompt: tuple[int, ...]
    hole: Hole


@cache
def toy(seed: int, sharpness: float = 1.0) -> ToyLM:
    return ToyLM(TOKENS, seed=seed, sharpness=sharpness)


@cache
def problem(name: str) -> Problem:
    """The named problem (built once per session)."""
    return _BUILDERS[name]()


def _prefix_factor() -> Problem:
    # a constraint and a soft factor that SMC sees on prefixes (budget 2)
    lm = toy(1)
    c = compile_constraint(regex("(a|b)c?"), lm.vocab, cache=False)
    return Problem("prefix_factor", lm, (), Hole(c, (factor(lambda s: 0.5 * s.count("b"), prefix=True),), 2))


def _finite_choice() -> Problem:
    # a finite language whose masked (local) law is far from the global target
    lm = toy(4)
    c = compile_constraint(regex("ab|ba|c|cab|bb"), lm.vocab, cache=False)
    return Problem("finite_choice", lm, (), Hole(c, (factor(lambda s: -0.5 * len(s)),), 3))


def _predicate_factor() -> Problem:
    # a prefix predicate (AWRS checks it) and a complete-only factor, after a prompt
    lm = toy(2)
    c = compile_constraint(regex("[abc]+"), lm.vocab, cache=False)
    potentials = (predicate(lambda s: "bb" not in s and "cc" not in s, name="no_doubles"),
                  factor(lambda s: 0.4 * s.count("a"), name="a_bonus"))
    return Problem("predicate_factor", lm, (3,), Hole(c, potentials, 2))


def _budget_condition() -> Problem:
    # no constraint: a complete-only condition and a forced EOS after 3 tokens
    lm = toy(5)
    return Problem("budget_condition", lm, (), Hole(None, (condition(lambda s: len(s) % 2 == 0),), 3))


def _hard_only() -> Problem:
    # hard constraints only (rejection sampling applies)
    lm = toy(6)
    c = compile_constraint(regex("(a|b)+c?"), lm.vocab, cache=False)
    return Problem("hard_only", lm, (0,), Hole(c, (predicate(lambda s: "ba" not in s),), 3))


_BUILDERS = {"prefix_factor": _prefix_factor, "finite_choice": _finite_choice,
             "predicate_factor": _predicate_factor, "budget_condition": _budget_condition,
             "hard_only": _hard_only}
NAMES = tuple(_BUILDERS)
