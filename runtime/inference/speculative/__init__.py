"""Speculative decoding: drafts verified by the target in one forward, exact for the decoding it speeds up.

* :mod:`.verify`: the acceptance rules (standard chain rule, point-mass sample-and-compare, greedy,
  SpecTr's K-SEQ and recursive rejection sampling at one position);
* :mod:`.drafters`: n-gram prompt lookup and draft models (a smaller model, or the target's first
  layers);
* :mod:`.tree`: Token Recycling (adjacency matrix, static tree, sample-and-match walk);
* :mod:`.spectr`: SpecTr (i.i.d. draft sequences merged into a tree, K-SEQ walk);
* :mod:`.rsd`: recursive speculative decoding (children without replacement, recursive rejection);
* :mod:`.run`: the executor with holes decoded in draft-and-verify rounds (``infer: speculate ...``).
"""

from genweave.runtime.inference.speculative.drafters import (
    Draft,
    DraftRound,
    ModelDrafter,
    NgramDrafter,
    lookup,
)
from genweave.runtime.inference.speculative.rsd import RSDDrafter
from genweave.runtime.inference.speculative.run import SpeculatePlan, SpeculationStats, run_speculative
from genweave.runtime.inference.speculative.spectr import SpecTrDrafter
from genweave.runtime.inference.speculative.tree import RecycleDrafter
from genweave.runtime.inference.speculative.verify import (
    kseq_rho,
    residual,
    verify_chain,
    verify_kseq,
    verify_recursive,
)

__all__ = [
    "Draft", "DraftRound", "ModelDrafter", "NgramDrafter", "RecycleDrafter", "RSDDrafter", "SpecTrDrafter", "SpeculatePlan", "SpeculationStats", "kseq_rho",
    "lookup", "residual", "run_speculative", "verify_chain", "verify_kseq", "verify_recursive",
]
