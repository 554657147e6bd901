"""Exact byte-level probabilities from tokenized language models (see ``docs/bytes.md``).

* :class:`ByteLM`: a token ``LanguageModel`` as a model over bytes (covering beam over a token trie):
  ``next_byte_logprobs``, ``prefix_logprob``, ``sample_bytes``, ``prefill`` of prompts ending mid-token.
* :func:`heal`: exact token healing at a literal -> hole boundary (for the executor).
* :class:`ByteEnsemble`: models with different vocabularies combined over bytes.
* :func:`run_bytes` (``program.py``): ``.gen`` programs on byte-level models (``bytes``, ensembles),
  holes drawn byte by byte; :func:`byte_view`, the default byte view of a token model;
  :func:`byte_vocabulary`, the 257 outcomes (256 bytes, then end of text).
"""

from genweave.runtime.bytes.alphabet import byte_vocabulary
from genweave.runtime.bytes.byte_lm import EOT, MODES, ByteLM, ByteState
from genweave.runtime.bytes.ensemble import KINDS, ByteEnsemble, EnsembleState
from genweave.runtime.bytes.heal import Healed, heal
from genweave.runtime.bytes.program import byte_view, run_bytes
from genweave.runtime.bytes.sample import ByteSamples, sample_bytes
from genweave.runtime.bytes.tokenization import (
    EncodeOnly,
    HFTokenization,
    LongestMatch,
    Tokenization,
    tokenization_of,
)
from genweave.runtime.bytes.trie import ByteTrie

__all__ = ["EOT", "KINDS", "MODES", "ByteEnsemble", "ByteLM", "ByteSamples", "ByteState", "ByteTrie",
           "EncodeOnly", "EnsembleState", "HFTokenization", "Healed", "LongestMatch", "Tokenization", "byte_view",
           "byte_vocabulary", "heal", "run_bytes", "sample_bytes", "tokenization_of"]
