"""The token trie of a vocabulary and the numba walks that turn DFA states into token masks.

The trie holds every token that can appear in text (not special, not EOS, not empty), with nodes
in depth-first preorder: node ``i`` has an edge byte, a depth (1 for children of the root), the
index just past its subtree, and the range of sorted-token positions whose bytes end exactly at
it. Walking it from a DFA state visits each shared prefix once and skips a whole subtree as soon as
its edge byte leads to the dead state, so the cost of a mask is the number of *live* trie nodes.

Masks are packed like torch/XGrammar bitmasks: int32 words ``[ceil(V/32)]``, bit ``j`` of word
``w`` is token ``32 * w + j``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numba
import numpy as np

from genweave.runtime.vocab import Vocabulary

# Token kinds (for token walks): text, end of sequence, never allowed (special or empty).
TEXT, EOS, NEVER = 0, 1, 2


@dataclass(frozen=True, eq=False)
class TokenTrie:
    """A vocabulary prepared for constraint compilation (build once per vocabulary)."""

    vocab_size: int
    vocab_key: str  # stable identity of the vocabulary (cache key)
    eos_ids: tuple[int, ...]
    node_byte: np.ndarray  # uint8 [n]
    node_depth: np.ndarray  # int32 [n]
    node_end: np.ndarray  # int32 [n]: first node after the subtree
    node_tokens_lo: np.ndarray  # int32 [n]: range into sorted_tokens
    node_tokens_hi: np.ndarray  # int32 [n]
    sorted_tokens: np.ndarray  # int32 [m]: text tokens in byte order
    token_offsets: np.ndarray  # int64 [V + 1]: CSR offsets of every token's bytes
    token_data: np.ndarray  # uint8: all token bytes
    token_kind: np.ndarray  # uint8 [V]: TEXT, EOS or NEVER
    max_depth: int

    @property
    def words(self) -> int:
        """Int32 words in one packed mask row."""
        return (self.vocab_size + 31) // 32

    @classmethod
    def from_vocabulary(cls, vocab: Vocabulary) -> TokenTrie:
        """Build the trie of ``vocab``'s text tokens (special tokens and EOS are never text)."""
        tokens = vocab.token_bytes
        eos = tuple(int(i) for i in vocab.eos_ids)
        kind = np.full(len(tokens), TEXT, dtype=np.uint8)
        kind[[i for i, data in enumerate(tokens) if not data]] = NEVER
        kind[list(vocab.special)] = NEVER
        kind[list(eos)] = EOS
        text_ids = sorted(np.flatnonzero(kind == TEXT).tolist(), key=tokens.__getitem__)
        offsets, data = _pack(tokens)
        sorted_offsets, sorted_data = _pack([tokens[i] for i in text_ids])
        nodes = _build_nodes(sorted_offsets, sorted_data)
        depth = nodes[1]
        return cls(
            vocab_size=len(tokens), vocab_key=vocabulary_key(vocab), eos_ids=eos,
            node_byte=nodes[0], node_depth=depth, node_end=nodes[2], node_tokens_lo=nodes[3],
            node_tokens_hi=nodes[4], sorted_tokens=np.array(text_ids, dtype=np.int32),
            token_offsets=offsets, token_data=data, token_kind=kind,
            max_depth=int(depth.max()) if depth.size else 0,
        )

    def token_bytes(self, token: int) -> bytes:
        return self.token_data[self.token_offsets[token]:self.token_offsets[token + 1]].tobytes()


def vocabulary_key(vocab: Vocabulary) -> str:
    """``vocab.fingerprint`` when the vocabulary has one, else a sha256 of its bytes and ids."""
    fingerprint = getattr(vocab, "fingerprint", None)
    if fingerprint:
        return str(fingerprint)
    digest = hashlib.sha256()
    for data in vocab.token_bytes:
        digest.update(len(data).to_bytes(4, "little"))
        digest.update(data)
    digest.update(repr((sorted(vocab.special), tuple(vocab.eos_ids))).encode())
    return digest.hexdigest()


