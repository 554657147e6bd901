"""The acceptance rules of speculative decoding are exact.

Two kinds of checks (spec 0.5): *exact* -- the rule's output law, computed by enumerating every
draft and coin outcome with the module's own acceptance probabilities and residuals (float64,
tolerance 1e-12), equals the target law; *sampled* -- the batched implementation, run on 20 000
rows at once, matches the enumerated law of one verification round (G-test, false-alarm rate
1e-4, fixed seeds). Toy tables have V = 4-5 tokens, some zero probabilities in p and q.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from genweave.runtime.inference.speculative.verify import (
    acceptance,
    kseq_rho,
    residual,
    verify_chain,
    verify_kseq,
    verify_recursive,
)
from genweave.testing import assert_matches

V = 4
ROWS = 20_000


def table(seed: int, depth: int, zeros: float = 0.25) -> dict[tuple[int, ...], torch.Tensor]:
    """A random next-token law for every history of length < depth (some entries exactly 0)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for length in range(depth):
        for h in itertools.product(range(V), repeat=length):
            p = torch.empty(V, dtype=torch.float64).exponential_(generator=g)  # Dirichlet(1, ..., 1)
            p = p * (torch.rand(V, generator=g, dtype=torch.float64) > zeros)
            p[int(torch.randint(V, (1,), generator=g))] += 0.05  # never all zero
            out[h] = p / p.sum()
    return out


def round_law(p, q, h: tuple[int, ...], drafts: int) -> dict[tuple[int, ...], float]:
    """Exact law of one round's output (kept drafts, then the verifier's token) of the standard rule
    with ``drafts`` tokens drawn from ``q``, built from the module's ``acceptance`` and ``residual``."""
    if drafts == 0:
        return {(y,): float(p[h][y]) for y in range(V) if p[h][y] > 0}
    law: dict[tuple[int, ...], float] = {}
    fix = residual(p[h], q[h])
    for x in range(V):
        if q[h][x] == 0:
            continue
        keep = float(acceptance(p[h][x], q[h][x]))
        for rest, prob in round_law(p, q, h + (x,), drafts - 1).items():
            law[(x,) + rest] = law.get((x,) + rest, 0.0) + float(q[h][x]) * keep * prob
        for y in range(V):
            law[(y,)] = law.get((y,), 0.0) + float(q[h][x]) * (1 - keep) * float(fix[y])
    return law


def extended(p, law: dict[tuple[int, ...], float], length: int) -> dict[tuple[int, ...], float]:
    """The law of the first ``length`` tokens when plain decoding goes on after the round."""
    out: dict[tuple[int, ...], float] = {}
    for seq, prob in law.items():
        for tail in itertools.product(range(V), repeat=length - len(seq)):
            full, mass = seq + tail, prob
            for i in range(len(seq), length):
                mass *= float(p[full[:i]][full[i]])
            if mass > 0:
                out[full] = out.get(full, 0.0) + mass
    return out


def target_law(p, length: int) -> dict[tuple[int, ...], float]:
    out = {}
    for seq in itertools.product(range(V), repeat=length):
        mass = math.prod(float(p[seq[:i]][seq[i]]) for i in range(length))
        if mass > 0:
            out[seq] = mass
    return out


def assert_same_law(a: dict, b: dict, tol: float = 1e-12) -> None:
    for key in set(a) | set(b):
        assert abs(a.get(key, 0.0) - b.get(key, 0.0)) <= tol, (key, a.get(key), b.get(key))


