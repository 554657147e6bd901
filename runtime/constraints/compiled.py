"""A regular constraint compiled against a vocabulary: token masks per DFA state, cached.

States are the ints of a trim byte DFA (:mod:`genweave.runtime.constraints.byte_dfa`); ``DEAD``
(-1) is the sticky state of a sequence that left the language. Because the DFA is trim, every
token a mask allows leads to a state from which the language can still be completed.

* the mask of a state allows exactly the text tokens whose bytes lead to a live state, plus the
  EOS ids when the state is accepting; special tokens are never allowed; DEAD allows nothing;
* the "complete" mask of a state allows the text tokens that lead to an *accepting* state, plus
  EOS when the state itself accepts (what a token budget allows at its last step);
* rows are computed on first use by walking the vocabulary's token trie (numba) and cached; the
  whole index can be computed at once with :meth:`CompiledConstraint.precompute`.

>>> from genweave.runtime.vocab import Vocabulary
>>> from genweave.runtime.constraints.languages import regex
>>> vocab = Vocabulary.from_bytes([b"a", b"b", b"ab", b"<eos>"], eos_ids=[3])
>>> c = compile_constraint(regex("ab?"), vocab, cache=False)
>>> c.allowed_tokens(c.initial()).tolist(), c.allowed_tokens(c.advance(c.initial(), 0)).tolist()
([0, 2], [1, 3])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from genweave.runtime.constraints import disk_cache
from genweave.runtime.constraints.byte_dfa import DEAD, ByteDFA
from genweave.runtime.constraints.languages import Language, language_dfa
from genweave.runtime.constraints.token_trie import TokenTrie, advance_tokens, walk
from genweave.runtime.vocab import Vocabulary


class MaskRows:
    """Packed mask rows of DFA states, filled on demand; row 0 is all zeros (the DEAD state)."""

    def __init__(self, num_states: int, words: int):
        self.data = np.zeros((min(num_states, 63) + 1, words), dtype=np.int32)  # grows by doubling
        self.count = 1
        self.row_of = np.full(num_states + 1, -1, dtype=np.int64)  # row_of[-1]: DEAD
        self.row_of[-1] = 0

    def missing(self, states: np.ndarray) -> np.ndarray:
        """The distinct states among ``states`` whose rows are not known yet."""
        return np.unique(states[self.row_of[states] < 0])

    def store(self, states: np.ndarray, rows: np.ndarray) -> None:
        end = self.count + len(states)
        if end > self.data.shape[0]:
            grown = np.zeros((max(end, 2 * self.data.shape[0]), self.data.shape[1]), dtype=np.int32)
            grown[: self.count] = self.data[: self.count]
            self.data = grown
        self.data[self.count:end] = rows
        self.row_of[states] = np.arange(self.count, end)
        self.count = end

    def known(self) -> tuple[np.ndarray, np.ndarray]:
        """(states with rows, their rows) — what the disk cache stores."""
        states = np.flatnonzero(self.row_of[:-1] >= 0)
        return states, self.data[self.row_of[states]]


class CompiledConstraint:
    """A regular language compiled against one vocabulary (see the module docstring)."""

    #: masks are rows cached per automaton state: cheap enough to apply at every step
    cached_masks = True

    def __init__(self, dfa: ByteDFA, trie: TokenTrie, description: str = ""):
        self.dfa = dfa
        self.trie = trie
        self.description = description
        self.vocab_size = trie.vocab_size
        self.eos_ids = trie.eos_ids
        self._eos_row = np.zeros(trie.words, dtype=np.int32)
        for token in trie.eos_ids:
            self._eos_row.view(np.uint32)[token >> 5] |= np.uint32(1 << (token & 31))
        self._accepting = np.append(dfa.accepting, False)  # index -1: DEAD
        self._allowed = MaskRows(dfa.num_states, trie.words)
        self._complete = MaskRows(dfa.num_states, trie.words)

    # -- the step protocol -------------------------------------------------------------------

    def initial(self) -> int:
        """The state before any token (DEAD only for an empty language, which compile rejects)."""
        return self.dfa.initial

    def mask(self, states: Sequence[int]) -> torch.Tensor:
        """Packed allowed-token masks, int32 ``[len(states), ceil(V/32)]`` (a fresh tensor)."""
        return torch.from_numpy(self._rows(self._allowed, states, complete=False))

    def complete_mask(self, states: Sequence[int]) -> torch.Tensor:
        """Packed masks of the tokens that *end* in an accepting state (and EOS where accepting)."""
        return torch.from_numpy(self._rows(self._complete, states, complete=True))

    def advance(self, state: int, token: int) -> int:
        """The state after ``token``; DEAD if the token is not allowed or not an id of the
        vocabulary (EOS keeps an accepting state: it adds no bytes)."""
        if state == DEAD or not 0 <= token < self.vocab_size:
            return DEAD
        if token in self.eos_ids:
            return state if self.dfa.accepting[state] else DEAD
        if self.trie.token_kind[token] != 0:
            return DEAD
        table = self.dfa.transitions
        start, end = self.trie.token_offsets[token], self.trie.token_offsets[token + 1]
        for byte in self.trie.token_data[start:end].tolist():
            state = table.item(state, byte)
            if state == DEAD:
                return DEAD
        return state

    def advance_batch(self, states: Sequence[int], tokens: Sequence[int]) -> np.ndarray:
        """``advance`` for many (state, token) pairs at once (numba)."""
        states = np.asarray(states, dtype=np.int32)
        out = np.empty_like(states)
        advance_tokens(self.dfa.transitions, self.dfa.accepting, self.trie.token_offsets,
                       self.trie.token_data, self.trie.token_kind, states,
                       np.asarray(tokens, dtype=np.int64), out)
        return out

    def check(self, state: int, token: int) -> bool:
        """Whether ``token`` is allowed in ``state`` (one token walk, no mask)."""
        return self.advance(state, token) != DEAD

    def is_complete(self, state: int) -> bool:
        """Whether the text read so far is a complete string of the language."""
        return state != DEAD and bool(self.dfa.accepting[state])

    def is_dead(self, state: int) -> bool:
        return state == DEAD

    def dead_state(self) -> int:
        """The sticky state of a sequence that left the language."""
        return DEAD

    def eos_mask(self) -> torch.Tensor:
        """The packed row allowing exactly the EOS ids."""
        return torch.from_numpy(self._eos_row.copy())

    def walk(self, state: int, data: bytes) -> int:
        """The state after reading raw bytes (independent of tokenization)."""
        return self.dfa.walk(state, data) if state != DEAD else DEAD

    # -- index -------------------------------------------------------------------------------

    def allowed_tokens(self, state: int) -> np.ndarray:
        """Sorted ids of the tokens allowed in ``state``."""
        row = self._rows(self._allowed, [state], complete=False)[0]
        bits = np.unpackbits(row.view(np.uint8), bitorder="little")[: self.vocab_size]
        return np.flatnonzero(bits)

    def precompute(self) -> CompiledConstraint:
        """Compute the mask rows of every state now (the whole index); returns ``self``."""
        self._rows(self._complete, np.arange(self.dfa.num_states), complete=True)  # fills both
        return self

    def is_fully_indexed(self) -> bool:
        """Whether every state's rows (allowed and complete) are known."""
        return min(self._allowed.count, self._complete.count) == self.dfa.num_states + 1

    def _rows(self, rows: MaskRows, states: Sequence[int], complete: bool) -> np.ndarray:
        index = np.asarray(states, dtype=np.int64).reshape(-1)
        found = rows.row_of[index]
        if found.min(initial=0) < 0:
            self._fill(np.unique(index[found < 0]), complete)
            found = rows.row_of[index]
        return rows.data[found]

    def _fill(self, states: np.ndarray, complete: bool) -> None:
        """Walk the trie from ``states`` and store their rows (both kinds when asked for complete)."""
        allowed, finals = walk(self.trie, self.dfa.transitions, self.dfa.accepting, states, complete)
        accepting = self.dfa.accepting[states]
        allowed[accepting] |= self._eos_row
        todo = self._allowed.missing(states)
        if todo.size:
            self._allowed.store(todo, allowed[np.searchsorted(states, todo)])
        if finals is not None:
            finals[accepting] |= self._eos_row
            self._complete.store(states, finals)

    # -- disk cache --------------------------------------------------------------------------

    def cache_arrays(self) -> dict[str, np.ndarray]:
        """The DFA and every known mask row, as arrays for :mod:`disk_cache`."""
        allowed_states, allowed_rows = self._allowed.known()
        complete_states, complete_rows = self._complete.known()
        return {
            "transitions": self.dfa.transitions, "accepting": self.dfa.accepting,
            "initial": np.array([self.dfa.initial]), "allowed_states": allowed_states,
            "allowed_rows": allowed_rows, "complete_states": complete_states,
            "complete_rows": complete_rows,
        }

    @classmethod
    def from_cache_arrays(cls, arrays, trie: TokenTrie, description: str) -> CompiledConstraint:
        dfa = ByteDFA(arrays["transitions"], arrays["accepting"], int(arrays["initial"][0]))
        compiled = cls(dfa, trie, description)
        if len(arrays["allowed_states"]):
            compiled._allowed.store(arrays["allowed_states"], arrays["allowed_rows"])
        if len(arrays["complete_states"]):
            compiled._complete.store(arrays["complete_states"], arrays["complete_rows"])
        return compiled

    def __repr__(self) -> str:
        return f"CompiledConstraint({self.description}, states={self.dfa.num_states}, V={self.vocab_size})"


