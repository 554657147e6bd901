"""Fixtures of the grammar tests: the standard grammars, compiled once per vocabulary, their
reference recognizers, a few non-LALR grammars for the Earley fallback, and canonical
tokenizations of texts in the middle of a sequence."""

from __future__ import annotations

from importlib import resources

import pytest
from grammar_oracles import Reference

from genweave.runtime.constraints import TokenTrie
from genweave.runtime.constraints.grammar import grammar

STD = ("json", "arithmetic", "sql")

# Grammars that are not LALR(1) (the Earley fallback), with a text of their language.
EARLEY = {
    "ambiguous": ('start: e\ne: e "+" e | e "*" e | NUMBER | "(" e ")"\nNUMBER: /[0-9]+/\n%ignore " "',
                  "(1 + 2) * 34 + 5"),
    "lookahead2": ('start: a "x" "y" | b "x" "z" | "q" "q"\na: "q"\nb: "q"', "qxz"),
    "nullable": ('start: item ("," item)* ","?\nitem: WORD | WORD "=" WORD |\nWORD: /[a-z]+/\n%ignore " "',
                 "ab = cd, ef,, g,"),
}


def std_text(name: str) -> str:
    return resources.files("genweave.stdlib").joinpath(f"{name}.lark").read_text(encoding="utf-8")


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


def canonical_ids(tokenizer, vocab, text: str) -> list[int] | None:
    """The tokenizer's ids of ``text`` in the middle of a sequence (for SentencePiece-style
    tokenizers, which add a space at the start, after a prefix ``a`` that is then dropped), or
    None when the tokenizer does not reproduce the text's bytes."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if vocab.decode(ids) == text.encode():
        return ids
    ids = tokenizer.encode("a" + text, add_special_tokens=False)
    if len(ids) > 1 and vocab.decode(ids[1:]) == text.encode() and vocab.decode(ids[:1]).endswith(b"a"):
        return ids[1:]
    return None
