"""The Python construction API: one builder per sampler, each returning a frozen stage; ``|``
composes them into a :class:`ChainSpec` applied left to right.

>>> chain = temperature(0.7) | top_p(0.9) | min_p(0.05)
>>> [s.name for s in chain.stages]
['temperature', 'top_p', 'min_p']
>>> top_p(1.5)
Traceback (most recent call last):
...
genweave.dsl.errors.GenCheckError: error: top_p: parameter p must be [0, 1], got 1.5
hint: p: keep the smallest most-probable set with total mass >= p; 1 = off
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from genweave.runtime.samplers.dry import DEFAULT_BREAKERS, Dry
from genweave.runtime.samplers.mirostat import Mirostat
from genweave.runtime.samplers.penalties import FrequencyPenalty, PresencePenalty, RepetitionPenalty
from genweave.runtime.samplers.top_h import TopH
from genweave.runtime.samplers.transforms import Greedy, LogitBias, Temperature
from genweave.runtime.samplers.truncation import Epsilon, Eta, MinP, TopK, TopNSigma, TopP, Typical
from genweave.runtime.samplers.xtc import XTC


def greedy() -> Greedy:
    """The argmax of the current logits (lowest token id on ties)."""
    return Greedy()


def temperature(t: float) -> Temperature:
    """``softmax(z / t)``; ``t = 0`` is greedy."""
    return Temperature(t)


def top_k(k: int, *, min_keep: int = 1) -> TopK:
    """The ``k`` most probable tokens and every tie of the k-th; ``k = 0`` is off."""
    return TopK(k, min_keep)


def top_p(p: float, *, min_keep: int = 1) -> TopP:
    """The smallest most-probable set with mass ``>= p`` (tie closed); ``p = 1`` is off."""
    return TopP(p, min_keep)


def min_p(p: float, *, min_keep: int = 1) -> MinP:
    """Tokens at least ``p`` times as probable as the most probable one; ``p = 0`` is off."""
    return MinP(p, min_keep)


def typical(mass: float, *, min_keep: int = 1) -> Typical:
    """Locally typical sampling with mass ``mass``; ``mass = 1`` is off."""
    return Typical(mass, min_keep)


def epsilon(epsilon: float, *, min_keep: int = 1) -> Epsilon:
    """Tokens with probability ``>= epsilon`` (plus the ``min_keep`` most probable)."""
    return Epsilon(epsilon, min_keep)


def eta(epsilon: float, *, min_keep: int = 1) -> Eta:
    """Eta sampling: cutoff ``min(epsilon, sqrt(epsilon) * exp(-H))``."""
    return Eta(epsilon, min_keep)


def top_h(alpha: float = 0.4, *, top_n: int = 100, variant: str = "official") -> TopH:
    """Top-H: the entropy-bounded most-probable prefix (``variant="hf"``: transformers' rule)."""
    return TopH(alpha, top_n, variant)


def top_n_sigma(n: float = 1.0) -> TopNSigma:
    """Logits within ``n`` standard deviations of the maximum."""
    return TopNSigma(n)


def mirostat(tau: float = 5.0, eta: float = 0.1, *, mu0: float | None = None) -> Mirostat:
    """Mirostat v2 (stateful; must end its chain)."""
    return Mirostat(tau, eta, mu0)


def repetition_penalty(penalty: float, *, scope: str = "all", window: int = 0) -> RepetitionPenalty:
    """Divide positive / multiply negative logits of seen tokens by ``penalty`` (stateful)."""
    return RepetitionPenalty(penalty, scope, window)


def frequency_penalty(penalty: float, *, scope: str = "generated", window: int = 0) -> FrequencyPenalty:
    """Subtract ``penalty`` per occurrence (stateful)."""
    return FrequencyPenalty(penalty, scope, window)


def presence_penalty(penalty: float, *, scope: str = "generated", window: int = 0) -> PresencePenalty:
    """Subtract ``penalty`` from every token seen before (stateful)."""
    return PresencePenalty(penalty, scope, window)


def dry(multiplier: float = 0.8, *, base: float = 1.75, allowed_length: int = 2, last_n: int = -1,
        breakers: Sequence[str] = DEFAULT_BREAKERS) -> Dry:
    """DRY repetition penalty (stateful; breakers need ``vocab=`` at compile time)."""
    return Dry(multiplier, base, allowed_length, last_n, tuple(breakers))


def xtc(probability: float = 0.5, threshold: float = 0.1, *, min_keep: int = 1) -> XTC:
    """Exclude top choices with probability ``probability``."""
    return XTC(probability, threshold, min_keep)


def logit_bias(bias: Mapping[int, float]) -> LogitBias:
    """Add ``bias[id]`` to the logit of token ``id`` (``-inf`` bans it)."""
    return LogitBias(bias)  # type: ignore[arg-type]  # Param "bias" normalises the mapping
