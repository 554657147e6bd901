"""Statistical assertions: do samples follow an exactly known distribution?"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class GTestResult:
    statistic: float
    dof: int
    p_value: float
    bins: int


def g_test(samples: Iterable[Hashable], expected: Mapping[Hashable, float], *,
           min_expected: float = 5.0) -> GTestResult:
    """G-test of goodness of fit of ``samples`` to the distribution ``expected``.

    ``expected`` maps outcomes to probabilities (normalized here). Outcomes whose expected count is
    below ``min_expected`` are merged into one tail bin so the chi-square approximation holds. A
    sample outside the support of ``expected`` fails at once (p = 0).
    """
    counts = Counter(samples)
    total = sum(counts.values())
    mass = sum(expected.values())
    if total == 0 or mass <= 0:
        raise ValueError("g_test needs samples and a distribution with positive mass")
    outside = [x for x in counts if expected.get(x, 0.0) <= 0.0]
    if outside:
        return GTestResult(float("inf"), 0, 0.0, 0)
    observed, predicted, tail_obs, tail_exp = [], [], 0.0, 0.0
    for outcome, prob in expected.items():
        exp_count = total * prob / mass
        if exp_count < min_expected:
            tail_obs += counts.get(outcome, 0)
            tail_exp += exp_count
        else:
            observed.append(counts.get(outcome, 0))
            predicted.append(exp_count)
    if tail_exp > 0:
        observed.append(tail_obs)
        predicted.append(tail_exp)
    obs, exp = np.asarray(observed, float), np.asarray(predicted, float)
    if len(obs) < 2:
        return GTestResult(0.0, 0, 1.0, len(obs))
    nonzero = obs > 0
    statistic = 2.0 * float(np.sum(obs[nonzero] * np.log(obs[nonzero] / exp[nonzero])))
    dof = len(obs) - 1
    return GTestResult(statistic, dof, float(stats.chi2.sf(statistic, dof)), len(obs))


def assert_matches(samples: Iterable[Hashable], expected: Mapping[Hashable, float], *,
                   alpha: float = 1e-4) -> GTestResult:
    """Fail if a G-test rejects ``samples ~ expected`` at level ``alpha`` (the false-alarm rate).

    >>> import random
    >>> rng = random.Random(0)
    >>> _ = assert_matches([rng.random() < 0.3 for _ in range(5000)], {True: 0.3, False: 0.7})
    """
    samples = list(samples)
    result = g_test(samples, expected)
    if result.p_value < alpha:
        counts = Counter(samples)
        total = len(samples)
        mass = sum(expected.values())
        worst = sorted(expected, key=lambda x: -abs(counts.get(x, 0) / total - expected[x] / mass))[:5]
        detail = ", ".join(f"{x!r}: {counts.get(x, 0) / total:.4f} vs {expected[x] / mass:.4f}" for x in worst)
        unexpected = [x for x in counts if expected.get(x, 0.0) <= 0.0][:5]
        if unexpected:
            detail = f"samples outside the support: {unexpected!r}"
        raise AssertionError(f"samples do not match the expected distribution (G = {result.statistic:.2f}, "
                             f"dof = {result.dof}, p = {result.p_value:.3g} < {alpha}); {detail}")
    return result
