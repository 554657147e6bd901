"""DRY: the worked vector of the llama.cpp source, sequence breakers (single- and multi-token),
the overflow cap, and equality with a direct O(N^2) reference on 1,000 random short histories."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genweave.dsl.errors import GenCheckError
from genweave.runtime.samplers import compile_batch, dry
from genweave.runtime.samplers.dry import breaker_table

# token bytes of a toy vocabulary: a b c y are 0..3, then breakers and fillers
VOCAB = [b"a", b"b", b"c", b"y", b"\n", b"q:", b"\"", b"*", b"x", b"zz"]
V = len(VOCAB)


def penalties(stage, history: list[int], vocab=VOCAB) -> np.ndarray:
    """``z_before - z_after`` of a single DRY stage on zero logits after ``history``."""
    compiled = compile_batch([stage], len(vocab), vocab=vocab)
    state = compiled.new_state(1, prompts=[history])
    logp = compiled.logprobs(torch.zeros(1, len(vocab)), state)[0].double().numpy()
    return logp.max() - logp  # log-softmax of -penalty, shifted so an unpenalised token reads 0


def reference(history, mult, base, allowed, last_n, single, multi, vocab_size) -> np.ndarray:
    """The DRY contract, directly: restart limit, longest suffix matches, capped exponent."""
    c = history if last_n < 0 else history[max(0, len(history) - last_n):] if last_n > 0 else []
    n = len(c)
    out = np.zeros(vocab_size)
    if n <= allowed or mult == 0:
        return out
    rep_limit = n
    for i in range(n):  # distance from the end
        best = 0 if c[n - 1 - i] in single else -1
        for head, tail in multi:
            fits = head == c[n - 1 - i] and len(tail) <= i
            if fits and all(c[n - i + o] == tail[o] for o in range(len(tail))):
                best = max(best, len(tail))
        if best >= 0:
            rep_limit = i - best
            break
    longest: dict[int, int] = {}
    for j in range(n - 1):
        length = 0
        while length <= j and c[j - length] == c[n - 1 - length]:
            length += 1
        length = min(length, rep_limit)
        if length >= allowed:
            longest[c[j + 1]] = max(longest.get(c[j + 1], 0), length)
    cap = int(88.7228391 / math.log(base)) if base > 1.000001 else None
    for token, length in longest.items():
        if token not in single:
            exponent = length - allowed if cap is None else min(length - allowed, cap)
            out[token] = mult * base ** exponent
    return out


def test_the_worked_vector_of_the_llama_cpp_source():
    a, b, c, y = 0, 1, 2, 3
    got = penalties(dry(0.8, base=1.75, allowed_length=2), [a, b, c, c, b, c, y, a, b, c])
    want = np.zeros(V)
    want[c] = 0.8 * 1.75
    want[y] = 0.8
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_breaker_inside_the_repeat_stops_the_match():
    a, b, c, nl = 0, 1, 2, 4
    history = [nl, a, b, c, nl, a, b]
    # without breakers "nl a b" repeats (length 3: c gets base^1); the newline 2 tokens back caps it at 2
    free = penalties(dry(1.0, base=2.0, allowed_length=2, breakers=()), history)
    limited = penalties(dry(1.0, base=2.0, allowed_length=2, breakers=("\n",)), history)
    assert free[c] == pytest.approx(2.0) and limited[c] == pytest.approx(1.0)
    # a breaker as the last token: no repeat can continue across it
    assert not penalties(dry(1.0, breakers=("\n",)), [a, b, a, b, nl]).any()


def test_tokens_containing_a_breaker_are_single_token_breakers_and_never_penalised():
    table = breaker_table(tuple(VOCAB), ("\n", ":", '"', "*"))
    assert table.single == {4, 5, 6, 7}
    x, q = 8, 5
    got = penalties(dry(1.0, allowed_length=1, breakers=(":",)), [x, q, x, q, x])
    assert got[q] == 0  # "q:" follows a repeat but is itself a breaker


def test_multi_token_breakers_are_tokenised_against_the_vocabulary():
    vocab = [b"a", b"b", b"\n", b"x"]
    table = breaker_table(tuple(vocab), ("\n\n", "ab"))
    assert table.single == frozenset()
    assert set(table.multi) == {(2, (2,)), (0, (1,))}
    # "\n \n" in the history acts as a breaker: repeats before it do not count
    history = [3, 0, 3, 0, 2, 2, 3, 0]
    got = penalties(dry(1.0, base=2.0, allowed_length=1, breakers=("\n\n",)), history, vocab)
    want = reference(history, 1.0, 2.0, 1, -1, table.single, [(2, (2,))], 4)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_the_exponent_is_capped_against_float_overflow():
    history = [0, 1] * 200  # a repeat far longer than allowed_length + 88.72 / ln 1.75
    got = penalties(dry(0.8, base=1.75, allowed_length=2, breakers=()), history)
    cap = int(88.7228391 / math.log(1.75))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[0], 0.8 * 1.75 ** cap, rtol=1e-4)


def test_breakers_need_the_vocabulary():
    try:
        compile_batch([dry()], V)
    except GenCheckError as error:
        assert "vocab" in str(error)
    else:
        raise AssertionError("dry with breakers compiled without a vocabulary")


def test_equals_the_direct_reference_on_random_histories():
    """1,000 rows in one call, each with its own parameters, over a 5-token alphabet (many repeats)."""
    vocab = [b"a", b"b", b"c", b"d", b"\n", b"q", b"r", b"s"]
    breakers = ("\n", "ab")
    table = breaker_table(tuple(vocab), breakers)
    rng = np.random.default_rng(0)
    rows = 1000
    histories = [rng.integers(0, 5, size=rng.integers(0, 41)).tolist() for _ in range(rows)]
    params = [(float(rng.choice([0.0, 0.5, 1.3])), float(rng.choice([1.0, 1.5, 2.5])),
               int(rng.integers(1, 4)), int(rng.choice([-1, 0, 6, 15]))) for _ in range(rows)]
    chains = [dry(m, base=b, allowed_length=a, last_n=n, breakers=breakers) for m, b, a, n in params]
    compiled = compile_batch(chains, len(vocab), vocab=vocab)
    state = compiled.new_state(rows, prompts=histories)
    logits = torch.zeros(rows, len(vocab))
    got = compiled.logprobs(logits, state).double().numpy()
    for row in range(rows):
        want = reference(histories[row], *params[row], table.single, table.multi, len(vocab))
        expected = -want - np.log(np.exp(-want).sum())
        np.testing.assert_allclose(got[row], expected, atol=1e-5, err_msg=f"{histories[row]} {params[row]}")
