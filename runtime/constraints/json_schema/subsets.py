"""Compiled (numba) automaton constructions: the subset construction and pair products.

:func:`determinize` turns a byte NFA (a deterministic byte table plus epsilon edges, one final
state) into a DFA whose states are epsilon closures, represented by their byte-bearing members
(sorted) and whether they contain the final state. Closures are found with a depth-first search
marked by a stamp; closure sets are interned in an open-addressing hash table; the closure of a
single target is cached per NFA state, so the common case (one member moves on a byte) costs one
lookup. :func:`pair_product` builds the reachable part of a product automaton (intersection or
difference) the same way, pairs interned by their code ``p * (m + 1) + q + 1``.
"""

from __future__ import annotations

import numba
import numpy as np

OVERFLOW = -3


@numba.njit(cache=True)
def _closure(seeds, count, table_has_bytes, eps_ptr, eps_idx, final, mark, stamp, stack, out):
    """Members (sorted, into ``out``) of the epsilon closure of ``seeds[:count]``; returns
    (member count, contains final)."""
    top = 0
    for i in range(count):
        s = seeds[i]
        if mark[s] != stamp:
            mark[s] = stamp
            stack[top] = s
            top += 1
    size = 0
    accept = False
    while top > 0:
        top -= 1
        s = stack[top]
        if s == final:
            accept = True
        if table_has_bytes[s]:
            out[size] = s
            size += 1
        for j in range(eps_ptr[s], eps_ptr[s + 1]):
            t = eps_idx[j]
            if mark[t] != stamp:
                mark[t] = stamp
                stack[top] = t
                top += 1
    out[:size].sort()
    return size, accept


@numba.njit(cache=True)
def _hash(members, size, accept):
    h = np.uint64(1469598103934665603) ^ np.uint64(accept)
    for i in range(size):
        h = (h ^ np.uint64(members[i])) * np.uint64(1099511628211)
    return h


@numba.njit(cache=True)
def determinize(table, eps_ptr, eps_idx, final, entry, limit):
    """(DFA table [count, 256], accepting [count], start state), or a table with OVERFLOW as its
    start state when more than ``limit`` DFA states are needed."""
    n = table.shape[0]
    has_bytes = np.zeros(n, dtype=np.bool_)
    for s in range(n):
        for b in range(256):
            if table[s, b] >= 0:
                has_bytes[s] = True
                break
    mark = np.zeros(n, dtype=np.int64)
    stack = np.empty(n + 1, dtype=np.int32)
    scratch = np.empty(n + 1, dtype=np.int32)
    targets = np.empty(n + 1, dtype=np.int32)
    single = np.full(n, -2, dtype=np.int64)  # DFA id of closure({t})
    cap = 1024
    rows = np.full((cap, 256), -1, dtype=np.int32)
    accepting = np.zeros(cap, dtype=np.bool_)
    ptr = np.zeros(cap + 1, dtype=np.int64)
    members = np.empty(4096, dtype=np.int32)
    slots = 1 << 12
    table_ids = np.full(slots, -1, dtype=np.int64)
    table_hash = np.zeros(slots, dtype=np.uint64)
    count = 0
    stamp = 0
    pending_seed = np.empty(1, dtype=np.int32)
    start = -1
    lo = hi = np.int64(0)
    d = -1
    while True:
        # Phase 1 (d == -1): intern the start closure; later: expand state d byte by byte.
        if d >= 0:
            lo, hi = ptr[d], ptr[d + 1]
        for b in range(256 if d >= 0 else 1):
            if d < 0:
                pending_seed[0] = entry
                seeds, nseeds = pending_seed, 1
            else:
                nseeds = 0
                for j in range(lo, hi):
                    t = table[members[j], b]
                    if t >= 0:
                        targets[nseeds] = t
                        nseeds += 1
                if nseeds == 0:
                    continue
                if nseeds == 1 and single[targets[0]] >= 0:
                    rows[d, b] = single[targets[0]]
                    continue
                seeds = targets
            stamp += 1
            size, accept = _closure(seeds, nseeds, has_bytes, eps_ptr, eps_idx, final, mark, stamp, stack, scratch)
            h = _hash(scratch, size, accept)
            slot = np.int64(h & np.uint64(slots - 1))
            found = -1
            while table_ids[slot] >= 0:
                other = table_ids[slot]
                if table_hash[slot] == h and accepting[other] == accept and ptr[other + 1] - ptr[other] == size:
                    same = True
                    base = ptr[other]
                    for i in range(size):
                        if members[base + i] != scratch[i]:
                            same = False
                            break
                    if same:
                        found = other
                        break
                slot = (slot + 1) & (slots - 1)
            if found < 0:
                if count >= limit:
                    return rows[:count], accepting[:count], OVERFLOW
                if count == cap:
                    cap *= 2
                    grown = np.full((cap, 256), -1, dtype=np.int32)
                    grown[:count] = rows[:count]
                    rows = grown
                    grown_acc = np.zeros(cap, dtype=np.bool_)
                    grown_acc[:count] = accepting[:count]
                    accepting = grown_acc
                    grown_ptr = np.zeros(cap + 1, dtype=np.int64)
                    grown_ptr[:count + 1] = ptr[:count + 1]
                    ptr = grown_ptr
                end = ptr[count] + size
                if end > members.shape[0]:
                    grown_members = np.empty(max(2 * members.shape[0], end), dtype=np.int32)
                    grown_members[:ptr[count]] = members[:ptr[count]]
                    members = grown_members
                members[ptr[count]:end] = scratch[:size]
                ptr[count + 1] = end
                accepting[count] = accept
                table_ids[slot] = count
                table_hash[slot] = h
                found = count
                count += 1
                if 2 * count > slots:  # rehash at half load
                    slots *= 2
                    table_ids = np.full(slots, -1, dtype=np.int64)
                    table_hash = np.zeros(slots, dtype=np.uint64)
                    for k in range(count):
                        hk = _hash(members[ptr[k]:ptr[k + 1]], ptr[k + 1] - ptr[k], accepting[k])
                        sk = np.int64(hk & np.uint64(slots - 1))
                        while table_ids[sk] >= 0:
                            sk = (sk + 1) & (slots - 1)
                        table_ids[sk] = k
                        table_hash[sk] = hk
            if d < 0:
                start = found
            else:
                if nseeds == 1:
                    single[targets[0]] = found
                rows[d, b] = found
        d += 1
        if d >= count:
            break
    return rows[:count], accepting[:count], start


