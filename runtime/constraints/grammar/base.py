"""What every compiled grammar shares: the vocabulary's token trie, contextual lexers, the static
index of positions (:mod:`~genweave.runtime.constraints.grammar.classify`), a memo of recent
masks and the parts of the step protocol that do not depend on the parser.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from genweave.runtime.constraints.byte_dfa import DEAD
from genweave.runtime.constraints.grammar import walks
from genweave.runtime.constraints.grammar.classify import classify
from genweave.runtime.constraints.grammar.lexers import LexerTable
from genweave.runtime.constraints.grammar.spec import GrammarSpec
from genweave.runtime.constraints.token_trie import TokenTrie

MEMO_ROWS = 256  # recent states whose masks are kept (a state inside a long lexeme repeats)
PACK_EVENTS_FROM = 64  # events with this many tokens get packed rows instead of token lists


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
        cd, sub, packed = self._pack_large_events(self._cd[:count], self._sub[:count], events[:num_events],
                                                  targets[:num_events])
        self.store.store(s, q, row, cd, events[:num_events], targets[:num_events], sub, packed)

    def _pack_large_events(self, cd, sub, events, targets):
        """Move the tokens of events with many tokens into packed rows: an END event's tokens
        (all take its verdict), a FEED event's tokens accepted after each target. The tokens
        left in ``cd`` are the others (those needing a child event or a walk). Returns
        ``(cd, sub, [(event, target slot, row)])``."""
        counts = np.bincount(cd[:, 1], minlength=len(events)) if len(cd) else np.zeros(0, dtype=np.int64)
        keep = np.ones(len(cd), dtype=bool)
        packed = []
        for e in np.flatnonzero(counts >= PACK_EVENTS_FROM).tolist():
            members = np.flatnonzero(cd[:, 1] == e)
            if events[e, walks.EV_KIND] == walks.END_EVENT:
                packed.append((e, 0, self._packed(cd[members, 0])))
                keep[members] = False
                continue
            slots = np.flatnonzero(targets[e] >= 0)
            codes = sub[np.ix_(members, slots)]
            resolved = (codes <= walks.SUB_ACCEPT).all(axis=1)
            if not resolved.any():  # e.g. the Earley fallback: every token is checked on the chart
                continue
            for j in slots.tolist():
                packed.append((e, j, self._packed(cd[members[codes[:, j] == walks.SUB_ACCEPT], 0])))
            keep[members[resolved]] = False
        return cd[keep], sub[keep], packed

    def _packed(self, tokens: np.ndarray) -> np.ndarray:
        bits = np.zeros(32 * self.words, dtype=bool)
        bits[tokens] = True
        return np.packbits(bits, bitorder="little").view(np.uint32)

    def explain(self) -> str:
        """How the grammar is parsed and what is cached, in one paragraph."""
        spec = self.spec
        kind = ("LALR(1)" if spec.parser_kind == "lalr"
                else f"Earley (not LALR(1): {spec.conflict})")
        positions, dependent, events = self.store.stats()
        return (f"{self.description}: {kind} parser, {len(spec.terminals)} terminals, "
                f"{len(spec.rules)} rules, {self.lexers.num_lexers} contextual lexers "
                f"({self.lexers.num_states} lexer states); {positions} positions cached, with "
                f"{dependent} context-dependent tokens in {events} events")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description}, {self.spec.parser_kind}, V={self.vocab_size})"
