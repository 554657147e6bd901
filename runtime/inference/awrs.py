"""Adaptive weighted rejection sampling (AWRS): exact draws from a constrained next-token
distribution, with few constraint checks and an unbiased estimate of its normalizer.

At one step a row holds log-weights ``logw[x]`` (the proposal's next-token row, ``-inf`` for
excluded tokens) with mass ``Z_pot`` and ``p = exp(logw) / Z_pot``; a condition ``c(x)`` says
whether token ``x`` is allowed. The target is ``phi(x) = Z_pot p(x) c(x)``, whose local normalizer
is ``Z = Z_pot p(A)`` for the allowed set ``A``.

**Order.** Tokens are visited in decreasing order of Gumbel keys ``log p(x) + G_x`` (``G`` drawn
from float64 uniforms on the device): sampling without replacement from ``p``. Only the top
``topk`` keys of a row are materialized; a walk that goes past them sorts that row in full. The
condition is called only on visited tokens, and positive answers are memoized for the call.

**Sample.** The first allowed token of the walk is distributed exactly as ``p(. | A)``: removing
rejected tokens only renormalizes.

**Weights** (``log w = log Z_pot + log Zhat/Z_pot``; ``E[w 1{X = x}] = phi(x)`` for every ``x``):

* ``recursive``: with ``R`` the tokens rejected before the accepted ``x`` and ``y`` the next token
  of the same order (a peek), ``Zhat/Z_pot = p(V minus R)`` if ``y`` is absent or allowed, else
  ``p(x)``. At most ``|R| + 2`` condition calls.
* ``geometric``: simulates a with-replacement rejection sampler run until ``max_accepts``
  acceptances (or ``max_rejects`` rejections) from without-replacement walks: before each real
  draw, the number of draws that would have hit an already-rejected token is added
  (``Geometric(p(pool)) - 1``); each acceptance starts a new walk with fresh keys over the
  non-rejected tokens. ``Zhat/Z_pot = min(max_accepts - 1, n_acc) / (n_acc + n_rej - 1)``, the
  unbiased estimator of a Bernoulli rate under that stopping rule.

Remaining masses are sums over the remaining tokens (never ``1 - p(rejected)``, which loses all
precision next to tiny tokens). A row whose every token is rejected gets weight 0 (``log -inf``)
and token ``-1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Protocol

import numpy as np
import torch

from genweave.dsl.errors import GenArgumentError, NaNLogitsError
from genweave.runtime.inference.successive import normalize_rows, successive_draws

NEG_INF = float("-inf")
_TINY64 = torch.finfo(torch.float64).tiny

#: ``condition(row, token) -> bool``: whether ``token`` is allowed in row ``row``.
Condition = Callable[[int, int], bool]


@dataclass(frozen=True)
class AWRSConfig:
    """``estimator``: ``"recursive"`` or ``"geometric"``; ``max_accepts`` (>= 2) and ``max_rejects``
    (None: unbounded) apply to the geometric estimator; ``topk``: keys materialized per row."""

    estimator: str = "recursive"
    max_accepts: int = 2
    max_rejects: int | None = None
    topk: int = 32

    def __post_init__(self) -> None:
        if self.estimator not in ("recursive", "geometric"):
            raise GenArgumentError(f"awrs estimator must be 'recursive' or 'geometric', not {self.estimator!r}")
        if self.max_accepts < 2:
            raise GenArgumentError(f"awrs max_accepts must be at least 2, not {self.max_accepts}")
        if self.max_rejects is not None and self.max_rejects < 1:
            raise GenArgumentError(f"awrs max_rejects must be at least 1, not {self.max_rejects}")
        if self.topk < 1:
            raise GenArgumentError(f"awrs topk must be at least 1, not {self.topk}")


@dataclass(frozen=True, eq=False)
class AWRSDraw:
    """Per row: the drawn token (``-1`` if every token was rejected), ``log w`` (float64, ``-inf``
    for weight 0) and the number of condition calls made."""

    tokens: np.ndarray
    log_weights: np.ndarray
    calls: np.ndarray


# ------------------------------------------------------------------------------------ orders
class Order(Protocol):
    """Tokens of one row in walk order: ``token(i)`` (None past the last token of positive mass),
    ``prob(i)`` its probability, ``remaining(i)`` the mass of the tokens at positions ``>= i``."""

    def token(self, i: int) -> int | None: ...

    def prob(self, i: int) -> float: ...

    def remaining(self, i: int) -> float: ...


class ListOrder:
    """An explicit order: ``tokens`` with probabilities ``probs``, then unlisted tokens of total
    mass ``tail`` (``fallback()``, if given, returns the full order when the walk needs it)."""

    __slots__ = ("tokens", "probs", "tail", "_suffix", "_fallback")

    def __init__(self, tokens: Sequence[int], probs: Sequence[float], tail: float = 0.0,
                 fallback: Callable[[], tuple[Sequence[int], Sequence[float]]] | None = None):
        self.tokens, self.probs, self.tail = [int(t) for t in tokens], [float(q) for q in probs], float(tail)
        self._suffix: list[float] | None = None
        self._fallback = fallback if tail > 0.0 else None

    def _extend(self, i: int) -> bool:
        if i < len(self.tokens) or self._fallback is None:
            return i < len(self.tokens)
        tokens, probs = self._fallback()
        self._fallback = None
        self.tokens, self.probs, self.tail = [int(t) for t in tokens], [float(q) for q in probs], 0.0
        self._suffix = None
        return i < len(self.tokens)

    def token(self, i: int) -> int | None:
        return self.tokens[i] if self._extend(i) else None

    def prob(self, i: int) -> float:
        return self.probs[i]

    def remaining(self, i: int) -> float:
        self._extend(i)
        if self._suffix is None:
            # suffix[i] = sum of probs[i:] + tail: a sum over the remaining tokens
            self._suffix = list(accumulate(reversed(self.probs), initial=self.tail))[::-1]
        return self._suffix[min(i, len(self.tokens))]


def gumbel_keys(logw: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``logw + G`` with ``G ~ Gumbel(0, 1)`` from float64 uniforms (never a ``-inf`` key for a
    finite weight, which a float32 ``U = 0`` would give)."""
    u = torch.rand(logw.shape, dtype=torch.float64, device=logw.device, generator=generator)
    return logw - u.clamp_(min=_TINY64).log_().neg_().log_()


