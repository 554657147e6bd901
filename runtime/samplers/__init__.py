"""Sampler chains: fused, batched logits pipelines with exactly stated distributions.

Build a chain with the builders (``temperature(0.7) | top_p(0.9)``) or from ``(name, params)``
pairs (:func:`build_chain`), simplify it (:func:`fold`), compile it for a vocabulary size and device
(``chain.compile(V, device=..., batch=B)``), then per step call ``compiled.sample(logits, generator,
mask)`` or ``compiled.logprobs(...)``. See docs/samplers.md for every sampler's definition.
"""

from genweave.runtime.samplers.base import ChainSpec, Param, Stage
from genweave.runtime.samplers.builders import (
    dry,
    epsilon,
    eta,
    frequency_penalty,
    greedy,
    logit_bias,
    min_p,
    mirostat,
    presence_penalty,
    repetition_penalty,
    temperature,
    top_h,
    top_k,
    top_n_sigma,
    top_p,
    typical,
    xtc,
)
from genweave.runtime.samplers.chain import (
    build_chain,
    check_chain,
    fold,
    move_temperature_last,
    standard_chain,
)
from genweave.runtime.samplers.compiled import CompiledChain, compile_batch
from genweave.runtime.samplers.draw import gumbel_argmax, pack_mask, unpack_mask
from genweave.runtime.samplers.registry import SAMPLERS, make_stage, positional_param, registry_table
from genweave.runtime.samplers.state import SamplerState

__all__ = [
    "SAMPLERS", "ChainSpec", "CompiledChain", "Param", "SamplerState", "Stage",
    "build_chain", "check_chain", "compile_batch", "fold", "gumbel_argmax", "make_stage",
    "move_temperature_last", "pack_mask", "positional_param", "registry_table", "standard_chain",
    "unpack_mask",
    "dry", "epsilon", "eta", "frequency_penalty", "greedy", "logit_bias", "min_p", "mirostat",
    "presence_penalty", "repetition_penalty", "temperature", "top_h", "top_k", "top_n_sigma", "top_p",
    "typical", "xtc",
]
