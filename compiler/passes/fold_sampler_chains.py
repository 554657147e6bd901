"""Fold sampler chains: drop stages that change nothing, merge neighbours, reduce to greedy.

The rules are the sampler library's (:func:`genweave.runtime.samplers.fold`), e.g.::

    # temperature 1 -> (nothing)          top_p 1, top_k 0, min_p 0 likewise
    # temperature a | temperature b -> temperature a*b
    # sample temperature 0 -> greedy      argmax of the unscaled logits

They apply to the program's chain, each hole's own chain (``for HOLE:``) and SMC proposals.
"""

from __future__ import annotations

from dataclasses import replace

from genweave.compiler import ir
from genweave.compiler.samplers import fold_stages
from genweave.dsl.errors import GenError


def fold_sampler_chains(program: ir.Program) -> ir.Program:
    """The program with every sampler chain folded (same distributions, fewer stages)."""
    decoding = program.decoding
    if decoding.method == "sample":
        method, chain = _fold(decoding.chain)
        decoding = replace(decoding, method=method, chain=chain)
    if isinstance(decoding.search, ir.Smc) and decoding.search.propose == "sample":
        _, chain = _fold(decoding.search.chain, keep_greedy_stage=True)
        decoding = replace(decoding, search=replace(decoding.search, chain=chain))
    ops = ir.map_ops(program.ops, _fold_hole)
    return replace(program, decoding=decoding, ops=ops)


def _fold_hole(op: ir.Op) -> ir.Op:
    if not isinstance(op, ir.Hole) or op.decoding is None or op.decoding.method != "sample":
        return op
    method, chain = _fold(op.decoding.chain)
    return replace(op, decoding=replace(op.decoding, method=method, chain=chain))


def _fold(chain: tuple[ir.SamplerStage, ...], *, keep_greedy_stage: bool = False
          ) -> tuple[str, tuple[ir.SamplerStage, ...]]:
    """``(method, chain)`` after folding; a chain that folds to ``greedy`` alone is greedy decoding."""
    try:
        folded = fold_stages(tuple((s.name, dict(s.params)) for s in chain))
    except GenError:
        return "sample", chain  # an unchecked chain: leave it for the checker to report
    if [name for name, _ in folded] == ["greedy"] and not keep_greedy_stage:
        return "greedy", ()  # sample | greedy -> greedy
    spans = {s.name: s.span for s in chain}
    stages = tuple(ir.SamplerStage(name, tuple(params.items()), span=spans.get(name, ir.NO_SPAN))
                   for name, params in folded)
    return "sample", stages
