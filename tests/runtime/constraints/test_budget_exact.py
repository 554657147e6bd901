"""Exact token budgets (``max N tokens`` on a regular constraint): masks, no dead ends, laws.

The mask of ``(s, r)`` must allow exactly the tokens after which some text of the language is
reachable within the remaining budget, plus EOS iff the text is complete. The brute-force oracle
enumerates every token sequence of at most ``N`` tokens whose bytes are in the language (Python
``re``) and reads the allowed tokens off their prefixes; it never looks at the masks.

Statistical test: G-test at false-alarm rate 1e-4 (fixed seed) against the law enumerated by
``genweave.testing.exact_distribution``.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import genweave
from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints import DEAD, TokenBudget, compile_constraint, regex
from genweave.runtime.vocab import Vocabulary
from genweave.testing import ToyLM, assert_matches, exact_distribution

TOKENS = [b"a", b"b", b"c", b"ab", b"ba", b"aa", b"abc", b"bc"]  # overlapping on purpose
EOS = len(TOKENS)

CASES = [
    ("a*b", 3),
    ("(ab|ba)*c", 4),
    ("a{3}b?", 3),
    ("(a|bc)*abc", 4),
    ("[ab]*c[ab]", 3),
    ("abc|aab|b", 2),
    ("abcabc|c", 2),
    ("(aab)+", 4),
]


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_bytes([*TOKENS, b"<eos>"], eos_ids=[EOS])


def members(pattern: str, budget: int, tokens=TOKENS) -> set[tuple[int, ...]]:
    """Every token sequence of at most ``budget`` text tokens whose bytes match ``pattern``."""
    found = set()
    for n in range(budget + 1):
        for seq in itertools.product(range(len(tokens)), repeat=n):
            if re.fullmatch(pattern, b"".join(tokens[t] for t in seq).decode()):
                found.add(seq)
    return found


def oracle(pattern: str, budget: int, tokens=TOKENS) -> dict[tuple[int, ...], set[int]]:
    """Viable prefix -> the tokens (EOS = ``len(tokens)`` included) an exact mask must allow."""
    allowed: dict[tuple[int, ...], set[int]] = {}
    for seq in members(pattern, budget, tokens):
        for k in range(len(seq)):
            allowed.setdefault(seq[:k], set()).add(seq[k])
        allowed.setdefault(seq, set()).add(len(tokens))
    return allowed


def ids(row: torch.Tensor, size: int = EOS + 1) -> set[int]:
    bits = np.unpackbits(row.numpy().view(np.uint8), bitorder="little")[:size]
    return set(np.flatnonzero(bits).tolist())


def assert_exact(c: TokenBudget, expected: dict[tuple[int, ...], set[int]], size: int) -> None:
    """The masks (one batch over every viable prefix) and ``check`` agree with the oracle."""
    prefixes = sorted(expected)
    states = []
    for prefix in prefixes:
        state = c.initial()
        for token in prefix:
            state = c.advance(state, token)
        assert not c.is_dead(state), prefix
        states.append(state)
    for prefix, state, row in zip(prefixes, states, c.mask(states), strict=True):
        assert ids(row, size) == expected[prefix], prefix
        assert {t for t in range(size) if c.check(state, t)} == expected[prefix], prefix


@pytest.mark.parametrize(("pattern", "budget"), CASES)
def test_masks_equal_brute_force(vocab, pattern, budget):
    c = TokenBudget(compile_constraint(regex(pattern), vocab, cache=False), max_tokens=budget)
    expected = oracle(pattern, budget)
    assert expected, "the case needs a text within the budget"
    assert_exact(c, expected, EOS + 1)


@pytest.mark.parametrize("seed", range(6))
def test_masks_equal_brute_force_on_random_vocabularies(seed):
    """Random overlapping vocabularies over {a, b, c}; every (state, remaining) pair up to depth 4."""
    rng = np.random.default_rng(seed)
    tokens = sorted({rng.choice(list(b"abc"), size=n).astype(np.uint8).tobytes()
                     for n in (1, 2, 2, 3, 3, 4) for _ in range(2)} | {b"a", b"b", b"c"})
    vocab = Vocabulary.from_bytes([*tokens, b"<eos>"], eos_ids=[len(tokens)])
    for pattern in ["(ab|c)*b{2}", "a[bc]{3,5}|cc", "(abc)+|b"]:
        for budget in range(5):
            c = TokenBudget(compile_constraint(regex(pattern), vocab, cache=False), max_tokens=budget)
            expected = oracle(pattern, budget, tokens)
            assert c.exact == bool(expected)
            if expected:
                assert_exact(c, expected, len(tokens) + 1)


@pytest.mark.parametrize(("pattern", "budget"), CASES)
def test_prefixes_outside_the_oracle_are_dead(vocab, pattern, budget):
    """Every one-token extension of a viable prefix that the oracle rejects advances to DEAD."""
    c = TokenBudget(compile_constraint(regex(pattern), vocab, cache=False), max_tokens=budget)
    for prefix, allowed in oracle(pattern, budget).items():
        state = c.initial()
        for token in prefix:
            state = c.advance(state, token)
        for token in set(range(len(TOKENS))) - allowed:
            assert c.is_dead(c.advance(state, token)), (pattern, prefix, token)


def test_least_tokens_and_the_initial_distance_error(vocab):
    c = TokenBudget(compile_constraint(regex("a{5}"), vocab, cache=False), max_tokens=2)
    assert c.least_tokens() is None and c.least_tokens(10) == 3  # "aa" "aa" "a"
    with pytest.raises(GenCheckError, match=r"hole 'x' needs at least 3 tokens but max 2 tokens allows 2"):
        c.require_text("x")
    assert not c.exact  # doomed: one-token look-ahead, so the dead end comes where the budget ends
    assert ids(c.mask([c.initial()])[0]) == {0, 5}  # "a", "aa"
    no_d = TokenBudget(compile_constraint(regex("a*d"), vocab, cache=False), max_tokens=3)
    with pytest.raises(GenCheckError, match="can be written with the tokens"):
        no_d.require_text("x")
    fits = TokenBudget(compile_constraint(regex("a{5}"), vocab, cache=False), max_tokens=3)
    fits.require_text("x")
    assert fits.least_tokens() == 3


def test_random_walks_never_dead_end():
    """Walks through the masks on a larger overlapping vocabulary always finish within budget."""
    rng = np.random.default_rng(0)
    pieces = sorted({rng.choice(list(b"ab-c"), size=n).astype(np.uint8).tobytes()
                     for n in (1, 2, 3) for _ in range(40)})
    vocab = Vocabulary.from_bytes([*pieces, b"<eos>"], eos_ids=[len(pieces)])
    eos = len(pieces)
    for pattern, budget in [("(abc|b-a)+-c", 6), ("[ab]{7}c(-a)*", 5), ("(a-|bb|c)*ccc", 4)]:
        c = TokenBudget(compile_constraint(regex(pattern), vocab, cache=False), max_tokens=budget)
        c.require_text()
        for _ in range(150):
            state, text, used = c.initial(), b"", 0
            while True:
                row = c.mask([state])[0]
                allowed = np.flatnonzero(np.unpackbits(row.numpy().view(np.uint8), bitorder="little"))
                assert allowed.size, (pattern, text)
                token = int(rng.choice(allowed))
                if token == eos:
                    break
                state, text, used = c.advance(state, token), text + pieces[token], used + 1
            assert used <= budget and re.fullmatch(pattern, text.decode()), (pattern, text)


def test_distances_are_lazy(vocab):
    """Only states within reach of the decoded ones get successor walks."""
    c = TokenBudget(compile_constraint(regex("(ab|ba)*c|a{40}"), vocab, cache=False), max_tokens=3)
    c.mask([c.initial()])
    assert len(c.distances._successors) < c.inner.dfa.num_states // 2


LAW_PROGRAM = ('program p() -> str:\n  target:\n    "a"\n    x = gen regex r"abcd|x" max 2 tokens\n'
               '    return x\n')
LAW_VOCAB = [b"a", b"b", b"c", b"d", b"ab", b"cd", b"x"]


def test_programs_that_used_to_dead_end_now_complete():
    """One-token look-ahead let "a" through with 2 tokens left, then nothing finished "bcd"."""
    toy = ToyLM(LAW_VOCAB, seed=3)
    module = genweave.compile(LAW_PROGRAM)
    law = exact_distribution(module.p, toy, target="local")
    assert law.dead_end == 0.0 and sum(law.probs.values()) == pytest.approx(1.0, abs=1e-12)
    assert set(law.value_law()) == {"abcd", "x"}
    results = module.p(model=toy, draws=300, seed=0)
    assert {r.value for r in results} <= {"abcd", "x"}


@pytest.mark.parametrize(("hole", "seed"), [('regex r"abcd|x" max 2 tokens', 3),
                                            ('regex r"(ab|a)(cd|c)d?|b{3}" max 3 tokens', 5)])
def test_masked_sampling_follows_the_exact_local_law(hole, seed):
    toy = ToyLM(LAW_VOCAB, seed=seed)
    module = genweave.compile(f'program p() -> str:\n  target:\n    "a"\n    x = gen {hole}\n'
                              '    return x\n')
    law = exact_distribution(module.p, toy, target="local")
    assert law.dead_end == 0.0
    results = module.p(model=toy, draws=3000, seed=11)
    assert_matches([(r.hole_tokens["x"],) for r in results], law.probs, alpha=1e-4)


def test_dead_inner_state_has_an_empty_mask(vocab):
    c = TokenBudget(compile_constraint(regex("ab"), vocab, cache=False), max_tokens=3)
    assert ids(c.mask([c.dead_state()])[0]) == set() and c.dead_state().inner == DEAD


def test_docs_budget_example_runs():
    docs = Path(__file__).resolve().parents[3] / "docs" / "constraints.md"
    section = docs.read_text().split("## Token budgets")[1].split("\n## ")[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    exec(compile(block, "docs/constraints.md[token budgets]", "exec"), {})


def test_grammars_keep_the_one_token_look_ahead():
    """Context-free constraints are not exact: "((" passes with 2 tokens left, then nothing closes it."""
    from genweave.runtime.constraints.grammar import grammar

    tokens = [b"(", b")", b"a", b"</s>"]
    vocab = Vocabulary.from_bytes(tokens, eos_ids=[3])
    budget = TokenBudget(grammar('start: item*\n?item: "(" item* ")" | "a"').compile(vocab), max_tokens=3)
    assert budget.distances is None and not budget.exact and budget.least_tokens() is None
    state = budget.advance(budget.advance(budget.initial(), 0), 0)
    assert not budget.is_dead(state) and ids(budget.mask([state])[0]) == set()