def walk_orders(logw: torch.Tensor, probs: torch.Tensor, generator: torch.Generator | None,
                topk: int, removed: torch.Tensor | None = None) -> list[ListOrder]:
    """One without-replacement order per row of ``logw`` (float64 ``[B, V]``; ``probs`` the
    normalized weights), skipping ``removed`` tokens (bool ``[B, V]``). One device-to-host copy.

    On the CPU without ``removed``, the first ``topk`` tokens come from successive inverse-CDF
    draws (:mod:`~genweave.runtime.inference.successive`, the same law, a fraction of the cost);
    elsewhere from the top ``topk`` Gumbel keys. Either way a walk past them continues with exact
    Gumbel keys over the tokens not listed yet."""
    if removed is None and logw.device.type == "cpu":
        return _successive_orders(probs, generator, topk)
    keys = gumbel_keys(logw, generator)
    pool = probs
    if removed is not None:
        keys = keys.masked_fill(removed, NEG_INF)
        pool = probs.masked_fill(removed, 0.0)
    k = min(topk, logw.shape[1])
    top_keys, top = keys.topk(k, dim=-1)
    tail = pool.scatter(1, top, 0.0).sum(-1, keepdim=True)
    # one copy: keys, probabilities, ids (exact in float64) and the tail mass of every row
    host = torch.cat([top_keys, pool.gather(1, top), top.to(torch.float64), tail], dim=1).cpu()
    finite = torch.isfinite(host[:, :k]).sum(dim=1).tolist()  # -inf keys come last: zero mass or removed
    host = host.tolist()
    orders = []
    for b, row in enumerate(host):
        n = finite[b]
        fallback = None if n < k else _continuation(pool[b], row[2 * k: 2 * k + n], generator)
        orders.append(ListOrder(row[2 * k: 2 * k + n], row[k: k + n], row[3 * k] if n == k else 0.0, fallback))
    return orders


