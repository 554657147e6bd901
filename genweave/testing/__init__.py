"""Tools for testing distributions: toy models and statistical assertions.

``ToyLM`` is a tiny, exactly enumerable language model over bytes; ``assert_matches`` checks
samples against an exactly computed distribution with a G-test at a stated false-alarm rate.
"""

from genweave.runtime.models.toy import ToyLM
from genweave.testing.stats import GTestResult, assert_matches, g_test

__all__ = ["GTestResult", "ToyLM", "assert_matches", "g_test"]
