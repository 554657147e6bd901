"""Inference engines for holes: AWRS, SMC, rejection, enumeration, and their potentials.

* :mod:`.hole`: one hole as an inference problem (:class:`Hole`) and its target ``pi``;
* :mod:`.potentials`: predicates, conditions, factors, constraints as potentials;
* :mod:`.awrs`: adaptive weighted rejection sampling (recursive and geometric estimators);
* :mod:`.smc`: sequential Monte Carlo with twisting, forced EOS and resampling (:mod:`.resampling`);
* :mod:`.rejection`, :mod:`.enumeration`: exact samplers / exact distributions;
* :mod:`.exact`: the enumeration oracle of the tests (global target and local masked process);
* :mod:`.laws`: law checkers for user potentials.
"""

from genweave.runtime.inference.awrs import AWRSConfig, AWRSDraw, awrs
from genweave.runtime.inference.enumeration import Enumeration, enumerate_hole
from genweave.runtime.inference.exact import ExactDistribution, exact_local, exact_target, tv_distance
from genweave.runtime.inference.hole import Hole
from genweave.runtime.inference.laws import LawViolation, assert_potential_laws, potential_law_violations
from genweave.runtime.inference.potentials import (
    ConstraintPotential,
    Factor,
    Potential,
    Predicate,
    condition,
    constraint_potential,
    extern,
    factor,
    predicate,
)
from genweave.runtime.inference.rejection import RejectionResult, rejection
from genweave.runtime.inference.resampling import SCHEMES, effective_sample_size, resample
from genweave.runtime.inference.results import SMCResult, SMCRun, SMCStats
from genweave.runtime.inference.smc import ParticleFilter, SMCConfig, smc

__all__ = [
    "SCHEMES", "AWRSConfig", "AWRSDraw", "ConstraintPotential", "Enumeration", "ExactDistribution", "Factor",
    "Hole", "LawViolation", "ParticleFilter", "Potential", "Predicate", "RejectionResult", "SMCConfig",
    "SMCResult", "SMCRun", "SMCStats", "assert_potential_laws", "awrs", "condition", "constraint_potential",
    "effective_sample_size", "enumerate_hole", "exact_local", "exact_target", "extern", "factor",
    "potential_law_violations", "predicate", "rejection", "resample", "smc", "tv_distance",
]
