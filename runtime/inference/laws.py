"""Law checkers for potentials: run them on your own potentials before inference trusts them.

Every text (token sequence) up to ``depth`` tokens over a vocabulary is visited, and each law is
checked at every node:

* ``values``: no NaN or ``+inf``; a boolean potential returns only 0 or ``-inf``; a
  complete-only potential has ``prefix = 0`` everywhere;
* ``monotone``: for a prefix potential, ``prefix(y) = -inf`` implies ``prefix(y x) = -inf`` for
  every token ``x`` and ``complete(y) = -inf`` (a dead prefix stays dead);
* ``complete-implies-prefix``: for a boolean prefix potential, ``complete(y) = 0`` implies
  ``prefix(y) = 0``;
* ``check``: ``check(y, x) == (prefix(y x) == 0)`` and ``check_eos(y) == (complete(y) == 0)``
  for boolean prefix potentials (what AWRS calls must agree with the weights);
* ``batch``: ``prefix_many``/``complete_many`` equal the single calls;
* ``pure``: advancing a state does not change what the state scores (states are values).

>>> from genweave.runtime.inference.potentials import predicate
>>> good = predicate(lambda s: "bb" not in s)
>>> potential_law_violations(good, [b"a", b"b"], depth=3)
[]
>>> bad = predicate(lambda s: len(s) != 2)  # false on "ab", true again on "aba": not monotone
>>> sorted({v.law for v in potential_law_violations(bad, [b"a", b"b"], depth=3)})
['monotone']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from genweave.runtime.inference.potentials import NEG_INF, Potential
from genweave.runtime.vocab import Vocabulary


@dataclass(frozen=True)
class LawViolation:
    """One broken law at the text ``tokens`` (token ids) / ``text`` (bytes)."""

    law: str
    tokens: tuple[int, ...]
    text: bytes
    detail: str

    def __str__(self) -> str:
        return f"{self.law} at {self.text!r} (tokens {list(self.tokens)}): {self.detail}"


def potential_law_violations(potential: Potential, vocab: Vocabulary | Sequence[bytes], *, depth: int = 3,
                             max_nodes: int = 20_000) -> list[LawViolation]:
    """Every violation of the laws (module docstring) on texts of up to ``depth`` tokens of
    ``vocab`` (a Vocabulary, whose special tokens are skipped, or a list of token bytes)."""
    tokens = _text_tokens(vocab)
    found: list[LawViolation] = []
    stack: list[tuple[tuple[int, ...], bytes, Any]] = [((), b"", potential.initial())]
    visited = 0
    while stack and visited < max_nodes:
        ids, text, state = stack.pop()
        visited += 1
        children = [(t, data, potential.advance(state, t, data)) for t, data in tokens] if len(ids) < depth else []
        found += _node_laws(potential, ids, text, state, children)
        stack += [(ids + (t,), text + data, child) for t, data, child in children]
    return found


def assert_potential_laws(potential: Potential, vocab: Vocabulary | Sequence[bytes], *, depth: int = 3,
                          max_nodes: int = 20_000) -> None:
    """Raise AssertionError listing (up to 10) violations of the laws, if any."""
    found = potential_law_violations(potential, vocab, depth=depth, max_nodes=max_nodes)
    if found:
        listed = "\n  ".join(str(v) for v in found[:10])
        raise AssertionError(f"{potential!r} breaks {len(found)} law check(s):\n  {listed}")


def _text_tokens(vocab: Vocabulary | Sequence[bytes]) -> list[tuple[int, bytes]]:
    if isinstance(vocab, Vocabulary):
        return [(t, vocab.token_bytes[t]) for t in range(len(vocab)) if t not in vocab.special]
    return [(t, bytes(data)) for t, data in enumerate(vocab)]


def _node_laws(p: Potential, ids: tuple[int, ...], text: bytes, state: Any,
               children: list[tuple[int, bytes, Any]]) -> list[LawViolation]:
    out: list[LawViolation] = []

    def fail(law: str, detail: str) -> None:
        out.append(LawViolation(law, ids, text, detail))

    pre, com = p.prefix(state), p.complete(state)
    for name, value in (("prefix", pre), ("complete", com)):
        if math.isnan(value) or value == math.inf:
            fail("values", f"{name} = {value}")
        elif p.boolean and value not in (0.0, NEG_INF):
            fail("values", f"boolean potential has {name} = {value}")
    if not p.is_prefix and pre != 0.0:
        fail("values", f"complete-only potential has prefix = {pre}")
    if p.is_prefix and pre == NEG_INF:
        if com != NEG_INF:
            fail("monotone", f"prefix is -inf but complete = {com}")
        for t, _, child in children:
            if p.prefix(child) != NEG_INF:
                fail("monotone", f"prefix is -inf but prefix after token {t} is {p.prefix(child)}")
    if p.boolean and p.is_prefix:
        if com == 0.0 and pre != 0.0:
            fail("complete-implies-prefix", "complete holds but prefix does not")
        for t, data, child in children:
            if p.check(state, t, data) != (p.prefix(child) == 0.0):
                fail("check", f"check(token {t}) disagrees with prefix after it")
        if p.check_eos(state) != (com == 0.0):
            fail("check", "check_eos disagrees with complete")
    out += _batch_laws(p, state, pre, com, children, fail)
    return out


def _batch_laws(p: Potential, state: Any, pre: float, com: float, children: list, fail: Any) -> list:
    states = [state] + [child for _, _, child in children]
    single_pre = np.array([pre] + [p.prefix(s) for s in states[1:]])
    single_com = np.array([com] + [p.complete(s) for s in states[1:]])
    if not np.array_equal(np.asarray(p.prefix_many(states), dtype=np.float64), single_pre):
        fail("batch", "prefix_many differs from prefix")
    if not np.array_equal(np.asarray(p.complete_many(states), dtype=np.float64), single_com):
        fail("batch", "complete_many differs from complete")
    if (p.prefix(state), p.complete(state)) != (pre, com):
        fail("pure", "scores of the state changed after advancing from it")
    return []