def _pack(byte_strings) -> tuple[np.ndarray, np.ndarray]:
    """CSR form of a list of byte strings: (offsets [n + 1], concatenated bytes)."""
    lengths = np.fromiter((len(b) for b in byte_strings), dtype=np.int64, count=len(byte_strings))
    offsets = np.zeros(len(byte_strings) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = np.frombuffer(b"".join(byte_strings), dtype=np.uint8).copy()
    return offsets, data


@numba.njit(cache=True)
def _build_nodes(offsets, data):  # pragma: no cover - compiled
    """Preorder trie nodes of byte strings given in sorted order (see the module docstring)."""
    count = offsets.shape[0] - 1
    capacity = data.shape[0]
    node_byte = np.empty(capacity, np.uint8)
    node_depth = np.empty(capacity, np.int32)
    node_end = np.empty(capacity, np.int32)
    lo = np.empty(capacity, np.int32)
    hi = np.empty(capacity, np.int32)
    path = np.zeros(1, np.int32)  # path[d] = node at depth d of the previous string
    prev_start = 0
    prev_len = 0
    n = 0
    for k in range(count):
        start = offsets[k]
        length = offsets[k + 1] - start
        if path.shape[0] < length + 1:
            grown = np.zeros(2 * (length + 1), np.int32)
            grown[:path.shape[0]] = path
            path = grown
        common = 0
        while common < min(length, prev_len) and data[start + common] == data[prev_start + common]:
            common += 1
        for d in range(common + 1, prev_len + 1):  # close the previous path below the fork
            node_end[path[d]] = n
        if common == length and length == prev_len and k > 0:  # same bytes as the previous token
            hi[path[length]] = k + 1
        else:
            for d in range(common + 1, length + 1):
                node_byte[n] = data[start + d - 1]
                node_depth[n] = d
                lo[n] = k
                hi[n] = k
                path[d] = n
                n += 1
            lo[path[length]] = k
            hi[path[length]] = k + 1
        prev_start = start
        prev_len = length
    for d in range(1, prev_len + 1):
        node_end[path[d]] = n
    return node_byte[:n].copy(), node_depth[:n].copy(), node_end[:n].copy(), lo[:n].copy(), hi[:n].copy()


@numba.njit(cache=True, nogil=True)
def _walk_one(trie_byte, trie_depth, trie_end, trie_lo, trie_hi, sorted_tokens, transitions,
              accepting, start, allowed, complete, path):  # pragma: no cover - compiled
    """OR into ``allowed`` every text token readable from ``start``, into ``complete`` those that
    end in an accepting state (rows are uint32 views of packed masks)."""
    path[0] = start
    i = 0
    n = trie_byte.shape[0]
    while i < n:
        depth = trie_depth[i]
        state = transitions[path[depth - 1], trie_byte[i]]
        if state < 0:
            i = trie_end[i]
            continue
        path[depth] = state
        final = accepting[state]
        for k in range(trie_lo[i], trie_hi[i]):
            token = sorted_tokens[k]
            bit = np.uint32(1) << np.uint32(token & 31)
            allowed[token >> 5] |= bit
            if final:
                complete[token >> 5] |= bit
        i += 1


@numba.njit(cache=True, nogil=True)
def walk_states(trie_byte, trie_depth, trie_end, trie_lo, trie_hi, sorted_tokens, transitions,
                accepting, states, allowed, complete, max_depth):  # pragma: no cover - compiled
    """Mask rows ``allowed[i]``/``complete[i]`` of ``states[i]`` (rows must start zeroed); with a
    single ``complete`` row every state writes there (a scratch row when it is not wanted)."""
    path = np.empty(max_depth + 1, np.int32)
    for i in range(states.shape[0]):
        row = i if complete.shape[0] == states.shape[0] else 0
        _walk_one(trie_byte, trie_depth, trie_end, trie_lo, trie_hi, sorted_tokens, transitions,
                  accepting, states[i], allowed[i], complete[row], path)


@numba.njit(cache=True, nogil=True)
def advance_tokens(transitions, accepting, token_offsets, token_data, token_kind, states,
                   tokens, out):  # pragma: no cover - compiled
    """``out[i]``: the state after token ``tokens[i]`` from ``states[i]`` (-1 = dead). EOS keeps an
    accepting state and kills any other; special and empty tokens and unknown ids always kill."""
    for i in range(states.shape[0]):
        state = states[i]
        token = tokens[i]
        if token < 0 or token >= token_kind.shape[0]:
            out[i] = -1
            continue
        kind = token_kind[token]
        if state < 0 or kind == 2:
            out[i] = -1
        elif kind == 1:
            out[i] = state if accepting[state] else -1
        else:
            for k in range(token_offsets[token], token_offsets[token + 1]):
                state = transitions[state, token_data[k]]
                if state < 0:
                    break
            out[i] = state


def walk(trie: TokenTrie, transitions: np.ndarray, accepting: np.ndarray, states: np.ndarray,
         want_complete: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Packed int32 rows (allowed, complete-or-None) of the given DFA states, EOS not included."""
    k = states.shape[0]
    allowed = np.zeros((k, trie.words), dtype=np.uint32)
    complete = np.zeros((k if want_complete else 1, trie.words), dtype=np.uint32)
    walk_states(trie.node_byte, trie.node_depth, trie.node_end, trie.node_tokens_lo,
                trie.node_tokens_hi, trie.sorted_tokens, transitions, accepting,
                states.astype(np.int32), allowed, complete, trie.max_depth)
    return allowed.view(np.int32), (complete.view(np.int32) if want_complete else None)
