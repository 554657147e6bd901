"""Resampling schemes: unbiased offspring counts, zero weights never chosen, scheme-specific bounds."""

from __future__ import annotations

import math

import pytest
import torch

from genweave.dsl.errors import GenArgumentError
from genweave.runtime.inference.resampling import SCHEMES, effective_sample_size, normalized, resample

WEIGHTS = torch.tensor([0.31, 0.0, 0.07, 0.22, 0.005, 0.395], dtype=torch.float64)


def _counts(scheme: str, replicates: int = 40_000, seed: int = 0) -> torch.Tensor:
    w = WEIGHTS.expand(replicates, -1).contiguous()
    ancestors = resample(w, scheme, torch.Generator().manual_seed(seed))
    assert ancestors.shape == w.shape and ancestors.dtype == torch.int64
    counts = torch.zeros_like(w)
    counts.scatter_add_(1, ancestors, torch.ones_like(w))
    return counts


@pytest.mark.parametrize("scheme", SCHEMES)
def test_expected_offspring_is_n_times_weight(scheme):
    counts = _counts(scheme)
    n, replicates = WEIGHTS.shape[0], counts.shape[0]
    mean = counts.mean(0)
    se = counts.std(0) / math.sqrt(replicates)
    expected = n * WEIGHTS
    assert bool(((mean - expected).abs() <= 4 * se + 1e-12).all()), (scheme, mean, expected, se)
    assert bool((counts[:, 1] == 0).all())  # weight 0: never an ancestor


def test_scheme_specific_bounds():
    expected = WEIGHTS.shape[0] * WEIGHTS
    systematic = _counts("systematic", 5000)
    assert bool(((systematic >= expected.floor()) & (systematic <= expected.ceil())).all())
    residual = _counts("residual", 5000)
    assert bool((residual >= expected.floor()).all())
    stratified = _counts("stratified", 5000)
    assert bool((stratified <= expected.ceil() + 1).all())  # one point per stratum


def test_rows_are_independent_systems():
    w = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    for scheme in SCHEMES:
        out = resample(w, scheme, torch.Generator().manual_seed(1))
        assert out.tolist() == [[0, 0, 0], [2, 2, 2]]


def test_ess_and_normalization():
    log_w = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, -math.inf, -math.inf, -math.inf],
                          [-math.inf] * 4], dtype=torch.float64)
    assert effective_sample_size(log_w).tolist() == [4.0, 1.0, 0.0]
    assert normalized(log_w)[2].tolist() == [0.0] * 4
    big = torch.tensor([[1000.0, 1000.0]], dtype=torch.float64)  # no overflow
    assert normalized(big).tolist() == [[0.5, 0.5]]


def test_unknown_scheme_is_an_error():
    with pytest.raises(GenArgumentError, match="unknown resampling scheme"):
        resample(WEIGHTS[None], "bogus")
