"""Tools for testing distributions: toy models, exact enumeration, statistical assertions.

* :class:`ToyLM`: a tiny, exactly enumerable language model over bytes.
* :func:`exact_distribution`: a program's exact output law on such a model (the local law of masked
  decoding, or the program's global target).
* :func:`assert_matches` / :func:`g_test`: samples against an exact law (G-test at a stated
  false-alarm rate, rare outcomes merged).
* hypothesis strategies :func:`logits`, :func:`toy_lms`, :func:`regexes`, :func:`sampler_chains`.
* law checkers for your own potentials: :func:`potential_law_violations`, :func:`assert_potential_laws`.
"""

from genweave.runtime.inference.exact import tv_distance
from genweave.runtime.inference.laws import assert_potential_laws, potential_law_violations
from genweave.runtime.models.toy import ToyLM
from genweave.testing.exact import ExactLaw, exact_distribution
from genweave.testing.stats import GTestResult, assert_matches, g_test
from genweave.testing.strategies import logits, regexes, sampler_chains, toy_lms

__all__ = [
    "ExactLaw", "GTestResult", "ToyLM", "assert_matches", "assert_potential_laws", "exact_distribution",
    "g_test", "logits", "potential_law_violations", "regexes", "sampler_chains", "toy_lms", "tv_distance",
]