@numba.njit(cache=True)
def _slot(code, bits):
    """Fibonacci hashing of a pair code into ``bits`` bits."""
    return np.int64((np.uint64(code) * np.uint64(11400714819323198485)) >> np.uint64(64 - bits))


@numba.njit(cache=True)
def pair_product(left, left_accepting, right, right_accepting, left_start, right_start, difference):
    """The reachable pairs of two DFAs (``right`` may be empty: start -1). Intersection moves
    where both move; difference moves where the left moves (the right may be dead, -1).
    Returns (table, accepting) with the start pair as state 0."""
    stride = right.shape[0] + 1
    bits = 10
    keys = np.full(1 << bits, -1, dtype=np.int64)
    ids = np.empty(1 << bits, dtype=np.int64)
    cap = 256
    pairs = np.empty((cap, 2), dtype=np.int64)
    rows = np.full((cap, 256), -1, dtype=np.int32)
    code = left_start * stride + right_start + 1
    slot = _slot(code, bits)
    keys[slot] = code
    ids[slot] = 0
    pairs[0, 0] = left_start
    pairs[0, 1] = right_start
    count = 1
    d = 0
    while d < count:
        p, q = pairs[d, 0], pairs[d, 1]
        for b in range(256):
            lp = left[p, b]
            if lp < 0:
                continue
            rq = right[q, b] if q >= 0 else -1
            if rq < 0 and not difference:
                continue
            code = lp * stride + rq + 1
            mask = (1 << bits) - 1
            slot = _slot(code, bits)
            while keys[slot] >= 0 and keys[slot] != code:
                slot = (slot + 1) & mask
            if keys[slot] == code:
                rows[d, b] = ids[slot]
                continue
            if count == cap:
                cap *= 2
                grown = np.full((cap, 256), -1, dtype=np.int32)
                grown[:count] = rows[:count]
                rows = grown
                grown_pairs = np.empty((cap, 2), dtype=np.int64)
                grown_pairs[:count] = pairs[:count]
                pairs = grown_pairs
            keys[slot] = code
            ids[slot] = count
            pairs[count, 0] = lp
            pairs[count, 1] = rq
            rows[d, b] = count
            count += 1
            if 2 * count > (1 << bits):
                bits += 1
                keys = np.full(1 << bits, -1, dtype=np.int64)
                ids = np.empty(1 << bits, dtype=np.int64)
                for k in range(count):
                    c = pairs[k, 0] * stride + pairs[k, 1] + 1
                    s = _slot(c, bits)
                    while keys[s] >= 0:
                        s = (s + 1) & ((1 << bits) - 1)
                    keys[s] = c
                    ids[s] = k
        d += 1
    accepting = np.zeros(count, dtype=np.bool_)
    for k in range(count):
        a = left_accepting[pairs[k, 0]]
        q = pairs[k, 1]
        c = right_accepting[q] if q >= 0 else False
        accepting[k] = (a and not c) if difference else (a and c)
    return rows[:count], accepting


