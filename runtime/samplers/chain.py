"""Building, checking and folding sampler chains.

* :func:`build_chain` turns ``(name, params)`` pairs (what ``.gen`` chains lower to) into a checked
  :class:`ChainSpec`; ``temperature_last=True`` moves temperature after the truncations, which is
  llama.cpp's order.
* :func:`fold` simplifies a chain without changing its distribution (the compiler's sampler pass).
* :func:`standard_chain` builds the conventional chain from generation-config style settings, in
  transformers/vLLM order (``penalties -> temperature -> truncations``) or llama.cpp order.

Stages apply in the order written: order matters (temperature before top-p is not top-p before
temperature, see docs/samplers.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from genweave.dsl.errors import GenCheckError
from genweave.runtime.samplers.base import ChainSpec, Stage
from genweave.runtime.samplers.mirostat import Mirostat
from genweave.runtime.samplers.registry import make_stage
from genweave.runtime.samplers.top_h import TopH
from genweave.runtime.samplers.transforms import Greedy, LogitBias, Temperature
from genweave.runtime.samplers.truncation import Epsilon, Eta, MinP, TopK, TopNSigma, TopP, Typical
from genweave.runtime.samplers.xtc import XTC

StageItem = Stage | tuple[str, Mapping[str, object]]


def build_chain(stages: Sequence[StageItem] | ChainSpec, *, temperature_last: bool = False) -> ChainSpec:
    """A checked chain from stages or ``(name, params)`` pairs.

    >>> str(build_chain([("top_p", {"p": 0.9}), ("temperature", {"t": 0.7})], temperature_last=True))
    'top_p(0.9) | temperature(0.7)'
    """
    if isinstance(stages, ChainSpec):
        chain = stages
    else:
        chain = ChainSpec(tuple(item if isinstance(item, Stage) else make_stage(*item) for item in stages))
    check_chain(chain)
    return move_temperature_last(chain) if temperature_last else chain


def check_chain(chain: ChainSpec) -> None:
    """GenCheckError unless the chain is well formed: at most one mirostat, as the last stage (it
    samples from what it keeps and updates its state from that draw), and not together with XTC."""
    names = [s.name for s in chain.stages]
    if "mirostat" in names:
        if names.count("mirostat") > 1 or names[-1] != "mirostat":
            raise GenCheckError("mirostat must be the last stage of its chain, and appear once",
                                hint="put the other samplers before mirostat, as in temperature(0.8) | mirostat()")
        if "xtc" in names:
            raise GenCheckError("mirostat cannot be combined with xtc: mirostat steers the surprise of the "
                                "tokens it draws, which the random exclusion would bias")


def move_temperature_last(chain: ChainSpec) -> ChainSpec:
    """Temperature stages moved after every other stage (before a final mirostat), keeping order."""
    temps = tuple(s for s in chain.stages if isinstance(s, Temperature))
    rest = tuple(s for s in chain.stages if not isinstance(s, Temperature))
    if rest and isinstance(rest[-1], Mirostat):
        return ChainSpec(rest[:-1] + temps + rest[-1:])
    return ChainSpec(rest + temps)


# ------------------------------------------------------------------------------------------ fold
def fold(chain: ChainSpec) -> ChainSpec:
    """The chain with no-ops dropped and neighbours merged; same distribution, same state use.

    Rules (applied until none fires):

    * ``x`` with ``x.is_noop`` -> nothing (temperature 1, top_k 0, top_p 1, min_p 0, penalty 1 ...)
    * ``temperature(0)`` -> ``greedy()``
    * ``temperature(a) | temperature(b)`` -> ``temperature(a * b)``
    * ``logit_bias(a) | logit_bias(b)`` -> ``logit_bias(a + b)``
    * ``greedy() | t`` -> ``greedy()`` for a truncation ``t`` (one token left: nothing to cut)
    * ``t | greedy()`` -> ``greedy()`` for a positive temperature or an upper-set truncation ``t``
      (it keeps every maximum, so the argmax is unchanged; for temperature up to float rounding of
      ``z / t``, which could only merge two logits one ulp apart)

    >>> from genweave.runtime.samplers import temperature, top_p, top_k
    >>> str(fold(temperature(1.0) | top_k(0) | temperature(0.5) | temperature(0.5) | top_p(0.9)))
    'temperature(0.25) | top_p(0.9)'
    """
    stages = list(chain.stages)
    changed = True
    while changed:
        changed = False
        for i, stage in enumerate(stages):
            replacement = _fold_one(stage)
            if replacement != [stage]:
                stages[i: i + 1] = replacement
                changed = True
                break
            if i + 1 < len(stages):
                merged = _fold_pair(stage, stages[i + 1])
                if merged is not None:
                    stages[i: i + 2] = merged
                    changed = True
                    break
    return ChainSpec(tuple(stages))


def _fold_one(stage: Stage) -> list[Stage]:
    if stage.is_noop:
        return []  # x -> nothing
    if isinstance(stage, Temperature) and stage.t == 0:
        return [Greedy()]  # temperature(0) -> greedy()
    return [stage]


def _fold_pair(first: Stage, second: Stage) -> list[Stage] | None:
    if isinstance(first, Temperature) and isinstance(second, Temperature):
        return [Temperature(first.t * second.t)]  # z / a / b = z / (a b)
    if isinstance(first, LogitBias) and isinstance(second, LogitBias):
        return [LogitBias(first.bias + second.bias)]  # biases add (Param merges repeated ids)
    if isinstance(first, Greedy) and _is_truncation(second):
        return [first]  # one token left: a truncation keeps it
    if isinstance(second, Greedy) and (first.upper_set and not first.stateful):
        return [second]  # an upper set keeps every maximum: argmax unchanged
    return None


def _is_truncation(stage: Stage) -> bool:
    return (stage.upper_set and not stage.stateful) or isinstance(stage, Typical | XTC | Greedy)


# -------------------------------------------------------------------------------- standard chain
def standard_chain(*, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0,
                   typical_p: float = 1.0, epsilon_cutoff: float = 0.0, eta_cutoff: float = 0.0,
                   top_h: float | None = None, top_n_sigma: float | None = None,
                   repetition_penalty: float = 1.0, frequency_penalty: float = 0.0,
                   presence_penalty: float = 0.0, xtc_probability: float = 0.0, xtc_threshold: float = 0.1,
                   order: str = "hf") -> ChainSpec:
    """The conventional chain from generation-config settings, folded.

    ``order="hf"`` (transformers / vLLM): penalties, temperature, top_h, top_n_sigma, top_k, top_p,
    min_p, typical, epsilon, eta, xtc. ``order="llama.cpp"``: penalties, top_n_sigma, top_k,
    typical, top_p, min_p, epsilon, eta, top_h, xtc, temperature.

    >>> str(standard_chain(temperature=0.7, top_p=0.9, top_k=50))
    'temperature(0.7) | top_k(50) | top_p(0.9)'
    """
    penalties: list[Stage] = [make_stage("repetition_penalty", {"penalty": repetition_penalty}),
                              make_stage("frequency_penalty", {"penalty": frequency_penalty}),
                              make_stage("presence_penalty", {"penalty": presence_penalty})]
    temp = Temperature(temperature)
    cut = {"top_h": [TopH(top_h)] if top_h is not None else [],
           "top_n_sigma": [TopNSigma(top_n_sigma)] if top_n_sigma is not None else [],
           "top_k": [TopK(top_k)], "top_p": [TopP(top_p)], "min_p": [MinP(min_p)],
           "typical": [Typical(typical_p)], "epsilon": [Epsilon(epsilon_cutoff)], "eta": [Eta(eta_cutoff)],
           "xtc": [XTC(xtc_probability, xtc_threshold)]}
    if order == "hf":
        names = ["top_h", "top_n_sigma", "top_k", "top_p", "min_p", "typical", "epsilon", "eta", "xtc"]
        stages = penalties + [temp] + [s for n in names for s in cut[n]]
    elif order == "llama.cpp":
        names = ["top_n_sigma", "top_k", "typical", "top_p", "min_p", "epsilon", "eta", "top_h", "xtc"]
        stages = penalties + [s for n in names for s in cut[n]] + [temp]
    else:
        raise GenCheckError(f"standard_chain: order must be 'hf' or 'llama.cpp', got {order!r}")
    return fold(build_chain(stages))
