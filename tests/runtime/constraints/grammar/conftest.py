"""Fixtures of the grammar tests: the standard grammars, compiled once per vocabulary, their
reference recognizers, a few non-LALR grammars for the Earley fallback, and canonical
tokenizations of texts in the middle of a sequence."""

from __future__ import annotations

import pytest
from grammar_cases import EARLEY, STD, std_text
from grammar_oracles import Reference

from genweave.runtime.constraints import TokenTrie
from genweave.runtime.constraints.grammar import grammar


@pytest.fixture(scope="session")
def sp_trie(sp_vocab) -> TokenTrie:
    return TokenTrie.from_vocabulary(sp_vocab)


@pytest.fixture(scope="session")
def vocabs(smollm2_vocab, smollm2_trie, smollm2_tokenizer, sp_vocab, sp_trie, sp_tokenizer) -> dict:
    """name -> (tokenizer, vocabulary, trie) of the two tokenizers under test."""
    return {"smollm2": (smollm2_tokenizer, smollm2_vocab, smollm2_trie),
            "sp": (sp_tokenizer, sp_vocab, sp_trie)}


@pytest.fixture(scope="session")
def compiled(vocabs):
    """``compiled(name, vocab_name)``: the standard grammar compiled for that vocabulary (cached)."""
    cache: dict = {}

    def get(name: str, vocab_name: str):
        if (name, vocab_name) not in cache:
            cache[name, vocab_name] = grammar(std_text(name)).compile(vocabs[vocab_name][2])
        return cache[name, vocab_name]

    return get


@pytest.fixture(scope="session")
def references():
    """``references(name)``: the reference recognizer of a standard or Earley test grammar."""
    cache: dict = {}

    def get(name: str) -> Reference:
        if name not in cache:
            cache[name] = (Reference(std_text(name)) if name in STD
                           else Reference(EARLEY[name][0], parser="earley"))
        return cache[name]

    return get
