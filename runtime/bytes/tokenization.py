"""How a model's tokenizer writes byte strings: canonical encodings, settled prefixes, canonicity.

Three questions the byte-level model asks of a tokenizer:

* ``encode(data)``: the **canonical** token ids of a byte string (the tokenizer's own encoding).
* ``settled_length(data)``: a length ``h`` such that, for every continuation ``y``,
  ``encode(data + y)`` starts with ``encode(data[:h])``. Only ``data[h:]`` can be tokenized in
  more than one way by a canonical encoding of a longer text, so a prompt is prefilled as the
  tokens of ``data[:h]`` (one LM call) plus a byte-level beam over the short rest.
* ``canonical_mask(after)``: ``bool[V]``, the tokens ``t`` such that ``after + (t,)`` is still
  canonical, where ``after`` are the tokens since the start of the text. Canonical mode of
  :class:`~genweave.runtime.bytes.byte_lm.ByteLM` restricts the token LM to these tokens.

**Longest match** (:class:`LongestMatch`, the tokenizer of ``ToyLM``): ``encode`` takes, at each
position, the longest token that is a prefix of the rest (the smallest id among equal bytes).

* Canonical = ``encode(decode(ts)) == ts``; for longest match every prefix of a canonical encoding
  is canonical, so canonicity is checked incrementally. Appending ``t`` to canonical ``t_1..t_k``
  breaks it exactly when some token ``u`` is a prefix of ``bytes(t_i..t_k) + bytes(t)`` and longer
  than ``bytes(t_i..t_k)`` (it would have been chosen at ``t_i``'s position), or when ``t`` is not
  the smallest id of its bytes. Only suffixes ``bytes(t_i..t_k)`` shorter than the longest token
  matter, and for each the forbidden ``t`` form a cached mask (tokens whose bytes start with some
  ``w`` where ``bytes(t_i..t_k) + w`` is a token): a handful of mask ANDs per LM call.
* Settled length (proof): let ``L`` be the longest token and ``p_i`` the start of the ``i``-th token
  of ``encode(data)``. While ``p_i + L <= len(data)``, every token that is a prefix of
  ``(data + y)[p_i:]`` lies inside ``data``, so longest match picks the same token for every ``y``.
  The head therefore ends after the last token with ``p_i <= len(data) - L``; the byte-level tail
  is shorter than ``L`` bytes.

**Hugging Face tokenizers** (:class:`HFTokenization`): byte-level BPE with a pre-tokenizer (SmolLM2,
GPT-2 style) or SentencePiece-style BPE.

* Settled length: tokens never cross pre-token boundaries. With a regex pre-tokenizer (GPT-2
  style), appending text can change the pieces before the start ``q`` of the last pre-token only
  if some alternative of the regex, tried at an earlier piece start, reads through to the end of
  ``data``: greedy matches that stopped before ``q`` stop there again, since the character at ``q``
  is unchanged, so only multi-character literals can, i.e. the contractions (``"'"`` + ``"r"``
  becoming ``"'re"``). One more character reveals those, so ``q`` is accepted when the pieces of
  ``data + c`` still start at ``q`` for every probe character ``c`` (ASCII letters, digits,
  punctuation, whitespace, two non-ASCII letters) and ``encode(data[:q])`` is a prefix of
  ``encode(data)``; otherwise the previous piece start is tried. The head ends there and the
  tail is the last word or so. ``tests/runtime/bytes`` checks ``encode(data + y)`` against the
  head on many random texts and continuations. Without a pre-tokenizer the candidates are
  whitespace-run starts and the probes check token boundaries of ``encode`` instead (a heuristic).
* Canonicity: the bigram test of Vieira et al. 2025 ("Language Models over Canonical Byte-Pair
  Encodings"): a token string is canonical when every adjacent pair ``(a, b)`` is, i.e.
  ``encode(bytes(a) + bytes(b)) == [a, b]``. The row of pairs after a left token is computed with
  one batched encode over the vocabulary (about a second for 49k tokens) and cached per left token;
  a pair whose bytes are not valid UTF-8 is checked with the BPE merges alone (byte-level BPE) or
  accepted (other tokenizers). For BPE the bigram test is exact inside a pre-token; across
  pre-tokens it tests the pair in isolation, an approximation.

>>> from genweave.runtime.models import ToyLM
>>> lm = ToyLM([b"a", b"b", b"ab", b"ba", b"aab", b"bb", b"abb"])
>>> tok = LongestMatch(lm.vocab)
>>> tok.encode(b"aabba"), tok.settled_length(b"aabba")
([4, 3], 3)
>>> bool(tok.canonical_mask((0,))[2])      # "a" then "ab" is "aab", which longest match takes whole
False
"""

from __future__ import annotations

import json
import string
from abc import ABC, abstractmethod
from collections import OrderedDict
from functools import cache
from typing import Any

import numpy as np
import torch

from genweave.dsl.errors import GenModelError
from genweave.runtime.bytes.trie import ByteTrie
from genweave.runtime.vocab import Vocabulary

