"""From a DFA over Unicode characters (interegular's FSM) to a DFA over UTF-8 bytes.

Each character state keeps its number; a character transition becomes the UTF-8 encoding of the
character. For every character state the outgoing transitions are first written as disjoint code
point intervals (interegular names some characters explicitly and sends all others through its
"anything else" class), then every lead byte gets the block of code points it starts, and the
continuation bytes split a block into 64 sub-blocks, recursively. Intermediate states are shared
between all blocks with the same relative content (memoised), so "any character" costs a handful
of states. Surrogates (U+D800..U+DFFF) and overlong forms have no UTF-8 encoding and never appear.

>>> import interegular
>>> dfa = char_fsm_to_bytes(interegular.parse_pattern("é|[^a]").to_fsm())
>>> dfa.accepts("é".encode()), dfa.accepts(b"a"), dfa.accepts("€".encode()), dfa.accepts(b"\\xc3")
(True, False, True, False)
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
from interegular.fsm import FSM, anything_else

from genweave.runtime.constraints.byte_dfa import DEAD, ByteDFA, minimize, trim

MAX_CODE_POINT = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)

# Interval lists: tuples of (lo, hi, target) with lo <= hi, sorted and disjoint.
Intervals = tuple[tuple[int, int, int], ...]

# Code points encodable with n bytes (surrogates excluded).
_VALID = {
    2: ((0x80, 0x7FF),),
    3: ((0x800, SURROGATES[0] - 1), (SURROGATES[1] + 1, 0xFFFF)),
    4: ((0x10000, MAX_CODE_POINT),),
}


def char_fsm_to_bytes(fsm: FSM, atoms: dict[str, tuple[int, int]] | None = None) -> ByteDFA:
    """The minimal byte-level DFA accepting the UTF-8 encodings of ``fsm``'s language.

    ``atoms`` maps a character of ``fsm``'s alphabet to the code point interval it stands for
    (see :func:`genweave.runtime.constraints.regex.compress_alphabet`); other characters stand
    for themselves. The intervals must be disjoint.
    """
    states = sorted(fsm.states, key=repr)
    number = {state: i for i, state in enumerate(states)}
    builder = _ByteStates(len(states))
    explicit = _explicit_intervals(fsm, atoms or {})
    for state in states:
        intervals = _intervals(fsm, state, number, explicit)
        builder.rows[number[state]] = builder.expand(intervals)
    accepting = np.zeros(len(builder.rows), dtype=bool)
    accepting[[number[s] for s in fsm.finals if s in number]] = True
    transitions = np.array(builder.rows, dtype=np.int32).reshape(-1, 256)
    return minimize(trim(transitions, accepting, number[fsm.initial]))


def _explicit_intervals(fsm: FSM, atoms: dict[str, tuple[int, int]]):
    """(lo, hi, key) arrays of the code point intervals named by the alphabet, sorted, and the
    anything-else key (None when the alphabet has no such class)."""
    mapping = fsm.alphabet._symbol_mapping  # the public Mapping view hides which keys are explicit
    named = [(atoms.get(c) or (ord(c), ord(c)), int(key)) for c, key in mapping.items() if c is not anything_else]
    named.sort()
    lo = np.array([span[0] for span, _ in named], dtype=np.int64)
    hi = np.array([span[1] for span, _ in named], dtype=np.int64)
    keys = np.array([key for _, key in named], dtype=np.int64)
    other = mapping.get(anything_else)
    return lo, hi, keys, (None if other is None else int(other))


def _intervals(fsm: FSM, state, number: dict, explicit) -> Intervals:
    """The transitions of one character state as code point intervals -> target state numbers."""
    named_lo, named_hi, keys, other_key = explicit
    outgoing = fsm.map.get(state, {})
    size = 1 + max([int(k) for k in outgoing] + [int(keys.max()) if keys.size else 0, other_key or 0])
    by_key = np.full(size, DEAD, dtype=np.int64)
    for key, target in outgoing.items():
        by_key[int(key)] = number[target]
    other = int(by_key[other_key]) if other_key is not None else DEAD
    # Segments alternate: the gap before each named interval (anything else), then the interval.
    lo = np.empty(2 * len(named_lo) + 1, dtype=np.int64)
    hi = np.empty_like(lo)
    target = np.empty_like(lo)
    lo[0::2] = np.concatenate([[0], named_hi + 1])
    hi[0::2] = np.concatenate([named_lo - 1, [MAX_CODE_POINT]])
    target[0::2] = other
    lo[1::2], hi[1::2], target[1::2] = named_lo, named_hi, by_key[keys] if keys.size else []
    keep = lo <= hi
    lo, hi, target = lo[keep], hi[keep], target[keep]
    starts = np.flatnonzero(np.concatenate([[True], target[1:] != target[:-1]]))
    ends = np.concatenate([starts[1:], [len(target)]]) - 1
    merged = zip(lo[starts].tolist(), hi[ends].tolist(), target[starts].tolist())
    return tuple((a, b, t) for a, b, t in merged if t != DEAD)


def _restrict(intervals: Intervals, lo: int, hi: int, origin: int) -> Intervals:
    """The part of ``intervals`` inside [lo, hi], shifted so that ``origin`` becomes 0."""
    if lo > hi:
        return ()
    start = max(bisect_right(intervals, (lo, MAX_CODE_POINT + 1, 0)) - 1, 0)
    out = []
    for a, b, t in intervals[start:]:
        if a > hi:
            break
        if b >= lo:
            out.append((max(a, lo) - origin, min(b, hi) - origin, t))
    return tuple(out)


def _lead_byte(code_point: int) -> int:
    if code_point < 0x800:
        return 0xC0 | code_point >> 6
    if code_point < 0x10000:
        return 0xE0 | code_point >> 12
    return 0xF0 | code_point >> 18


def _lead_bytes(intervals: Intervals) -> list[int]:
    """The lead bytes of multi-byte characters in ``intervals``, ascending (C0, C1 and F5..FF
    only start overlong or too large forms and never occur)."""
    leads: set[int] = set()
    for a, b, _ in intervals:
        if b >= 0x80:
            leads.update(range(_lead_byte(max(a, 0x80)), _lead_byte(b) + 1))
    return sorted(leads)


class _ByteStates:
    """Rows of the byte DFA under construction; continuation states are memoised by content."""

    def __init__(self, num_char_states: int):
        self.rows: list[list[int]] = [[]] * num_char_states
        self.memo: dict[tuple[Intervals, int], int] = {}

    def expand(self, intervals: Intervals) -> list[int]:
        """The 256 byte transitions of a character state with these code point intervals."""
        row = [DEAD] * 256
        for a, b, t in _restrict(intervals, 0, 0x7F, 0):
            row[a:b + 1] = [t] * (b - a + 1)
        for lead in _lead_bytes(intervals):
            length = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
            block = 64 ** (length - 1)
            base = (lead & (0x1F, 0x0F, 0x07)[length - 2]) * block
            pieces = tuple(
                piece for lo, hi in _VALID[length]
                for piece in _restrict(intervals, max(lo, base), min(hi, base + block - 1), base)
            )
            if pieces:
                row[lead] = self.continuation(pieces, length - 1)
        return row

    def continuation(self, relative: Intervals, remaining: int) -> int:
        """A state that reads ``remaining`` continuation bytes and then follows ``relative``
        (intervals relative to the start of a block of 64**remaining code points)."""
        key = (relative, remaining)
        if key in self.memo:
            return self.memo[key]
        row = [DEAD] * 256
        sub = 64 ** (remaining - 1)
        for i in range(64):
            pieces = _restrict(relative, i * sub, (i + 1) * sub - 1, i * sub)
            if not pieces:
                continue
            row[0x80 + i] = pieces[0][2] if remaining == 1 else self.continuation(pieces, remaining - 1)
        self.memo[key] = len(self.rows)
        self.rows.append(row)
        return self.memo[key]

