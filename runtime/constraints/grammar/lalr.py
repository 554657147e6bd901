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
from genweave.runtime.constraints.grammar.classify import classify
from genweave.runtime.constraints.grammar.lexers import LexerTable
from genweave.runtime.constraints.grammar.spec import GrammarSpec
from genweave.runtime.constraints.grammar.stores import RowStore, StackTable
from genweave.runtime.constraints.token_trie import EOS, TEXT, TokenTrie

MEMO_ROWS = 256  # recent states whose masks are kept (a state inside a long lexeme repeats)


def _max_targets(spec: GrammarSpec) -> int:
    """How many shift targets the static index keeps per FEED event: the most any terminal has
    (at most 32; events of terminals with more fall back to run-time walks)."""
    if spec.lalr is None:
        return 1
    action = spec.lalr.action[:, : spec.end]
    counts = [len(np.unique(column[column >= 0])) for column in action.T]
    return int(min(max(counts, default=1), 32)) or 1


class TokenBase:
    """What every compiled grammar shares: the vocabulary's trie, its lexers, the EOS row, the
    static rows of positions and a memo of recent masks."""

    def __init__(self, spec: GrammarSpec, trie: TokenTrie, description: str):
        self.spec = spec
        self.trie = trie
        self.description = description
        self.vocab_size = trie.vocab_size
        self.eos_ids = trie.eos_ids
        self.words = trie.words
        self._eos_row = np.zeros(trie.words, dtype=np.uint32)
        for token in trie.eos_ids:
            self._eos_row[token >> 5] |= np.uint32(1 << (token & 31))
        self._trie_arrays = (trie.node_byte, trie.node_depth, trie.node_end, trie.node_tokens_lo,
                             trie.node_tokens_hi, trie.sorted_tokens)
        self._tokens = (trie.token_offsets, trie.token_data)
        self.lexers = LexerTable(spec.terminals)
        # overlay capacity: each lexeme of a token (at most one per byte, plus the final check and
        # $END) pushes one state, plus at most one per nonterminal for chains of empty reductions
        self.capacity = (trie.max_depth + 3) * (len(spec.nonterminals) + 2) + 8
        width = 2 * trie.max_depth + 16  # static overlays: longer ones defer to run time
        self._static_rows = np.empty((trie.max_depth + 1, width), dtype=np.int32)
        self._event_width = width + walks.EV_OV
        self._scratch = np.empty(self.capacity, dtype=np.int32)
        self._ov = np.empty(self.capacity, dtype=np.int32)
        self._cd = np.empty((trie.vocab_size, 4), dtype=np.int32)
        self.max_targets = _max_targets(spec)
        self._sub = np.empty((trie.vocab_size, self.max_targets), dtype=np.int16)
        first = np.zeros(trie.vocab_size, dtype=np.uint8)
        lengths = np.diff(trie.token_offsets)
        first[lengths > 0] = trie.token_data[trie.token_offsets[:-1][lengths > 0]]
        self._first_byte = first
        self._memo: dict[int, int] = {}
        self._memo_keys: list[int] = []
        self._memo_next = 0
        self._memo_rows = np.zeros((MEMO_ROWS, trie.words), dtype=np.uint32)

    def token_kind(self, token: int) -> int:
        """TEXT, EOS or NEVER (also for ids outside the vocabulary)."""
        return int(self.trie.token_kind[token]) if 0 <= token < self.vocab_size else 2

    def eos_mask(self) -> torch.Tensor:
        """The packed row allowing exactly the EOS ids."""
        return torch.from_numpy(self._eos_row.view(np.int32).copy())

    def dead_state(self) -> int:
        return DEAD

    def is_dead(self, state) -> bool:
        return state == DEAD

    def allowed_tokens(self, state) -> np.ndarray:
        """Sorted ids of the tokens allowed in ``state``."""
        row = self.mask([state])[0].numpy()
        bits = np.unpackbits(row.view(np.uint8), bitorder="little")[: self.vocab_size]
        return np.flatnonzero(bits)

    def mask(self, states: Sequence[int]) -> torch.Tensor:
        """Packed allowed-token masks, int32 ``[len(states), ceil(V/32)]`` (a fresh tensor)."""
        if len(states) == 1:  # the common case, kept short
            code = int(states[0])
            slot = self._memo.get(code)
            if slot is not None:
                return torch.from_numpy(self._memo_rows[slot:slot + 1].view(np.int32).copy())
            row = self._compute_masks(np.array([code], dtype=np.int64))
            self._remember(code, row[0])
            return torch.from_numpy(row.view(np.int32))
        out = np.empty((len(states), self.words), dtype=np.uint32)
        todo = []
        for i, state in enumerate(states):
            slot = self._memo.get(int(state))
            if slot is None:
                todo.append(i)
            else:
                out[i] = self._memo_rows[slot]
        if todo:
            codes = np.array([int(states[i]) for i in todo], dtype=np.int64)
            computed = self._compute_masks(codes)
            out[todo] = computed
            for code, row in zip(codes.tolist(), computed):
                self._remember(code, row)
        return torch.from_numpy(out.view(np.int32))

    def _remember(self, code: int, row: np.ndarray) -> None:
        if code in self._memo:
            return
        slot = self._memo_next
        if slot < len(self._memo_keys):  # a ring: overwrite the oldest entry
            del self._memo[self._memo_keys[slot]]
            self._memo_keys[slot] = code
        else:
            self._memo_keys.append(code)
        self._memo_next = (slot + 1) % MEMO_ROWS
        self._memo_rows[slot] = row
        self._memo[code] = slot

    def _compute_masks(self, codes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _first_dead_row(self, q: int) -> np.ndarray:
        """Packed row of the tokens whose first byte has no transition from lexer state ``q``."""
        dead = self.lexers.transitions[q] < 0
        row = np.packbits(dead[self._first_byte], bitorder="little")
        return np.pad(row, (0, 4 * self.words - row.size)).view(np.uint32)

    def _classify_position(self, s: int, q: int) -> None:
        """Compute and store the static row, context-dependent tokens and events of (s, q)."""
        row = np.zeros(self.words, dtype=np.uint32)
        capacity = 64
        while True:
            events = np.zeros((capacity, self._event_width), dtype=np.int32)
            targets = np.full((capacity, self.max_targets), -1, dtype=np.int32)
            count, num_events = classify(s, q, self._trie_arrays, self._tokens, self._tab, self._lay,
                                         self.stacks.nodes, row, self._cd, events, targets, self._sub,
                                         self._static_rows, self._scratch)
            if num_events >= 0:
                break
            capacity *= 4
            row[:] = 0
        self.store.store(s, q, row, self._cd[:count], events[:num_events], targets[:num_events],
                         self._sub[:count])

    def explain(self) -> str:
        """How the grammar is parsed and what is cached, in one paragraph."""
        spec = self.spec
        kind = ("LALR(1)" if spec.parser_kind == "lalr"
                else f"Earley (not LALR(1): {spec.conflict})")
        positions, dependent, events = self.store.stats()
        return (f"grammar {self.description}: {kind} parser, {len(spec.terminals)} terminals, "
                f"{len(spec.rules)} rules, {self.lexers.num_lexers} contextual lexers "
                f"({self.lexers.num_states} lexer states); {positions} positions cached, with "
                f"{dependent} context-dependent tokens in {events} events")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description}, {self.spec.parser_kind}, V={self.vocab_size})"


class LALRGrammar(TokenBase):
    """An LALR(1) grammar compiled against one vocabulary (see the module docstring)."""

    parser_kind = "lalr"

    def __init__(self, spec: GrammarSpec, trie: TokenTrie, description: str = ""):
        super().__init__(spec, trie, description)
        table = spec.lalr
        lexer_of = np.full(table.action.shape[0], -1, dtype=np.int32)
        for state in table.lexing_states.tolist():
            accepted = np.flatnonzero(table.action[state, : spec.end] != -1).tolist()
            lexer_of[state] = self.lexers.lexer_for(frozenset(accepted))
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
                                     store.events, store.targets, store.sub, self._dead_of, self._dead_rows,
                                     self._tokens, store.max_events)
            if todo is not None:
                out[todo] = part
            if not missed:
                return out
            for _, kind, key in missing[:missed].tolist():
                self._fill_cache(kind, key)
            rows = missing[:missed, 0]
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
