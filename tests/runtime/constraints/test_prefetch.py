"""Masks computed during the forward pass: the prefetcher's contract, and the executor's output
is bit-identical with and without overlap (same seed), errors included."""

from __future__ import annotations

import doctest
import threading

import pytest

import genweave
from genweave.runtime import execute
from genweave.runtime.constraints import prefetch, token_trie
from genweave.runtime.constraints.grammar import classify, fill
from genweave.runtime.constraints.prefetch import MaskPrefetcher
from genweave.testing import ToyLM

VOCAB = [b"a", b"b", b"ab", b"ba", b"1", b"2", b"12", b"-", b" ", b".", b"{", b"}", b'"', b":", b",", b"x", b" and "]


@pytest.fixture(scope="module")
def toy():
    return ToyLM(VOCAB, seed=5, sharpness=0.5)


# --- the prefetcher ---------------------------------------------------------------------------------

def test_start_runs_in_the_background_concurrently_with_the_caller():
    began, caller_went_on = threading.Event(), threading.Event()
    threads = []

    def compute():
        threads.append(threading.get_ident())
        began.set()
        assert caller_went_on.wait(timeout=10), "the computation did not overlap the caller"
        return "mask"

    with MaskPrefetcher(compute) as prefetch:
        prefetch.start()
        assert began.wait(timeout=10)
        caller_went_on.set()  # only a computation running concurrently can see this
        assert prefetch.take() == "mask" and prefetch.overlapping
    assert threads == [threads[0]] and threads[0] != threading.get_ident()


def test_a_computation_not_begun_is_taken_over_by_the_caller():
    release = threading.Event()
    threads = []
    with MaskPrefetcher(lambda: threads.append(threading.get_ident()) or "mask") as prefetch:
        prefetch._executor.submit(release.wait, 10)  # the worker is busy: the next start() queues
        prefetch.start()
        assert prefetch.take() == "mask" and threads == [threading.get_ident()]
        release.set()


def test_without_overlap_or_start_take_computes_inline():
    threads = []
    with MaskPrefetcher(lambda: threads.append(threading.get_ident()) or len(threads), overlap=False) as prefetch:
        prefetch.start()
        assert prefetch.take() == 1 and prefetch.take() == 2 and not prefetch.overlapping
    assert set(threads) == {threading.get_ident()}


def test_exceptions_surface_at_take_and_close_waits():
    with MaskPrefetcher(lambda: 1 / 0) as prefetch:
        prefetch.start()
        with pytest.raises(ZeroDivisionError):
            prefetch.take()
        prefetch.start()
        with pytest.raises(RuntimeError, match="twice"):
            prefetch.start()
    finished = []
    release = threading.Event()
    prefetch = MaskPrefetcher(lambda: release.wait(10) and finished.append(True))
    prefetch.start()
    release.set()
    prefetch.close()  # drops the pending result, after the computation ended
    assert finished == [True]


def test_the_mask_kernels_release_the_gil():
    kernels = [token_trie.walk_states, token_trie.advance_tokens, fill.fill_masks, classify.classify]
    assert all(k.targetoptions.get("nogil") for k in kernels)


def test_docstring_example_runs():
    result = doctest.testmod(prefetch)
    assert result.attempted > 0 and result.failed == 0


# --- the executor: identical results ----------------------------------------------------------------

PROGRAMS = [
    'regex r"(ab|b)+1?" max 6 tokens',
    'regex r"[ab12]{1,5}\\." max 8 tokens',
    'json r"""{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": false}""" max 12 tokens',
    'lark r"""start: "{" (item ("," item)*)? "}"\nitem: "a" | "b" | "12"\n""" max 40 tokens',
    'regex r"a+" | choice ["12", "b-"] max 5 tokens',
    "max 4 tokens",
]


def _runs(program, model, draws, seed, monkeypatch, overlap):
    monkeypatch.setattr(execute._Run, "overlap_masks", overlap)
    try:
        results = program.run(model=model, draws=draws, seed=seed)
    except genweave.GenError as error:  # a dead end must come out the same way too
        return f"{type(error).__name__}: {error}"
    results = [results] if draws == 1 else list(results)
    return [(r.text, r.tokens, r.logprob, r.hole_tokens) for r in results]


@pytest.mark.parametrize("hole", PROGRAMS)
def test_overlap_gives_bit_identical_draws(toy, monkeypatch, hole):
    source = f'program p():\n  target:\n    "x"\n    y = gen {hole}\n    " and "\n    z = gen {hole}\n    return z\n'
    program = genweave.compile(source).p
    for seed in (0, 1):
        overlapped = _runs(program, toy, 16, seed, monkeypatch, True)
        assert isinstance(overlapped, list), overlapped
        assert overlapped == _runs(program, toy, 16, seed, monkeypatch, False)


def test_overlap_on_smollm2_is_bit_identical(smollm2, monkeypatch):
    program = genweave.compile(
        'program p():\n  target:\n    "A person as JSON: "\n'
        '    y = gen json r"""{"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}}, '
        '"required": ["name"], "additionalProperties": false}""" max 10 tokens\n'
        '    return y\n').p
    overlapped = _runs(program, smollm2, 1, 7, monkeypatch, True)
    assert overlapped == _runs(program, smollm2, 1, 7, monkeypatch, False)
    assert all(text.startswith('A person as JSON: {"name":"') for text, *_ in overlapped)


def test_dead_ends_raise_the_same_error_at_the_same_step(monkeypatch):
    # "a" needs a "c" that no token writes: the mask after "a" is empty
    program = genweave.compile('program p():\n  target:\n    "b"\n    y = gen regex r"ac|b+"\n    return y\n').p
    model = ToyLM([b"a", b"b"], seed=1, sharpness=0.0)
    errors = []
    for overlap in (True, False):
        monkeypatch.setattr(execute._Run, "overlap_masks", overlap)
        with pytest.raises(genweave.NoValidTokenError) as caught:
            for seed in range(40):  # some seed draws "a" first
                program.run(model=model, seed=seed)
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and "no token can continue the text b'a'" in errors[0]