def _successive_orders(probs: torch.Tensor, generator: torch.Generator | None, topk: int) -> list[ListOrder]:
    """CPU orders whose first tokens are successive draws; the tail mass is a sum over the tokens
    not listed (never ``1 -`` the listed mass)."""
    k = min(topk, probs.shape[1])
    u = torch.rand((probs.shape[0], k), dtype=torch.float64, generator=generator)
    tokens, counts, tail = successive_draws(probs.numpy(), u.numpy())
    picked = np.take_along_axis(probs.numpy(), np.maximum(tokens, 0), axis=1)
    orders = []
    for b, (n, row_tokens, row_probs, rest) in enumerate(zip(counts.tolist(), tokens.tolist(), picked.tolist(),
                                                              tail.tolist())):
        fallback = _continuation(probs[b], row_tokens[:n], generator) if rest > 0.0 else None
        orders.append(ListOrder(row_tokens[:n], row_probs[:n], rest, fallback))
    return orders


def _continuation(pool: torch.Tensor, listed: Sequence[int], generator: torch.Generator | None,
                  ) -> Callable[[], tuple[list[int], list[float]]]:
    """The whole order: ``listed``, then the other tokens of positive mass by fresh Gumbel keys
    (computed only if a walk needs it)."""

    def full() -> tuple[list[int], list[float]]:
        keys = gumbel_keys(pool.log(), generator)
        if listed:
            keys[torch.as_tensor(listed, dtype=torch.long, device=keys.device)] = NEG_INF
        order = keys.argsort(descending=True)
        order = order[: int(torch.isfinite(keys).sum())]
        rest = order.tolist()
        return [*listed, *rest], [*pool[torch.as_tensor(listed, dtype=torch.long)].tolist(), *pool[order].tolist()]
    return full


# ------------------------------------------------------------------------------------- walks
def recursive_walk(order: Order, accept: Callable[[int], bool]) -> tuple[int | None, float]:
    """The recursive estimator on one order: ``(token, log Zhat/Z_pot)``, ``(None, -inf)`` if every
    token is rejected."""
    i = 0
    while (x := order.token(i)) is not None:
        if accept(x):
            y = order.token(i + 1)
            if y is None or accept(y):
                return x, _log(order.remaining(i))  # p(V minus R): the mass from position i on
            return x, _log(order.prob(i))
        i += 1
    return None, NEG_INF


class GeometricWalk:
    """The geometric estimator for one row, fed one order (a round) at a time until ``done``."""

    def __init__(self, config: AWRSConfig, rng: np.random.Generator):
        self.max_accepts, self.max_rejects, self.rng = config.max_accepts, config.max_rejects, rng
        self.n_acc, self.n_rej = 0, 0.0
        self.rejected: list[int] = []
        self.rejected_mass = 0.0  # a sum over the rejected tokens
        self.first: int | None = None
        self.done = False

    def feed(self, order: Order, accept: Callable[[int], bool]) -> None:
        """One walk over a fresh order of the tokens not rejected so far."""
        i = 0
        while not self.done:
            x = order.token(i)
            if x is None:  # every token of positive mass rejected: the allowed mass is 0
                self.n_acc, self.done = 0, True
                return
            if self._phantoms(order.remaining(i)):
                return
            if accept(x):
                self.n_acc += 1
                self.first = x if self.first is None else self.first
                self.done = self.n_acc >= self.max_accepts
                return
            self.n_rej += 1
            self.rejected.append(x)
            self.rejected_mass += order.prob(i)
            self.done = self.max_rejects is not None and self.n_rej >= self.max_rejects
            i += 1

    def _phantoms(self, pool_mass: float) -> bool:
        """Add the with-replacement draws that would hit rejected tokens before the next draw from
        the pool (failures before the first success, success probability ``pool_mass``); True if
        that reaches ``max_rejects``."""
        if self.rejected_mass <= 0.0:
            return False
        if pool_mass <= 0.0:
            extra = math.inf
        else:
            u = 1.0 - self.rng.random()  # in (0, 1]
            extra = math.floor(math.log(u) / math.log(self.rejected_mass)) if self.rejected_mass < 1.0 else math.inf
        self.n_rej += extra
        if self.max_rejects is not None and self.n_rej >= self.max_rejects:
            self.n_rej = float(self.max_rejects)  # the with-replacement run stops at that rejection
            self.done = True
            return True
        return False

    def result(self) -> tuple[int | None, float]:
        """``(first accepted token, log Zhat/Z_pot)``."""
        if self.n_acc == 0 or self.first is None:
            return None, NEG_INF
        ratio = min(self.max_accepts - 1, self.n_acc) / (self.n_acc + self.n_rej - 1.0)
        return self.first, _log(ratio)


