"""The one table from sampler names (as written in ``.gen`` chains and in ``build_chain``) to stage
classes, with every parameter's default and allowed range.

A stage's first parameter is its positional one: ``top_p 0.9`` lowers to ``("top_p", {"p": 0.9})``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType

from genweave.dsl.errors import GenCheckError
from genweave.runtime.samplers.base import Param, Stage
from genweave.runtime.samplers.dry import Dry
from genweave.runtime.samplers.mirostat import Mirostat
from genweave.runtime.samplers.penalties import FrequencyPenalty, PresencePenalty, RepetitionPenalty
from genweave.runtime.samplers.top_h import TopH
from genweave.runtime.samplers.transforms import Greedy, LogitBias, Temperature
from genweave.runtime.samplers.truncation import Epsilon, Eta, MinP, TopK, TopNSigma, TopP, Typical
from genweave.runtime.samplers.xtc import XTC

SAMPLERS: Mapping[str, type[Stage]] = MappingProxyType({cls.name: cls for cls in (
    Greedy, Temperature, TopK, TopP, MinP, Typical, Epsilon, Eta, TopH, TopNSigma, Mirostat,
    RepetitionPenalty, FrequencyPenalty, PresencePenalty, Dry, XTC, LogitBias,
)})


def sampler_class(name: str) -> type[Stage]:
    """The stage class registered as ``name``; GenCheckError (with a suggestion) if there is none."""
    cls = SAMPLERS.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, list(SAMPLERS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "known samplers: " + ", ".join(SAMPLERS)
        raise GenCheckError(f"unknown sampler {name!r}", hint=hint)
    return cls


def sampler_params(name: str) -> tuple[Param, ...]:
    """The parameters of sampler ``name``, positional one first."""
    return sampler_class(name).params


def positional_param(name: str) -> str | None:
    """The name of the parameter a bare value after the sampler name sets (``top_p 0.9`` -> ``p``)."""
    params = sampler_params(name)
    return params[0].name if params else None


def make_stage(name: str, params: Mapping[str, object] | None = None) -> Stage:
    """The stage ``name(**params)``, every parameter checked; GenCheckError names the sampler,
    the parameter and the allowed range."""
    cls = sampler_class(name)
    params = dict(params or {})
    known = [p.name for p in cls.params]
    unknown = [key for key in params if key not in known]
    if unknown:
        listed = ", ".join(known) if known else "no parameters"
        close = difflib.get_close_matches(str(unknown[0]), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"{name} takes: {listed}"
        raise GenCheckError(f"{name} has no parameter {unknown[0]!r}; its parameters are: {listed}", hint=hint)
    return cls(**params)


def registry_table() -> list[tuple[str, str, object, str, str]]:
    """``(sampler, parameter, default, allowed range, meaning)`` rows, for documentation."""
    rows = []
    for name, cls in SAMPLERS.items():
        if not cls.params:
            rows.append((name, "", "", "", "no parameters"))
        for param in cls.params:
            rows.append((name, param.name, param.default, param.describe_range(), param.doc))
    return rows
