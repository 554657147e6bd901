"""Oracles and shared data of the constraint tests (imported as ``constraint_oracles``).

The oracles walk every token's bytes through a byte DFA directly, independent of the token trie.
"""

from __future__ import annotations

import numpy as np

from genweave.runtime.constraints import DEAD, CompiledConstraint
from genweave.runtime.vocab import Vocabulary

# Regexes exercised against real vocabularies: the peers' workload (but the 200-word alternation)
# and patterns with non-ASCII classes, partial characters and unbounded repetition.
REGISTRY = {
    "email": r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*\.[a-zA-Z]{2,}",
    "iso8601": r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
               r"(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])",
    "us_phone": r"(\+1[ .-]?)?(\([2-9][0-9]{2}\)|[2-9][0-9]{2})[ .-]?[2-9][0-9]{2}[ .-]?[0-9]{4}",
    "ipv4": r"((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])",
    "accents": r"[à-ÿ]+( [a-z]{2,5})?",
    "cjk": r"(日本|中文|数据)+[0-9]?",
    "free_line": r"[^\n\"]{0,12}",
    "words": r"\w+(-\w+)*",
    "any_chars": r".{1,3}",
    "latin_ext": r"[\u0100-\u024f]{1,3}x",
    "not_ascii": r"[^\x00-\x7f]{1,2}",
    "number": r"-?(0|[1-9][0-9]*)(\.[0-9]+)?",
}


PARTIAL_TOKENS = [
    b"a", b"b", b"ab", b"ba", b"abc", b"1", b"12", b"-", b" ", b"\n", b".", b"x",
    "é".encode(), b"\xc3", b"\xa9", b"\xc3\xa9a", "日".encode(), b"\xe6", b"\x97", b"\xa5",
    b"\xe6\x97", b"\x97\xa5", b"\x97\xa5\xe6", "🙂".encode(), b"\xf0\x9f", b"\x99\x82", b"\x82a",
    b"\xff", b"\xc0\xaf", b"\xed\xa0\x80",  # never valid UTF-8: a stray byte, overlong '/', a surrogate
]


def brute_force_masks(dfa, vocab: Vocabulary, states) -> tuple[np.ndarray, np.ndarray]:
    """Oracle: bool [len(states), V] allowed and complete rows, from every token's bytes walked
    through the DFA (vectorised over the vocabulary, one byte position at a time)."""
    matrix, lengths = vocab.token_array()
    table = np.vstack([dfa.transitions, np.full((1, 256), DEAD, dtype=np.int32)])  # row -1: dead
    accepting = np.append(dfa.accepting, False)
    text = np.array([i not in vocab.special and len(vocab.token_bytes[i]) > 0 for i in range(len(vocab))])
    allowed = np.zeros((len(states), len(vocab)), dtype=bool)
    complete = np.zeros_like(allowed)
    for row, state in enumerate(states):
        current = np.full(len(vocab), state, dtype=np.int64)
        for k in range(matrix.shape[1]):
            step = lengths > k
            current[step] = table[current[step], matrix[step, k]]
        allowed[row] = text & (current != DEAD) & (state != DEAD)
        complete[row] = allowed[row] & accepting[current]
        if state != DEAD and dfa.accepting[state]:
            allowed[row, list(vocab.eos_ids)] = True
            complete[row, list(vocab.eos_ids)] = True
    return allowed, complete


def unpack(mask) -> np.ndarray:
    """Packed int32 rows (tensor or array) -> bool [B, 32 * W]."""
    words = np.ascontiguousarray(np.asarray(mask, dtype=np.int32))
    return np.unpackbits(words.view(np.uint8), axis=-1, bitorder="little").astype(bool)


def allowed_ids(constraint: CompiledConstraint, state) -> np.ndarray:
    return np.flatnonzero(unpack(constraint.mask([state]))[0, : constraint.vocab_size])
