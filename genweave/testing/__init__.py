"""Tools for testing distributions: toy models, exact enumeration, statistical assertions.

``ToyLM`` is a tiny, exactly enumerable language model over bytes; ``exact_distribution``
enumerates a program's output law on such a model (the local law of masked decoding, or the
program's global target); ``assert_matches`` checks samples against an exact law with a G-test at
a stated false-alarm rate.
"""

from genweave.runtime.models.toy import ToyLM
from genweave.testing.exact import ExactLaw, exact_distribution
from genweave.testing.stats import GTestResult, assert_matches, g_test

__all__ = ["ExactLaw", "GTestResult", "ToyLM", "assert_matches", "exact_distribution", "g_test"]
