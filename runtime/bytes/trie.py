"""The byte trie of a vocabulary's text tokens, with subtree masses from one sparse matmul.

Every *text* token (not special, not EOS, non-empty bytes) hangs under the node reached by its
bytes; tokens with equal bytes share that node but stay distinct ids (``ends(node)`` lists them all).
Node 0 is the root (the empty string). For a next-token distribution ``p[V]`` the **mass** of a
node is the total probability of the tokens whose bytes start with the node's string:

    mass(n) = sum_{t : path(n) is a prefix of bytes(t)} p(t)  =  (R @ p)[n]

where ``R[n, t] = 1`` when node ``n`` lies on token ``t``'s path (root included). ``R`` is a sparse
``[nodes x V]`` CSR matrix built once per vocabulary, so a batch of rows costs one sparse matmul.

>>> from genweave.runtime.vocab import Vocabulary
>>> trie = ByteTrie.build(Vocabulary.from_bytes([b"a", b"ab", b"ab", b"b", b"<e>"], eos_ids=[4]))
>>> node = trie.walk(b"ab")
>>> trie.ends(node).tolist(), int(trie.depth[node])
([1, 2], 2)
>>> import torch
>>> p = torch.tensor([[0.1, 0.2, 0.3, 0.15, 0.25]], dtype=torch.float64)
>>> round(float(trie.masses(p)[0, trie.walk(b"a")]), 12)
0.6
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch

from genweave.runtime.vocab import Vocabulary

_TRIES: weakref.WeakKeyDictionary[Vocabulary, ByteTrie] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class ByteTrie:
    """The text tokens of a vocabulary as a byte trie (see the module docstring).

    * ``parent``, ``edge``, ``depth``: ``int64[N]`` per node (the root has parent -1, edge -1).
    * ``child_ptr``/``child_byte``/``child_node``: children of node ``n`` in byte order are
      ``child_node[child_ptr[n]:child_ptr[n + 1]]`` with edge bytes ``child_byte[...]``.
    * ``end_ptr``/``end_ids``: the token ids whose bytes end exactly at node ``n``.
    * ``end_node``: ``int64[V]``, the node of each token id, -1 for non-text ids.
    * ``text_mask``/``eos_mask``: ``bool[V]``: text tokens (in the trie) and EOS ids.
    * ``max_length``: the longest text token in bytes.
    """

    vocab_size: int
    parent: np.ndarray
    edge: np.ndarray
    depth: np.ndarray
    child_ptr: np.ndarray
    child_byte: np.ndarray
    child_node: np.ndarray
    end_ptr: np.ndarray
    end_ids: np.ndarray
    end_node: np.ndarray
    text_mask: torch.Tensor
    eos_mask: torch.Tensor
    max_length: int
    _edges: dict[int, int] = field(repr=False)
    _reach: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        """Number of nodes, the root included."""
        return len(self.parent)

    @classmethod
    def of(cls, vocab: Vocabulary) -> ByteTrie:
        """The trie of ``vocab``, built once per vocabulary object and cached."""
        trie = _TRIES.get(vocab)
        if trie is None:
            trie = _TRIES[vocab] = cls.build(vocab)
        return trie

    @classmethod
    def build(cls, vocab: Vocabulary) -> ByteTrie:
        """Build the trie (one pass over the vocabulary's bytes)."""
        size = len(vocab)
        eos = np.zeros(size, dtype=bool)
        eos[list(vocab.eos_ids)] = True
        text = ~vocab.special_mask & (vocab.lengths > 0)
        edges: dict[int, int] = {}
        parent, edge, depth = [-1], [-1], [0]
        end_node = np.full(size, -1, dtype=np.int64)
        for token in np.flatnonzero(text).tolist():
            node = 0
            for byte in vocab.token_bytes[token]:
                key = node * 256 + byte
                child = edges.get(key)
                if child is None:
                    child = edges[key] = len(parent)
                    parent.append(node)
                    edge.append(byte)
                    depth.append(depth[node] + 1)
                node = child
            end_node[token] = node
        parent_a, edge_a = np.asarray(parent, dtype=np.int64), np.asarray(edge, dtype=np.int64)
        child_ptr, child_byte, child_node = _children(parent_a, edge_a)
        end_ptr, end_ids = _csr(end_node[text], np.flatnonzero(text), len(parent))
        return cls(size, parent_a, edge_a, np.asarray(depth, dtype=np.int64), child_ptr, child_byte,
                   child_node, end_ptr, end_ids, end_node, torch.from_numpy(text.copy()),
                   torch.from_numpy(eos), int(vocab.lengths[text].max(initial=0)), edges)

    def child(self, node: int, byte: int) -> int:
        """The child of ``node`` along ``byte``, or -1."""
        return self._edges.get(node * 256 + byte, -1)

    def walk(self, data: bytes, node: int = 0) -> int:
        """The node reached from ``node`` by ``data``, or -1 when no token continues that way."""
        for byte in data:
            node = self._edges.get(node * 256 + byte, -1)
            if node < 0:
                return -1
        return node

    def children(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """``(edge bytes, child nodes)`` of ``node``, in byte order."""
        lo, hi = self.child_ptr[node], self.child_ptr[node + 1]
        return self.child_byte[lo:hi], self.child_node[lo:hi]

    def ends(self, node: int) -> np.ndarray:
        """Ids of the tokens whose bytes are exactly ``node``'s string."""
        return self.end_ids[self.end_ptr[node]:self.end_ptr[node + 1]]

    def path(self, node: int) -> bytes:
        """The byte string of ``node``."""
        out = []
        while node > 0:
            out.append(int(self.edge[node]))
            node = int(self.parent[node])
        return bytes(reversed(out))

    def reach(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The sparse CSR ``[N, V]`` float64 matrix ``R`` (cached per device)."""
        key = str(device)
        if key not in self._reach:
            self._reach[key] = self._build_reach().to(device)
        return self._reach[key]

    def masses(self, probs: torch.Tensor) -> torch.Tensor:
        """``[R, N]`` subtree masses of ``[R, V]`` float64 next-token probabilities (one sparse matmul)."""
        return torch.sparse.mm(self.reach(probs.device), probs.T.contiguous()).T.contiguous()

    def _build_reach(self) -> torch.Tensor:
        tokens = np.flatnonzero(self.end_node >= 0)
        rows, cols = [], []
        for token in tokens.tolist():  # once per vocabulary: every node on each token's path
            node = int(self.end_node[token])
            while node >= 0:
                rows.append(node)
                cols.append(token)
                node = int(self.parent[node])
        rows_a, cols_a = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        order = np.lexsort((cols_a, rows_a))
        rows_a, cols_a = rows_a[order], cols_a[order]
        crow = np.zeros(self.size + 1, dtype=np.int64)
        np.add.at(crow, rows_a + 1, 1)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the matmul we use is stable
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(torch.from_numpy(np.cumsum(crow)), torch.from_numpy(cols_a),
                                           torch.ones(len(cols_a), dtype=torch.float64),
                                           size=(self.size, self.vocab_size))


def _children(parent: np.ndarray, edge: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR children lists sorted by edge byte."""
    nodes = np.arange(1, len(parent))
    order = np.lexsort((edge[nodes], parent[nodes]))
    nodes = nodes[order]
    ptr, _ = _csr(parent[nodes], nodes, len(parent))
    return ptr, edge[nodes], nodes


def _csr(keys: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ptr, values sorted by key)`` so that key ``k``'s values are ``values[ptr[k]:ptr[k+1]]``."""
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=size)
    ptr = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr, np.asarray(values, dtype=np.int64)[order]