@pytest.mark.parametrize("drafts", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_standard_rule_emits_the_target_law_exactly(drafts, seed):
    p, q = table(seed, drafts + 2), table(seed + 100, drafts + 1)
    law = round_law(p, q, (), drafts)
    assert abs(sum(law.values()) - 1) < 1e-12
    assert_same_law(extended(p, law, drafts + 1), target_law(p, drafts + 1))


def test_point_mass_drafts_are_the_standard_rule_with_q_a_delta():
    p = table(3, 4)
    q = {h: torch.nn.functional.one_hot(torch.tensor(sum(h) % V), V).double() for h in p}
    law = round_law(p, q, (), 2)
    assert_same_law(extended(p, law, 3), target_law(p, 3))


def test_residual_of_equal_laws_is_finite_and_the_rule_accepts_everything():
    p = torch.tensor([[0.5, 0.5, 0.0, 0.0]], dtype=torch.float64)
    assert torch.equal(residual(p, p), p)
    logp = p.log()[:, None].expand(ROWS, 3, V).contiguous()
    drafts = torch.multinomial(p[0], ROWS * 2, replacement=True, generator=torch.Generator().manual_seed(1))
    drafts = drafts.view(ROWS, 2)
    n, y = verify_chain(logp, drafts, torch.full((ROWS,), 2), logp[:, :2], generator=torch.Generator().manual_seed(0))
    assert bool((n == 2).all()) and not bool(torch.isnan(logp).any())
    assert set(y.tolist()) <= {0, 1}


def sampled_round(p, q, drafts: int, point_mass: bool, seed: int) -> list[tuple[int, ...]]:
    """Run ``verify_chain`` on ROWS rows whose drafts follow ``q`` (or the delta of ``q``'s argmax)."""
    g = torch.Generator().manual_seed(seed)
    xs = torch.zeros((ROWS, drafts), dtype=torch.long)
    histories = [()] * ROWS
    logp, logq = [], []
    for i in range(drafts + 1):
        logp.append(torch.stack([p[h] for h in histories]).log())
        if i == drafts:
            break
        rows_q = torch.stack([q[h] for h in histories])
        logq.append(rows_q.log())
        xs[:, i] = rows_q.argmax(-1) if point_mass else torch.multinomial(rows_q, 1, generator=g)[:, 0]
        histories = [h + (x,) for h, x in zip(histories, xs[:, i].tolist())]
    n, y = verify_chain(torch.stack(logp, 1), xs, torch.full((ROWS,), drafts),
                        None if point_mass else torch.stack(logq, 1), generator=g)
    return [tuple(row[:k]) + (t,) for row, k, t in zip(xs.tolist(), n.tolist(), y.tolist())]


@pytest.mark.parametrize("point_mass", [False, True])
def test_verify_chain_samples_the_round_law(point_mass):
    p, q = table(5, 4), table(6, 3)
    if point_mass:
        q = {h: torch.nn.functional.one_hot(r.argmax(), V).double() for h, r in q.items()}
    assert_matches(sampled_round(p, q, 2, point_mass, seed=7), round_law(p, q, (), 2), alpha=1e-4)


def test_acceptance_rate_is_one_minus_total_variation():
    p, q = table(8, 1)[()], table(9, 1)[()]
    n, _ = verify_chain(p.log()[None, None].expand(ROWS, 2, V).contiguous(),
                        torch.multinomial(q, ROWS, replacement=True, generator=torch.Generator().manual_seed(1))[:, None],
                        torch.ones(ROWS, dtype=torch.long), q.log()[None, None].expand(ROWS, 1, V).contiguous(),
                        generator=torch.Generator().manual_seed(2))
    beta = float(torch.minimum(p, q).sum())
    assert abs(n.double().mean().item() - beta) < 4 * math.sqrt(beta * (1 - beta) / ROWS)


def test_greedy_keeps_drafts_while_they_are_the_argmax_lowest_id_on_ties():
    logp = torch.tensor([[[0.4, 0.4, 0.2, 0.0], [0.1, 0.6, 0.3, 0.0], [0.3, 0.3, 0.3, 0.1]]]).log()
    cases = {(0, 1): (2, 0), (1, 1): (0, 0), (0, 2): (1, 1)}
    for drafts, expected in cases.items():
        n, y = verify_chain(logp, torch.tensor([drafts]), torch.tensor([2]), greedy=True)
        assert (n.item(), y.item()) == expected


def test_rows_with_shorter_drafts_ignore_the_padding():
    logp = torch.full((2, 3, V), math.log(1 / V))
    logp[:, :, 0] = 0.0
    logp[:, :, 1:] = -math.inf
    n, y = verify_chain(logp, torch.tensor([[0, 0], [0, 0]]), torch.tensor([2, 0]), greedy=True)
    assert n.tolist() == [2, 0] and y.tolist() == [0, 0]


# ------------------------------------------------------------------------------- K-SEQ (SpecTr)
def kseq_law(p: torch.Tensor, q: torch.Tensor, k: int) -> tuple[torch.Tensor, float]:
    """Exact output law and acceptance probability of K-SEQ with ``k`` i.i.d. candidates."""
    rho = kseq_rho(p[None], q[None], k)[0]
    accept = acceptance(p, rho * q)
    out, accepted = torch.zeros(V + 1, dtype=torch.float64), 0.0
    fix = residual(p, rho * q)
    for xs in itertools.product(range(V + 1), repeat=k):
        xs = tuple(x for x in xs if x < V)
        if len(xs) != k:
            continue
        mass, alive = math.prod(float(q[x]) for x in xs), 1.0
        for x in xs:
            out[x] += mass * alive * float(accept[x])
            accepted += mass * alive * float(accept[x])
            alive *= 1 - float(accept[x])
        out[:V] += mass * alive * fix
    return out[:V], accepted


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("seed", [10, 11, 12])
def test_kseq_emits_p_exactly_with_acceptance_one_minus_miss_to_the_k(k, seed):
    p, q = table(seed, 1)[()], table(seed + 50, 1)[()]
    law, accepted = kseq_law(p, q, k)
    assert torch.allclose(law, p, atol=1e-12, rtol=0)
    rho = kseq_rho(p[None], q[None], k)[0]
    beta = float(torch.minimum(q, p / rho).sum())
    assert abs(accepted - (1 - (1 - beta) ** k)) < 1e-9
    if k == 1:
        assert float(rho) == 1.0


def test_kseq_acceptance_does_not_decrease_with_more_candidates():
    p, q = table(13, 1)[()], table(14, 1)[()]
    rates = [kseq_law(p, q, k)[1] for k in (1, 2, 3)]
    assert rates == sorted(rates)


def test_verify_kseq_samples_p():
    p, q = table(15, 1)[()], table(16, 1)[()]
    g = torch.Generator().manual_seed(3)
    candidates = torch.multinomial(q, ROWS * 3, replacement=True, generator=g).view(ROWS, 3)
    _, token = verify_kseq(p.expand(ROWS, V), q.expand(ROWS, V), candidates, torch.full((ROWS,), 3), g)
    assert_matches(token.tolist(), dict(enumerate(p.tolist())), alpha=1e-4)


# ------------------------------------------------------------------ recursive rejection (RSD)
def recursive_law(p: torch.Tensor, q: torch.Tensor, n: int, iid_siblings: bool = False) -> torch.Tensor:
    """Exact output law of recursive rejection sampling over ``n`` candidates drawn without
    replacement from ``q`` (with ``iid_siblings``: the wrong rule that keeps using ``q``)."""
    out = torch.zeros(V, dtype=torch.float64)
    for xs in itertools.permutations([x for x in range(V) if q[x] > 0], n):
        mass, left, target, alive, removed = 1.0, 1.0, p.clone(), 1.0, []
        for x in xs:
            mass *= float(q[x]) / left
            left -= float(q[x])
        for x in xs:
            kept = q.clone()
            if not iid_siblings:
                kept[removed] = 0
            draft = kept / kept.sum()
            a = float(acceptance(target[x], draft[x]))
            out[x] += mass * alive * a
            alive *= 1 - a
            target = residual(target, draft)
            removed.append(x)
        out += mass * alive * target
    return out


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("seed", [20, 21])
def test_recursive_rejection_emits_p_exactly(n, seed):
    p, q = table(seed, 1, zeros=0.0)[()], table(seed + 50, 1, zeros=0.0)[()]
    assert torch.allclose(recursive_law(p, q, n), p, atol=1e-12, rtol=0)


def test_iid_sibling_rule_is_wrong_for_distinct_candidates():
    p = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    q = torch.tensor([0.85, 0.05, 0.05, 0.05], dtype=torch.float64)
    assert (recursive_law(p, q, 2, iid_siblings=True) - p).abs().sum() > 0.01


def test_verify_recursive_samples_p():
    p, q = table(22, 1, zeros=0.0)[()], table(23, 1, zeros=0.0)[()]
    g = torch.Generator().manual_seed(4)
    # Gumbel-top-2: two distinct candidates in the order of a draw without replacement from q
    keys = q.log()[None] - torch.empty(ROWS, V, dtype=torch.float64).exponential_(generator=g).log()
    candidates = keys.topk(2, dim=-1).indices
    _, token = verify_recursive(p.expand(ROWS, V), q.expand(ROWS, V), candidates, torch.full((ROWS,), 2), g)
    assert_matches(token.tolist(), dict(enumerate(p.tolist())), alpha=1e-4)
