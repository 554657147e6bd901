"""The sampler settings every per-sampler test runs over (shared by the test files)."""

from __future__ import annotations

from genweave.runtime.samplers import (
    epsilon,
    eta,
    greedy,
    logit_bias,
    min_p,
    temperature,
    top_h,
    top_k,
    top_n_sigma,
    top_p,
    typical,
    xtc,
)

V = 50

# one entry per sampler, each with a few parameter settings (min_keep > 1 included)
CASES = {
    "greedy": [greedy()],
    "temperature": [temperature(0.3), temperature(2.5), temperature(0.0)],
    "top_k": [top_k(1), top_k(5), top_k(20), top_k(3, min_keep=6)],
    "top_p": [top_p(0.5), top_p(0.9), top_p(0.99), top_p(0.0), top_p(0.3, min_keep=4)],
    "min_p": [min_p(0.05), min_p(0.3), min_p(1.0), min_p(0.5, min_keep=3)],
    "typical": [typical(0.2), typical(0.9), typical(0.5, min_keep=5)],
    "epsilon": [epsilon(3e-4), epsilon(0.02), epsilon(0.5, min_keep=2)],
    "eta": [eta(3e-4), eta(4e-3), eta(0.05), eta(0.5, min_keep=3)],
    "top_h": [top_h(0.2, top_n=20), top_h(0.4), top_h(0.8, top_n=30), top_h(0.4, variant="hf"),
              top_h(0.7, top_n=10, variant="hf")],
    "top_n_sigma": [top_n_sigma(0.0), top_n_sigma(1.0), top_n_sigma(2.5)],
    "logit_bias": [logit_bias({0: 5.0, 3: -2.0, 7: float("-inf")})],
    "xtc": [xtc(0.5, 0.1), xtc(1.0, 0.05), xtc(0.3, 0.2, min_keep=40)],
}
ALL = [(name, stage) for name, stages in CASES.items() for stage in stages]
IDS = [str(stage) for _, stage in ALL]
