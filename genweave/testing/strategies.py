"""Hypothesis strategies for testing samplers, constraints and programs on small cases.

>>> from hypothesis import given, settings
>>> @settings(max_examples=5, derandomize=True)
... @given(logits(vocab_size=6))
... def check(row):
...     assert row.shape == (1, 6)
>>> check()
"""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

from genweave.runtime.models.toy import ToyLM
from genweave.runtime.samplers import ChainSpec, build_chain

_FINITE = st.floats(min_value=-20.0, max_value=20.0, allow_nan=False, allow_infinity=False)


@st.composite
def logits(draw, *, vocab_size: int | None = None, batch: int = 1, masked: bool = True,
           ties: bool = True) -> torch.Tensor:
    """``[batch, V]`` float32 logits with the adversarial cases samplers get wrong: ties, ``-inf``
    entries (at least one finite per row), one dominant token, uniform rows."""
    size = vocab_size or draw(st.integers(2, 12))
    rows = []
    for _ in range(batch):
        kind = draw(st.sampled_from(["random", "ties", "dominant", "uniform"] if ties else ["random"]))
        if kind == "uniform":
            row = [draw(_FINITE)] * size
        elif kind == "ties":
            pool = draw(st.lists(_FINITE, min_size=1, max_size=3))
            row = [draw(st.sampled_from(pool)) for _ in range(size)]
        else:
            row = draw(st.lists(_FINITE, min_size=size, max_size=size))
            if kind == "dominant":
                row[draw(st.integers(0, size - 1))] = 60.0
        if masked:
            hidden = draw(st.lists(st.booleans(), min_size=size, max_size=size))
            keep = draw(st.integers(0, size - 1))
            row = [-math.inf if h and i != keep else v for i, (v, h) in enumerate(zip(row, hidden))]
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float32)


@st.composite
def toy_lms(draw, *, max_tokens: int = 6, alphabet: bytes = b"ab") -> ToyLM:
    """Small :class:`ToyLM` models: overlapping byte tokens over ``alphabet``, an EOS, a seed."""
    tokens = draw(st.lists(st.binary(min_size=1, max_size=3).filter(lambda b: set(b) <= set(alphabet)),
                           min_size=1, max_size=max_tokens, unique=True))
    for byte in alphabet:  # every text over the alphabet can be written
        if bytes([byte]) not in tokens:
            tokens.append(bytes([byte]))
    return ToyLM(tokens, seed=draw(st.integers(0, 2**16)), sharpness=draw(st.sampled_from([0.5, 1.0, 2.0])))


def _regex_of(draw, depth: int, alphabet: str) -> str:
    atoms = [*alphabet, f"[{alphabet}]", "."] if depth == 0 else None
    if depth == 0:
        return draw(st.sampled_from(atoms))
    kind = draw(st.sampled_from(["concat", "alt", "star", "plus", "opt", "count", "atom"]))
    inner = _regex_of(draw, depth - 1, alphabet)
    if kind == "concat":
        return inner + _regex_of(draw, depth - 1, alphabet)
    if kind == "alt":
        return f"(?:{inner}|{_regex_of(draw, depth - 1, alphabet)})"
    if kind == "count":
        low = draw(st.integers(0, 2))
        return f"(?:{inner}){{{low},{low + draw(st.integers(0, 2))}}}"
    suffix = {"star": "*", "plus": "+", "opt": "?", "atom": ""}[kind]
    return f"(?:{inner}){suffix}"


@st.composite
def regexes(draw, *, alphabet: str = "ab", max_depth: int = 3) -> str:
    """Regular expressions over ``alphabet`` (concatenation, alternation, repetition, classes)."""
    return _regex_of(draw, draw(st.integers(0, max_depth)), alphabet)


_CHAIN_STAGES = {
    "temperature": lambda d: {"t": d(st.sampled_from([0.3, 0.7, 1.0, 1.5]))},
    "top_k": lambda d: {"k": d(st.integers(1, 5))},
    "top_p": lambda d: {"p": d(st.sampled_from([0.5, 0.8, 0.95]))},
    "min_p": lambda d: {"p": d(st.sampled_from([0.02, 0.1, 0.3]))},
    "typical": lambda d: {"mass": d(st.sampled_from([0.5, 0.9]))},
    "epsilon": lambda d: {"epsilon": d(st.sampled_from([1e-3, 0.05]))},
    "repetition_penalty": lambda d: {"penalty": d(st.sampled_from([1.1, 1.5]))},
}


@st.composite
def sampler_chains(draw, *, max_stages: int = 3) -> ChainSpec:
    """Valid sampler chains of up to ``max_stages`` stateless or penalty stages."""
    names = draw(st.lists(st.sampled_from(sorted(_CHAIN_STAGES)), min_size=1, max_size=max_stages))
    return build_chain([(name, _CHAIN_STAGES[name](draw)) for name in names])
