"""The vocabulary of a byte-level model: the 256 bytes, then end of text.

A byte-level model (:class:`~genweave.runtime.bytes.byte_lm.ByteLM`,
:class:`~genweave.runtime.bytes.ensemble.ByteEnsemble`) writes one byte per step, so its "tokens" are
the bytes: id ``b < 256`` writes the byte ``b`` and id 256 (``EOT``) ends the text, exactly the
layout of ``next_byte_logprobs``. Compiling a hole's constraint against this vocabulary gives byte
masks with the usual machinery (regex DFAs, grammars, JSON Schema, ``max N tokens`` budgets, which
then count bytes).

>>> vocab = byte_vocabulary()
>>> len(vocab), vocab.eos_ids, vocab.token_bytes[97]
(257, (256,), b'a')
>>> byte_vocabulary() is vocab
True
"""

from __future__ import annotations

from functools import cache

from genweave.runtime.vocab import Vocabulary

EOT = 256  # id of "end of text" among the byte-level model's 257 outcomes


@cache
def byte_vocabulary() -> Vocabulary:
    """The 257-entry byte vocabulary (one object per process, so caches keyed by it are shared)."""
    return Vocabulary.from_bytes([bytes([b]) for b in range(256)] + [b""], eos_ids=[EOT], name="bytes")
