"""Potentials: their contract (checked with the shipped law checkers), EOS weights, text decoding,
and that the law checkers catch broken potentials."""

from __future__ import annotations

import math

import numpy as np
import pytest
from inference_problems import toy

from genweave.dsl.errors import GenArgumentError
from genweave.runtime.constraints import TokenBudget, compile_constraint, regex
from genweave.runtime.inference.laws import assert_potential_laws, potential_law_violations
from genweave.runtime.inference.potentials import (
    NEG_INF,
    Predicate,
    condition,
    constraint_potential,
    extern,
    factor,
    predicate,
    prefix_text,
)

NEG = -math.inf


def _library():
    vocab = toy(0).vocab
    c = compile_constraint(regex("(ab|c)+"), vocab, cache=False)
    return vocab, [
        predicate(lambda s: "bb" not in s, name="no_bb"),
        predicate(lambda s: s.count("a") <= 2, name="few_a"),
        condition(lambda s: len(s) % 2 == 0, name="even"),
        factor(lambda s: -0.5 * len(s), name="length"),
        factor(lambda s: 0.3 * s.count("c"), prefix=True, name="c_bonus"),
        factor(lambda s: NEG if s.endswith("cc") else 0.0, prefix=False, name="soft_hard"),
        extern(lambda s: s.startswith("a") or not s, "predicate", prefix=False),
        constraint_potential(c),
        constraint_potential(TokenBudget(c, 2)),
    ]


def test_builtin_potentials_satisfy_the_laws():
    vocab, potentials = _library()
    for p in potentials:
        assert_potential_laws(p, vocab, depth=3)


def test_eos_weight_is_complete_minus_prefix():
    vocab, potentials = _library()
    no_bb, _, even, length, c_bonus, *_ = potentials
    state = c_bonus.advance(c_bonus.initial(), 3, b"c")
    assert c_bonus.eos_weight(state) == pytest.approx(0.0)
    assert length.eos_weight(length.advance(length.initial(), 0, b"abc")) == pytest.approx(-1.5)
    assert even.eos_weight(even.advance(even.initial(), 0, b"abc")) == NEG_INF
    dead = no_bb.advance(no_bb.initial(), 1, b"bb")
    assert no_bb.prefix(dead) == NEG_INF and no_bb.eos_weight(dead) == NEG_INF  # never nan


def test_constraint_potential_checks_eos_by_completeness():
    vocab = toy(0).vocab
    p = constraint_potential(compile_constraint(regex("ab"), vocab, cache=False))
    eos = vocab.eos_ids[0]
    start = p.initial()
    assert not p.check(start, eos, b"") and p.check(start, 2, b"ab") and p.check(start, 0, b"a")
    done = p.advance(start, 2, b"ab")
    assert p.check(done, eos, b"") and p.check_eos(done) and p.complete(done) == 0.0


def test_prefix_text_waits_for_incomplete_utf8():
    e_acute = "é".encode()
    assert prefix_text(b"caf" + e_acute[:1]) == "caf"
    assert prefix_text(b"caf" + e_acute) == "café"
    assert prefix_text(b"\xff" + b"x") == "\ufffdx"


def test_bad_return_values_are_errors():
    with pytest.raises(GenArgumentError, match="not bool"):
        predicate(lambda s: 1).prefix(b"x")
    with pytest.raises(GenArgumentError, match="not a number"):
        factor(lambda s: "high").complete(b"x")
    with pytest.raises(GenArgumentError, match="finite or -inf"):
        factor(lambda s: float("nan")).complete(b"x")
    with pytest.raises(GenArgumentError, match="'predicate' or a 'potential'"):
        extern(len, "critic")


class _BadBatch(Predicate):
    def prefix_many(self, states):
        return np.zeros(len(states))  # ignores the predicate


class _BadCheck(Predicate):
    def check(self, state, token, data):
        return True  # claims every token is fine


@pytest.mark.parametrize("potential, law", [
    (predicate(lambda s: len(s) != 2), "monotone"),  # false on "ab", true again on "aba"
    (predicate(lambda s: not s.endswith("b")), "monotone"),  # looks at the last letter only
    (_BadBatch(lambda s: "b" not in s, is_prefix=True, name="batch", on="str"), "batch"),
    (_BadCheck(lambda s: "b" not in s, is_prefix=True, name="check", on="str"), "check"),
    (factor(lambda s: 2.0, prefix=True), None),
], ids=["length", "last-letter", "batch", "check", "fine"])
def test_law_checkers_catch_broken_potentials(potential, law):
    found = {v.law for v in potential_law_violations(potential, [b"a", b"b", b"c"], depth=3)}
    if law is None:
        assert found == set()
    else:
        assert law in found
        with pytest.raises(AssertionError, match=law):
            assert_potential_laws(potential, [b"a", b"b", b"c"], depth=3)


def test_complete_implies_prefix_law():
    class Inverted(Predicate):
        def complete(self, state):
            return 0.0  # complete holds where the prefix already failed
    found = {v.law for v in potential_law_violations(Inverted(lambda s: "b" not in s, is_prefix=True, name="i",
                                                              on="str"), [b"a", b"b"], depth=2)}
    assert {"monotone", "complete-implies-prefix"} <= found