def compile_constraint(language: Language, vocab: Vocabulary | TokenTrie, *, index: str = "lazy",
                       cache: bool = True, cache_dir: str | None = None) -> CompiledConstraint:
    """Compile ``language`` against a vocabulary (or a prebuilt :class:`TokenTrie` of one).

    ``index="lazy"`` computes mask rows on first use, ``"full"`` computes all of them now. With
    ``cache`` the result is looked up in, and written to, ``cache_dir`` (default
    ``$GENWEAVE_CACHE/constraints``, ``~/.cache/genweave/constraints``), keyed by the vocabulary
    and the language; a full index is stored with its mask rows, a lazy one with its DFA.
    Raises :class:`GenCheckError` for unsupported regexes and empty languages.
    """
    if index not in ("lazy", "full"):
        raise ValueError(f"index must be 'lazy' or 'full', not {index!r}")
    if not isinstance(language, Language) and hasattr(language, "compile"):
        return language.compile(vocab, index=index)  # grammars and their combinations
    trie = vocab if isinstance(vocab, TokenTrie) else TokenTrie.from_vocabulary(vocab)
    path = disk_cache.path_for(trie.vocab_key, language.key(), cache_dir) if cache else None
    stored = disk_cache.load(path, trie.vocab_key, language.key()) if path else None
    if stored is not None:
        compiled = CompiledConstraint.from_cache_arrays(stored, trie, str(language))
        if index == "full" and not compiled.is_fully_indexed():
            compiled.precompute()
            disk_cache.save(path, trie.vocab_key, language.key(), compiled.cache_arrays())
        return compiled
    compiled = CompiledConstraint(language_dfa(language), trie, str(language))
    if index == "full":
        compiled.precompute()
    if path:
        disk_cache.save(path, trie.vocab_key, language.key(), compiled.cache_arrays())
    return compiled
