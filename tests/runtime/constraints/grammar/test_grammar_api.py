"""The grammar builder: errors at construction, parser kinds, the standard grammars, and the step
protocol shared with regular constraints (Matcher, TokenBudget, ``&``/``|`` combinations)."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import torch
from constraint_oracles import unpack
from grammar_cases import EARLEY

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints import DEAD, Matcher, TokenBudget, regex
from genweave.runtime.constraints.grammar import STD_GRAMMARS, Combination, grammar, std_grammar
from genweave.runtime.vocab import Vocabulary

TOKENS = [b"a", b"b", b"ab", b"(", b")", b"()", b"1", b"+", b" ", b"x", b"<pad>", b"</s>"]
A, B, AB, LP, RP, LPRP, ONE, PLUS, SPACE, X, PAD, EOS = range(len(TOKENS))
PARENS = 'start: item*\n?item: "(" item* ")" | "a" | "b"'


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_bytes(TOKENS, eos_ids=[EOS], special=[PAD])


@pytest.mark.parametrize(("text", "words"), [
    ("start: (", "invalid Lark grammar"),
    ("start: missing", "invalid Lark grammar"),
    ('start: S\n%import common.ESCAPED_STRING -> S', "terminal S"),
    ("start: A\nA: /a*/", "matches the empty string"),
    ('start: start "a"', "derives no text"),
    ("start: A\nA: /(?<=x)a/", "terminal A"),
])
def test_invalid_grammars_raise_at_construction(text, words):
    with pytest.raises(GenCheckError) as error:
        grammar(text)
    assert words in error.value.message


def test_arguments_are_checked():
    with pytest.raises(GenCheckError):
        grammar(b"start: A")
    with pytest.raises(GenCheckError):
        grammar('start: "a"', start="")
    with pytest.raises(GenCheckError):
        std_grammar("yaml")
    with pytest.raises(GenCheckError):
        Combination(grammar('start: "a"'), 42, "and")


def test_parser_kind_and_explain(vocab):
    lalr, fallback = grammar(PARENS), grammar(EARLEY["ambiguous"][0])
    assert lalr.parser_kind == "lalr" and "LALR(1)" in lalr.explain()
    assert fallback.parser_kind == "earley"
    assert "Earley fallback" in fallback.explain() and "Shift/Reduce conflict" in fallback.explain()
    compiled = fallback.compile(vocab)
    assert compiled.parser_kind == "earley" and "Earley" in compiled.explain()
    assert "LALR(1)" in lalr.compile(vocab, index="full").explain()
    with pytest.raises(ValueError):
        lalr.compile(vocab, index="eager")


def test_standard_grammars_are_lalr():
    for name in STD_GRAMMARS:
        built = std_grammar(name)
        assert built.parser_kind == "lalr" and built.key() == grammar(built.text).key()
    assert std_grammar("json").key() != std_grammar("sql").key()


def test_unproductive_rules_are_dropped(vocab):
    constraint = grammar('start: "a" | x\nx: x "b"').compile(vocab)
    assert constraint.allowed_tokens(constraint.initial()).tolist() == [A]


@pytest.mark.parametrize("text", [PARENS, PARENS + "\nlonger: item item"])
def test_matcher_consume_rollback_fork(text, vocab):
    constraint = grammar(text).compile(vocab)
    matcher = Matcher(constraint)
    assert matcher.is_complete()  # item* accepts the empty text
    assert matcher.consume([LP, A, LPRP])
    assert not matcher.is_complete() and not matcher.allows(EOS)
    fork = matcher.fork()
    assert fork.consume([RP, EOS]) and fork.is_ended() and fork.is_complete()
    assert matcher.accepts(b")") and not matcher.accepts(b"))")
    assert not matcher.consume([RP, RP]) and matcher.is_dead()
    assert not matcher.mask().any()
    matcher.rollback(2)
    assert not matcher.is_dead() and matcher.allows(RP) and not matcher.allows(SPACE)
    assert matcher.tokens() == [LP, A, LPRP]


def test_token_budget_on_a_grammar(vocab):
    constraint = grammar(PARENS).compile(vocab)
    budget = TokenBudget(constraint, max_tokens=2)
    state = budget.advance(budget.initial(), LP)
    last = unpack(budget.mask([state]))[0, : len(TOKENS)]
    assert np.flatnonzero(last).tolist() == [RP]  # only ")" closes the text within the budget
    state = budget.advance(state, RP)
    assert budget.is_complete(state)
    assert np.flatnonzero(unpack(budget.mask([state]))[0, : len(TOKENS)]).tolist() == [EOS]
    assert budget.is_dead(budget.advance(budget.advance(budget.initial(), LP), A))


def test_union_is_the_or_and_intersection_the_and_of_masks(vocab):
    parens, ones = grammar(PARENS), regex(r"1(\+1)*")
    union, both = (parens | ones).compile(vocab), (parens & regex(r"[()]*")).compile(vocab)
    parens_c, ones_c = parens.compile(vocab), grammar('start: "1" ("+" "1")*').compile(vocab)
    assert torch.equal(union.mask([union.initial()]),
                       parens_c.mask([parens_c.initial()]) | ones_c.mask([ones_c.initial()]))
    state = union.advance(union.initial(), ONE)
    assert union.allowed_tokens(state).tolist() == [PLUS, EOS]
    assert union.advance(state, A) == DEAD and union.is_complete(state)
    assert both.allowed_tokens(both.initial()).tolist() == [LP, LPRP, EOS]
    state = both.advance(both.initial(), LP)
    assert both.check(state, RP) and not both.check(state, A)
    assert not both.is_complete(state) and both.is_complete(both.walk(state, b")"))
    assert both.advance(state, A) == DEAD and not both.mask([DEAD]).any()
    # the documented limit of AND: "(" is a prefix of both languages but of no common text
    dead_end = (parens & regex(r"\(")).compile(vocab)
    state = dead_end.advance(dead_end.initial(), LP)
    assert state != DEAD and not dead_end.mask([state]).any()


def test_grammar_with_regex_combination_keys_and_text():
    combined = grammar(PARENS) & regex("[()]*") | grammar('start: "x"')
    assert combined.key().startswith("or(and(grammar(")
    assert "&" in str(combined) and "|" in str(combined)


MODULES = ["builder", "combine", "earley", "lexers", "spec", "stores"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"genweave.runtime.constraints.grammar.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
