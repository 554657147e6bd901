"""An LALR(1) grammar compiled against a vocabulary: the step protocol of constraints.

A sequence state is an int ``node * stride + q``: an interned parser stack (``node``, see
:mod:`~genweave.runtime.constraints.grammar.stores`) and the state ``q`` of the contextual lexer
in the middle of the current lexeme; ``DEAD`` (-1) is the sticky state of a sequence that left
the language. States are immutable values, so rollback and forks keep old ints.

Masks are exact: a token is allowed iff reading its bytes (lexemes ending where the next byte
cannot extend them, each fed to the LR parser with its reductions) fails nowhere and leaves a
lexeme that can still end as a terminal the parser accepts; EOS iff the text can end here.
The mask of a state is the cached row of its *position* (top parser state, lexer state), which
holds the tokens whose fate does not depend on the stack below the top (found by a static trie
walk, once per position), plus the few context-dependent tokens of that position, checked on the
real stack at each step (numba). See ``docs/constraints.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from genweave.runtime.constraints.byte_dfa import DEAD
from genweave.runtime.constraints.grammar import fill, walks
from genweave.runtime.constraints.grammar.base import TokenBase
from genweave.runtime.constraints.grammar.spec import GrammarSpec
from genweave.runtime.constraints.grammar.stores import RowStore, StackTable
from genweave.runtime.constraints.token_trie import EOS, TEXT, TokenTrie


class LALRGrammar(TokenBase):
    """An LALR(1) grammar compiled against one vocabulary (see the module docstring)."""

    parser_kind = "lalr"

    def __init__(self, spec: GrammarSpec, trie: TokenTrie, description: str = ""):
        super().__init__(spec, trie, description)
        table = spec.lalr
        lexer_of = np.full(table.action.shape[0], -1, dtype=np.int32)
        for state in table.lexing_states.tolist():
            accepted = np.flatnonzero(table.action[state, : spec.end] != -1).tolist()
            lexer_of[state] = self.lexers.lexer_for(frozenset(accepted), rebuild=False)
        self.lexers.rebuild()
        self.fresh = self.lexers.add_fresh(int(lexer_of[table.initial]))
        self.stride = self.lexers.num_states
        self._lexer_of = lexer_of
        lengths, lhs = spec.rule_arrays()
        lex = self.lexers
        self._tab, self._lay = walks.pack_tables(
            {"transitions": lex.transitions, "terminal": lex.terminal, "emit_offsets": lex.emit_offsets,
             "emit_terminals": lex.emit_terminals, "starts": lex.starts, "lexer_of": lexer_of,
             "ignored": lex.ignored},
            {"action": table.action, "goto": table.goto, "rule_len": lengths, "rule_lhs": lhs},
            {"eos": np.array(trie.eos_ids), "fresh": self.fresh, "stride": self.stride,
             "capacity": self.capacity, "accept": table.accept, "end": spec.end})
        self.stacks = StackTable(table.initial)
        self.store = RowStore(table.action.shape[0], self.stride, trie.words, self._event_width,
                              self.max_targets)
        self._dead_of = np.full(self.stride, -1, dtype=np.int32)
        self._dead_rows = np.zeros((8, trie.words), dtype=np.uint32)

    # -- the step protocol -------------------------------------------------------------------

    def initial(self) -> int:
        return self.fresh  # node 0 (the initial stack), nothing read

    def _compute_masks(self, codes: np.ndarray) -> np.ndarray:
        out = np.zeros((codes.shape[0], self.words), dtype=np.uint32)
        missing = np.empty((codes.shape[0], 3), dtype=np.int64)
        todo = None
        while True:
            part = out if todo is None else np.zeros((todo.size, self.words), dtype=np.uint32)
            store = self.store
            missed = fill.fill_masks(codes if todo is None else codes[todo], part, missing, self._tab, self._lay,
                                     self.stacks.nodes, store.row_of, store.rows, store.ranges, store.cd,
                                     store.events, store.targets, store.sub, store.event_row_of,
                                     store.event_rows, self._dead_of, self._dead_rows, self._tokens,
                                     store.max_events)
            if todo is not None:
                out[todo] = part
            if not missed:
                return out
            for _, kind, key in missing[:missed].tolist():
                self._fill_cache(kind, key)
            rows = missing[:missed, 0].copy()  # the next round overwrites `missing`
            todo = rows if todo is None else todo[rows]

    def _fill_cache(self, kind: int, key: int) -> None:
        """Compute a missing cached part: a position's static row or a first-dead row."""
        if kind == 0:
            s, q = divmod(key, self.stride)
            if self.store.row_of[s, q] < 0:
                self._classify_position(s, q)
        elif self._dead_of[key] < 0:
            index = int(self._dead_of.max(initial=-1)) + 1
            if index == self._dead_rows.shape[0]:
                self._dead_rows = np.concatenate([self._dead_rows, np.zeros_like(self._dead_rows)])
            self._dead_rows[index] = self._first_dead_row(key)
            self._dead_of[key] = index

    def complete_mask(self, states: Sequence[int]) -> torch.Tensor:
        """Packed masks of the tokens after which the text may end (and EOS where it may end now)."""
        masks = self.mask(states).numpy().view(np.uint32)
        out = np.zeros_like(masks)
        for i, state in enumerate(states):
            if state == DEAD:
                continue
            bits = np.unpackbits(masks[i].view(np.uint8), bitorder="little")[: self.vocab_size]
            candidates = np.flatnonzero(bits & (self.trie.token_kind == TEXT)).astype(np.int64)
            node, q = divmod(int(state), self.stride)
            fill.completing_tokens(candidates, self._tokens, node, q, out[i], self._tab, self._lay,
                                   self.stacks.nodes)
            if self.is_complete(state):
                out[i] |= self._eos_row
        return torch.from_numpy(out.view(np.int32))

    def advance(self, state: int, token: int) -> int:
        """The state after ``token``; DEAD if it is not allowed (EOS keeps a state that may end)."""
        kind = self.token_kind(token)
        if state == DEAD or kind not in (TEXT, EOS):
            return DEAD
        if kind == EOS:
            return state if self.is_complete(state) else DEAD
        offsets = self.trie.token_offsets
        return self._read(state, self.trie.token_data, int(offsets[token]), int(offsets[token + 1]))

    def walk(self, state: int, data: bytes) -> int:
        """The state after reading raw bytes (independent of tokenization)."""
        if state == DEAD:
            return DEAD
        array = np.frombuffer(bytes(data), dtype=np.uint8)
        return self._read(state, array, 0, array.shape[0])

    def _read(self, state: int, data: np.ndarray, start: int, stop: int) -> int:
        node, q = divmod(int(state), self.stride)
        allowed, q, length, base = walks.check_bytes(data, start, stop, node, q, self._ov, self._scratch,
                                                     self._tab, self._lay, self.stacks.nodes)
        if not allowed:
            return DEAD
        return self.stacks.push(int(base), self._ov[:length].tolist()) * self.stride + int(q)

    def check(self, state: int, token: int) -> bool:
        """Whether ``token`` is allowed in ``state`` (one token walk, no mask, no new stack nodes)."""
        kind = self.token_kind(token)
        if state == DEAD or kind not in (TEXT, EOS):
            return False
        if kind == EOS:
            return self.is_complete(state)
        node, q = divmod(int(state), self.stride)
        offsets = self.trie.token_offsets
        allowed, _, _, _ = walks.check_bytes(self.trie.token_data, int(offsets[token]), int(offsets[token + 1]),
                                             node, q, self._ov, self._scratch, self._tab, self._lay,
                                             self.stacks.nodes)
        return bool(allowed)

    def is_complete(self, state: int) -> bool:
        """Whether the text read so far is a complete string of the language."""
        if state == DEAD:
            return False
        node, q = divmod(int(state), self.stride)
        return bool(walks.is_complete(node, q, self._ov, self._tab, self._lay, self.stacks.nodes))

    # -- index -------------------------------------------------------------------------------

    def precompute(self) -> LALRGrammar:
        """Cache the static rows of every position the lexer can be in; returns ``self``."""
        for s in self.spec.lalr.lexing_states.tolist():
            states = list(self.lexers.states_of(int(self._lexer_of[s])))
            if s == self.spec.lalr.initial:
                states.append(self.fresh)
            for q in states:
                if self.store.row_of[s, q] < 0:
                    self._classify_position(s, q)
                if self.lexers.terminal[q] >= 0:
                    self._fill_cache(1, q)
        return self

    def stack(self, state: int) -> list[int]:
        """The parser stack of a live state, bottom first (for tests and traces)."""
        return self.stacks.states(int(state) // self.stride)
