"""Fold sampler chains: drop stages that change nothing, reduce ``temperature 0`` to greedy."""

from __future__ import annotations

from dataclasses import replace

from genweave.compiler import ir


def fold_sampler_chains(program: ir.Program) -> ir.Program:
    """Rewrite the program's decoding chain to an equivalent, shorter one.

    # temperature 1 -> (nothing)        a no-op
    # temperature a | temperature b -> temperature a*b
    # sample temperature 0 -> greedy    argmax of the unscaled logits
    """
    decoding = program.decoding
    if decoding.method != "sample":
        return program
    stages: list[ir.SamplerStage] = []
    for stage in decoding.chain:
        if stage.name == "temperature" and stages and stages[-1].name == "temperature":
            merged = dict(stages[-1].params)["t"] * dict(stage.params)["t"]
            stages[-1] = replace(stages[-1], params=(("t", merged),))
        else:
            stages.append(stage)
    if any(s.name == "temperature" and dict(s.params)["t"] == 0 for s in stages):
        return replace(program, decoding=replace(decoding, method="greedy", chain=()))
    stages = [s for s in stages if not (s.name == "temperature" and dict(s.params)["t"] == 1)]
    return replace(program, decoding=replace(decoding, chain=tuple(stages)))
