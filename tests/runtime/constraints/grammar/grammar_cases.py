"""Shared data of the grammar tests (imported as ``grammar_cases``): the standard grammars, a few
grammars that are not LALR(1), and canonical tokenizations in the middle of a sequence."""

from __future__ import annotations

from importlib import resources

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


def canonical_ids(tokenizer, vocab, text: str) -> list[int] | None:
    """The tokenizer's ids of ``text`` in the middle of a sequence (for SentencePiece-style
    tokenizers, which add a space at the start, after a prefix ``a`` that is then dropped), or
    None when the tokenizer does not reproduce the text's bytes."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if vocab.decode(ids) == text.encode():
        return ids
    ids = tokenizer.encode("a" + text, add_special_tokens=False)
    for cut in range(1, min(len(ids), 3)):  # the prefix is "a", maybe after a separate space token
        if vocab.decode(ids[:cut]).strip() == b"a" and vocab.decode(ids[cut:]) == text.encode():
            return ids[cut:]
    return None
