"""Fixtures of the constraint tests: SmolLM2's byte-level BPE (``smollm2_tokenizer`` from
``tests/runtime/conftest.py``), the Llama-style SentencePiece toy with byte fallback
(``sp_tokenizer``), and a hand-made toy whose tokens split multi-byte characters.
"""

from __future__ import annotations

import pytest
from constraint_oracles import PARTIAL_TOKENS

from genweave.runtime.constraints import TokenTrie
from genweave.runtime.vocab import Vocabulary


@pytest.fixture(scope="session")
def smollm2_vocab(smollm2_tokenizer) -> Vocabulary:
    return Vocabulary.from_hf(smollm2_tokenizer)


@pytest.fixture(scope="session")
def smollm2_trie(smollm2_vocab) -> TokenTrie:
    return TokenTrie.from_vocabulary(smollm2_vocab)


@pytest.fixture(scope="session")
def sp_vocab(sp_tokenizer) -> Vocabulary:
    return Vocabulary.from_hf(sp_tokenizer)


@pytest.fixture(scope="session")
def toy_vocab() -> Vocabulary:
    """Tokens that split and straddle multi-byte characters, one empty token, two specials."""
    tokens = [*PARTIAL_TOKENS, b"", b"<s>", b"</s>"]
    n = len(tokens)
    return Vocabulary.from_bytes(tokens, eos_ids=[n - 1], special=[n - 2])