@numba.njit(cache=True)
def live_order(table, accepting, initial):
    """The states reachable from ``initial`` that can reach an accepting state, in breadth-first
    order from ``initial`` (empty when ``initial`` cannot reach one)."""
    n = table.shape[0]
    # Reverse edges in CSR form, then a backward search from the accepting states.
    degree = np.zeros(n + 1, dtype=np.int64)
    for s in range(n):
        for b in range(256):
            t = table[s, b]
            if t >= 0:
                degree[t + 1] += 1
    start = np.cumsum(degree)
    fill = start[:-1].copy()
    sources = np.empty(start[-1], dtype=np.int32)
    for s in range(n):
        for b in range(256):
            t = table[s, b]
            if t >= 0:
                sources[fill[t]] = s
                fill[t] += 1
    live = accepting.copy()
    queue = np.empty(n, dtype=np.int64)
    top = 0
    for s in range(n):
        if live[s]:
            queue[top] = s
            top += 1
    head = 0
    while head < top:
        t = queue[head]
        head += 1
        for j in range(start[t], start[t + 1]):
            s = sources[j]
            if not live[s]:
                live[s] = True
                queue[top] = s
                top += 1
    if initial < 0 or not live[initial]:
        return np.empty(0, dtype=np.int64)
    seen = np.zeros(n, dtype=np.bool_)
    seen[initial] = True
    queue[0] = initial
    head, top = 0, 1
    while head < top:
        s = queue[head]
        head += 1
        for b in range(256):
            t = table[s, b]
            if t >= 0 and live[t] and not seen[t]:
                seen[t] = True
                queue[top] = t
                top += 1
    return queue[:top].copy()


@numba.njit(cache=True)
def refine_blocks(table, accepting, max_rounds):
    """Moore's partition refinement on a complete table ``[n + 1, C]`` (state ``n`` is the dead
    state, its own block): the coarsest blocks that agree on acceptance and on the blocks of
    their successors. Returns the block of every state (dead included), or an empty array when
    ``max_rounds`` rounds do not reach the fixpoint."""
    total, columns = table.shape
    blocks = np.empty(total, dtype=np.int64)
    for s in range(total - 1):
        blocks[s] = 1 if accepting[s] else 0
    blocks[total - 1] = 2
    count = 3
    bits = 1
    while (1 << bits) < 2 * total:
        bits += 1
    size = 1 << bits
    slots = np.full(size, -1, dtype=np.int64)
    new_blocks = np.empty(total, dtype=np.int64)
    for _ in range(max_rounds):
        slots[:] = -1
        new_count = 0
        for s in range(total):
            h = np.uint64(blocks[s]) * np.uint64(1099511628211)
            for c in range(columns):
                h = (h ^ np.uint64(blocks[table[s, c]])) * np.uint64(1099511628211)
            slot = np.int64(h & np.uint64(size - 1))
            while True:
                r = slots[slot]
                if r < 0:
                    slots[slot] = s
                    new_blocks[s] = new_count
                    new_count += 1
                    break
                same = blocks[r] == blocks[s]
                if same:
                    for c in range(columns):
                        if blocks[table[r, c]] != blocks[table[s, c]]:
                            same = False
                            break
                if same:
                    new_blocks[s] = new_blocks[r]
                    break
                slot = (slot + 1) & (size - 1)
        blocks[:] = new_blocks
        if new_count == count:
            return blocks
        count = new_count
    return np.empty(0, dtype=np.int64)