_PAIR_ROWS = 256  # cached canonical-pair rows per tokenizer
# Continuations tried on a candidate boundary: a regex pre-tokenizer's boundary before the last
# pre-token moves only when a multi-character literal alternative (the contractions 's 're 'll ...)
# spans it, which one more character reveals.
_PROBES = tuple(string.ascii_letters + string.digits + string.punctuation + " \n\t") + ("\u00e9", "\u4e2d", "  ")


class Tokenization(ABC):
    """A tokenizer's canonical encoding, settled prefixes and canonicity masks (module docstring)."""

    vocab: Vocabulary

    @abstractmethod
    def encode(self, data: bytes) -> list[int]:
        """The canonical token ids of ``data`` (a text in the middle of a context)."""

    @abstractmethod
    def settled_length(self, data: bytes) -> int:
        """``h`` with ``encode(data + y)`` starting with ``encode(data[:h])`` for every ``y``."""

    @abstractmethod
    def canonical_mask(self, after: tuple[int, ...]) -> torch.Tensor:
        """``bool[V]``: tokens ``t`` with ``after + (t,)`` canonical (``after`` itself canonical)."""


class LongestMatch(Tokenization):
    """Greedy longest-match tokenization over a vocabulary's text tokens (exact; see above)."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab
        self.trie = ByteTrie.of(vocab)
        trie = self.trie
        firsts = trie.end_ids[trie.end_ptr[:-1][np.diff(trie.end_ptr) > 0]]
        singles = torch.zeros(len(vocab), dtype=torch.bool)
        singles[torch.from_numpy(firsts)] = True
        self._singletons = singles
        self._forbidden: dict[int, torch.Tensor] = {}

    def encode(self, data: bytes) -> list[int]:
        ids, _ = self._encode(data)
        return ids

    def settled_length(self, data: bytes) -> int:
        _, starts = self._encode(data)
        limit = len(data) - self.trie.max_length
        ends = [*starts[1:], len(data)]
        settled = 0
        for start, end in zip(starts, ends):
            if start > limit:
                break
            settled = end
        return settled

    def canonical_mask(self, after: tuple[int, ...]) -> torch.Tensor:
        mask = self._singletons.clone()
        suffix = b""
        for token in reversed(after):
            suffix = self.vocab.token_bytes[token] + suffix
            if len(suffix) >= self.trie.max_length:
                break
            node = self.trie.walk(suffix)
            if node > 0:
                mask &= ~self._forbidden_after(node)
        return mask

    def _encode(self, data: bytes) -> tuple[list[int], list[int]]:
        """Token ids and their start offsets."""
        trie, ids, starts, i = self.trie, [], [], 0
        while i < len(data):
            node, best, size = 0, -1, 0
            for j in range(i, min(len(data), i + trie.max_length)):
                node = trie.child(node, data[j])
                if node < 0:
                    break
                ends = trie.ends(node)
                if len(ends):
                    best, size = int(ends[0]), j - i + 1
            if best < 0:
                raise GenModelError(f"the bytes {data[i:i + 8]!r} at offset {i} cannot be written with the "
                                    f"text tokens of {self.vocab.name or 'this vocabulary'}")
            ids.append(best)
            starts.append(i)
            i += size
        return ids, starts

    def _forbidden_after(self, node: int) -> torch.Tensor:
        """Tokens ``t`` such that ``path(node) + w`` is a token for a non-empty prefix ``w`` of ``t``."""
        cached = self._forbidden.get(node)
        if cached is not None:
            return cached
        trie, depth = self.trie, int(self.trie.depth[node])
        marked = torch.zeros((trie.size, 1), dtype=torch.float64)
        stack = [node]
        while stack:  # once per node: the token ends strictly below it
            current = stack.pop()
            _, kids = trie.children(current)
            for kid in kids.tolist():
                stack.append(kid)
                if len(trie.ends(kid)):
                    start = trie.walk(trie.path(kid)[depth:])
                    if start > 0:
                        marked[start] = 1.0
        forbidden = (trie.reach().t() @ marked)[:, 0] > 0
        self._forbidden[node] = forbidden
        return forbidden


class HFTokenization(Tokenization):
    """A Hugging Face fast tokenizer (see the module docstring for settling and canonicity)."""

    def __init__(self, model: Any):
        self.model = model
        self.vocab = model.vocab
        self.trie = ByteTrie.of(model.vocab)
        self.backend = model.tokenizer.backend_tokenizer
        spec = json.loads(self.backend.to_str())
        self._byte_level = _has_step(spec.get("decoder"), "ByteLevel")
        self._pre_tokenizer = self.backend.pre_tokenizer
        self._rows: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._singletons: torch.Tensor | None = None

    def encode(self, data: bytes) -> list[int]:
        return list(self.model.encode(data.decode("utf-8")))

    def settled_length(self, data: bytes) -> int:
        text = data[:_valid_utf8_prefix(data)].decode("utf-8")
        ids = self.encode(text.encode())
        starts = self._piece_starts(text)
        for i in range(len(starts) - 1, 0, -1):
            window = starts[max(0, i - 2)]
            if not all(self._keeps_boundary(text[window:] + probe, starts[i] - window) for probe in _PROBES):
                continue
            head = text[:starts[i]].encode()
            head_ids = self.encode(head)
            if ids[:len(head_ids)] == head_ids:
                return len(head)
        return 0

    def _keeps_boundary(self, text: str, offset: int) -> bool:
        """Whether a pre-token (a token without a pre-tokenizer) of ``text`` starts at ``offset``."""
        if self._pre_tokenizer is not None:
            return offset in {start for _, (start, _) in self._pre_tokenizer.pre_tokenize_str(text)}
        target, position = len(text[:offset].encode()), 0
        for token in self.encode(text.encode()):
            if position >= target:
                break
            position += len(self.vocab.token_bytes[token])
        return position == target

    def canonical_mask(self, after: tuple[int, ...]) -> torch.Tensor:
        if self._singletons is None:
            self._singletons = self._pair_row(None)
        if not after:
            return self._singletons
        row = self._rows.get(after[-1])
        if row is None:
            row = self._pair_row(after[-1]) & self._singletons
            self._rows[after[-1]] = row
            while len(self._rows) > _PAIR_ROWS:
                self._rows.popitem(last=False)
        self._rows.move_to_end(after[-1])
        return row

    def _piece_starts(self, text: str) -> list[int]:
        """Character offsets where pre-tokens start (whitespace runs without a pre-tokenizer)."""
        if self._pre_tokenizer is not None:
            return [start for _, (start, _) in self._pre_tokenizer.pre_tokenize_str(text)]
        return [i for i, char in enumerate(text) if char.isspace() and (i == 0 or not text[i - 1].isspace())]

    def _pair_row(self, left: int | None) -> torch.Tensor:
        """``bool[V]``: ``b`` with ``encode(bytes(left) + bytes(b)) == [left, b]`` (or ``[b]``)."""
        tokens = self.vocab.token_bytes
        prefix = tokens[left] if left is not None else b""
        expected = [left] if left is not None else []
        ids = np.flatnonzero(self.trie.end_node >= 0).tolist()
        texts, valid_ids, row = [], [], torch.zeros(len(tokens), dtype=torch.bool)
        for token in ids:  # cached per left token (module docstring)
            data = prefix + tokens[token]
            try:
                texts.append(data.decode("utf-8"))
                valid_ids.append(token)
            except UnicodeDecodeError:
                row[token] = self._merges_only(data, [*expected, token])
        encodings = self.backend.encode_batch(texts, add_special_tokens=False)
        hits = [token for token, encoding in zip(valid_ids, encodings) if encoding.ids == [*expected, token]]
        row[torch.tensor(hits, dtype=torch.long)] = True
        return row

    def _merges_only(self, data: bytes, expected: list[int]) -> bool:
        """For bytes that are not UTF-8: byte-level BPE merges without pre-tokenization."""
        if not self._byte_level:
            return True
        chars = _byte_to_char()
        pieces = self.backend.model.tokenize("".join(chars[b] for b in data))
        return [piece.id for piece in pieces] == expected


class EncodeOnly(Tokenization):
    """Any model with ``encode``: nothing is settled and canonical mode is unavailable."""

    def __init__(self, model: Any):
        self.model = model
        self.vocab = model.vocab

    def encode(self, data: bytes) -> list[int]:
        return list(self.model.encode(data.decode("utf-8")))

    def settled_length(self, data: bytes) -> int:
        return 0

    def canonical_mask(self, after: tuple[int, ...]) -> torch.Tensor:
        raise GenModelError(f"canonical byte-level mode is not available for model {self.model.name!r}",
                            hint="use mode='all', or pass a Tokenization for this model's tokenizer")


def tokenization_of(model: Any) -> Tokenization:
    """The tokenization of a ``ToyLM`` (longest match), an ``HFModel`` or any other model."""
    from genweave.runtime.models.toy import ToyLM

    if isinstance(model, ToyLM):
        return LongestMatch(model.vocab)
    if hasattr(model, "tokenizer") and hasattr(model.tokenizer, "backend_tokenizer"):
        return HFTokenization(model)
    return EncodeOnly(model)


def _valid_utf8_prefix(data: bytes) -> int:
    """Length of the longest prefix of ``data`` that is valid UTF-8 (drops a cut character)."""
    for cut in range(len(data), max(-1, len(data) - 4), -1):
        try:
            data[:cut].decode("utf-8")
            return cut
        except UnicodeDecodeError:
            continue
    raise GenModelError("the prompt is not UTF-8 text", hint="pass text encoded as UTF-8")


def _has_step(decoder: dict | None, kind: str) -> bool:
    if decoder is None:
        return False
    if decoder["type"] == "Sequence":
        return any(_has_step(inner, kind) for inner in decoder["decoders"])
    return decoder["type"] == kind


@cache
def _byte_to_char() -> tuple[str, ...]:
    """GPT-2's byte-to-unicode table: printable Latin-1 bytes map to themselves, the other 68
    bytes (in order) to U+0100, U+0101, ..."""
    printable = {*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)}
    chars, shifted = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + shifted))
            shifted += 1
    return tuple(chars)
