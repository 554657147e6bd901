"""The compiler's view of the runtime's sampler library (the one adapter to its interface).

A ``.gen`` stage ``top_p 0.9`` is ``("top_p", {"p": 0.9})``: the bare value sets the sampler's
first (positional) parameter. Checking, folding and the truncation test all defer to
:mod:`genweave.runtime.samplers`, so the language accepts exactly what the runtime implements.

>>> check_stage("top_p", {"p": 1.5})[0].startswith("top_p: parameter p must be")
True
>>> fold_stages((("temperature", {"t": 1.0}), ("top_p", {"p": 0.9})))
(('top_p', {'p': 0.9}),)
"""

from __future__ import annotations

from collections.abc import Mapping

from genweave.dsl.errors import GenCheckError
from genweave.runtime.samplers import registry
from genweave.runtime.samplers.base import ChainSpec, Stage
from genweave.runtime.samplers.chain import check_chain, fold

StageParams = tuple[str, Mapping[str, object]]


def sampler_names() -> tuple[str, ...]:
    return tuple(registry.SAMPLERS)


def positional_name(sampler: str) -> str | None:
    """The parameter a bare value sets (``top_p 0.9`` sets ``p``); None for unknown samplers."""
    try:
        return registry.positional_param(sampler)
    except GenCheckError:
        return None


def check_stage(sampler: str, params: Mapping[str, object]) -> tuple[str, str | None] | None:
    """``(message, hint)`` when the stage is invalid (unknown sampler, parameter or value)."""
    try:
        registry.make_stage(sampler, dict(params))
    except GenCheckError as err:
        return err.message, err.hint
    except (TypeError, ValueError) as err:
        return f"{sampler}: {err}", None
    return None


def check_stages(stages: tuple[StageParams, ...]) -> tuple[str, str | None] | None:
    """``(message, hint)`` when a chain of valid stages is ill-formed (e.g. mirostat not last)."""
    try:
        check_chain(ChainSpec(tuple(registry.make_stage(name, dict(p)) for name, p in stages)))
    except GenCheckError as err:
        return err.message, err.hint
    return None


def fold_stages(stages: tuple[StageParams, ...]) -> tuple[StageParams, ...]:
    """The chain with no-ops dropped and neighbours merged (same distribution), via the runtime."""
    folded = fold(ChainSpec(tuple(registry.make_stage(name, dict(p)) for name, p in stages)))
    return tuple((stage.name, explicit_params(stage)) for stage in folded.stages)


def explicit_params(stage: Stage) -> dict[str, object]:
    """The stage's positional parameter and every other parameter that differs from its default."""
    values: dict[str, object] = {}
    for i, param in enumerate(stage.params):
        value = getattr(stage, param.name)
        if i == 0 or value != param.default:
            values[param.name] = value
    return values


def stage_of(sampler: str, params: Mapping[str, object]) -> Stage:
    return registry.make_stage(sampler, dict(params))


def is_truncating(sampler: str, params: Mapping[str, object]) -> bool:
    """True when the stage can drop tokens (so it cannot serve as an SMC proposal); ``temperature
    0`` is greedy, which truncates."""
    folded = fold(ChainSpec((registry.make_stage(sampler, dict(params)),)))
    return any(not stage.logit_transform for stage in folded.stages)