def _log(value: float) -> float:
    return math.log(value) if value > 0.0 else NEG_INF


# ------------------------------------------------------------------------------------ driver
class _Memo:
    """Condition calls of one row, positive answers memoized, calls counted."""

    def __init__(self, condition: Condition, row: int):
        self.condition, self.row = condition, row
        self.accepted: set[int] = set()
        self.calls = 0

    def __call__(self, token: int) -> bool:
        if token in self.accepted:
            return True
        self.calls += 1
        if self.condition(self.row, token):
            self.accepted.add(token)
            return True
        return False


def awrs(logw: torch.Tensor, condition: Condition, generator: torch.Generator | None = None,
         config: AWRSConfig = AWRSConfig()) -> AWRSDraw:
    """One AWRS draw per row of ``logw`` (``[B, V]`` log-weights on any device; ``-inf`` excludes a
    token without a condition call). See the module docstring for the law and the weights."""
    logw = logw.to(torch.float64)
    log_z_host, probs = _normalize(logw)
    if np.isnan(log_z_host).any():
        raise NaNLogitsError(f"NaN log-weights in AWRS row {int(np.flatnonzero(np.isnan(log_z_host))[0])}",
                             hint="the model or a logits processor produced NaN; check the model's dtype")
    rows = logw.shape[0]
    memos = [_Memo(condition, b) for b in range(rows)]
    if config.estimator == "recursive":
        orders = walk_orders(logw, probs, generator, config.topk)
        results = [recursive_walk(order, memo) for order, memo in zip(orders, memos)]
    else:
        results = _geometric(logw, probs, memos, generator, config)
    tokens = np.array([-1 if x is None else x for x, _ in results], dtype=np.int64)
    log_ratio = np.array([r for _, r in results], dtype=np.float64)
    log_weights = np.where(tokens >= 0, log_z_host + log_ratio, NEG_INF)
    return AWRSDraw(tokens, log_weights, np.array([m.calls for m in memos], dtype=np.int64))


def _normalize(logw: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """``(log_z [B] on the host, probs [B, V])``: each row's log normalizer and normalized weights
    (rows without a finite weight: ``-inf`` and no mass). On the CPU one compiled pass pair."""
    if logw.device.type == "cpu":
        log_z, probs = normalize_rows(logw.contiguous().numpy())
        return log_z, torch.from_numpy(probs)
    log_z = torch.logsumexp(logw, dim=-1, keepdim=True)
    probs = torch.sub(logw, log_z).exp_().masked_fill_(~torch.isfinite(log_z), 0.0)
    return log_z.squeeze(1).cpu().numpy(), probs


def _geometric(logw: torch.Tensor, probs: torch.Tensor, memos: list[_Memo],
               generator: torch.Generator | None, config: AWRSConfig) -> list[tuple[int | None, float]]:
    """Rounds of the geometric estimator, batched over the rows still running."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=logw.device).item())
    rng = np.random.default_rng(seed)
    walks = [GeometricWalk(config, rng) for _ in memos]
    pending = list(range(len(walks)))
    while pending:
        index = torch.tensor(pending, dtype=torch.long, device=logw.device)
        removed = torch.zeros((len(pending), logw.shape[1]), dtype=torch.bool, device=logw.device)
        for j, b in enumerate(pending):
            if walks[b].rejected:
                removed[j, walks[b].rejected] = True
        orders = walk_orders(logw[index], probs[index], generator, config.topk, removed)
        for order, b in zip(orders, pending):
            walks[b].feed(order, memos[b])
        pending = [b for b in pending if not walks[b].done]
    return [walk.result() for walk in walks]
