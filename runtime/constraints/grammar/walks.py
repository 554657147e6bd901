"""Numba kernels: token bytes through (contextual lexer, LR parser stack), exactly.

A parser stack is a persistent linked list of nodes (``node_state[n]``, ``node_parent[n]``; the
root's parent is -1) plus, during a walk, an *overlay*: states pushed on top of a base node, in
``ov[:ov_len]``. The stack is ``chain(base) + ov[:ov_len]``. In *static* mode (``base = -1``)
only the overlay is known: it starts as ``[s]``, the top state of some unknown stack, and any
step that needs a state below it answers UNKNOWN — what decides whether a token's acceptance
depends on the rest of the stack ("context-dependent", checked per sequence at mask time) or
not (cached per (top state, lexer state) position).

Tables: ``action[s, t]`` (``>= 0`` shift, ``-1`` error, ``<= -2`` reduce by rule ``-a - 2``),
``goto[s, A]``, ``rule_len``, ``rule_lhs``; ``accept`` is the state whose goto on $END accepts;
``end`` is the $END column. Lexer: ``lex_trans[q, byte]`` (global states, -1 dead),
``lex_term[q]`` (the terminal a lexeme ending in ``q`` becomes, -1), ``emit_off``/``emit_terms``
(terminals a lexeme in ``q`` can still end as), ``lex_start[lexer]``, ``lexer_of[s]`` (-1: the
lexer is not known statically, Earley) and ``ignored[t]``.

The *packed* tuples ``lexer = (lex_trans, lex_term, emit_off, emit_terms, lex_start, lexer_of,
ignored)`` and ``parser = (action, goto, rule_len, rule_lhs, accept, end)`` keep signatures short.
"""

from __future__ import annotations

import numba
import numpy as np

ERROR, SHIFTED, UNKNOWN, OVERFLOW = 0, 1, 2, 3


@numba.njit(cache=True, inline="always")
def _top(ov, ov_len, base, node_state):  # pragma: no cover - compiled
    if ov_len > 0:
        return ov[ov_len - 1]
    if base >= 0:
        return node_state[base]
    return -1


@numba.njit(cache=True)
def feed(term, ov, ov_len, base, parser, node_state, node_parent):  # pragma: no cover - compiled
    """Feed one terminal (or $END): reduce as the table says, then shift (or accept on $END).
    Returns ``(status, ov_len, base)``; the overlay is modified in place."""
    action, goto, rule_len, rule_lhs, accept, end = parser
    while True:
        top = _top(ov, ov_len, base, node_state)
        if top < 0:
            return UNKNOWN, ov_len, base
        a = action[top, term]
        if a == -1:
            return ERROR, ov_len, base
        if a >= 0:
            if ov_len >= ov.shape[0]:
                return OVERFLOW, ov_len, base
            ov[ov_len] = a
            return SHIFTED, ov_len + 1, base
        rule = -a - 2
        for _ in range(rule_len[rule]):
            if ov_len > 0:
                ov_len -= 1
            elif base >= 0:
                base = node_parent[base]
            else:
                return UNKNOWN, ov_len, base
        top = _top(ov, ov_len, base, node_state)
        if top < 0:
            return UNKNOWN, ov_len, base
        target = goto[top, rule_lhs[rule]]
        if target < 0:
            return ERROR, ov_len, base
        if term == end and target == accept:
            return SHIFTED, ov_len, base
        if ov_len >= ov.shape[0]:
            return OVERFLOW, ov_len, base
        ov[ov_len] = target
        ov_len += 1


@numba.njit(cache=True)
def viable(q, ov, ov_len, base, scratch, lexer, parser, node_state, node_parent):  # pragma: no cover
    """Whether the lexeme in progress (lexer state ``q``) can still end as a terminal the stack
    accepts: SHIFTED (yes), ERROR (no) or UNKNOWN (depends on the unknown part of the stack)."""
    emit_off, emit_terms, ignored = lexer[2], lexer[3], lexer[6]
    unknown = False
    for k in range(emit_off[q], emit_off[q + 1]):
        term = emit_terms[k]
        if ignored[term]:
            return SHIFTED
        scratch[:ov_len] = ov[:ov_len]
        status, _, _ = feed(term, scratch, ov_len, base, parser, node_state, node_parent)
        if status == SHIFTED:
            return SHIFTED
        if status != ERROR:
            unknown = True
    return UNKNOWN if unknown else ERROR


@numba.njit(cache=True)
def can_end(q, fresh, ov, ov_len, base, lexer, parser, node_state, node_parent):  # pragma: no cover
    """Whether the text may end here: the lexeme in progress ends (or nothing was read, ``q ==
    fresh``) and the parser accepts $END. Modifies the overlay."""
    lex_term, ignored = lexer[1], lexer[6]
    if q != fresh:
        term = lex_term[q]
        if term < 0:
            return False
        if not ignored[term]:
            status, ov_len, base = feed(term, ov, ov_len, base, parser, node_state, node_parent)
            if status != SHIFTED:
                return False
    status, _, _ = feed(parser[5], ov, ov_len, base, parser, node_state, node_parent)
    return status == SHIFTED


@numba.njit(cache=True)
def walk_bytes(data, start, stop, q, ov, ov_len, base, lexer, parser, node_state,
               node_parent):  # pragma: no cover - compiled
    """Read ``data[start:stop]`` from lexer state ``q`` on the stack ``chain(base) + ov``.
    Returns ``(status, q, ov_len, base)``: SHIFTED when every byte was read, else the status of
    the failure (ERROR, or UNKNOWN/OVERFLOW when the stack below was needed/too deep)."""
    lex_trans, lex_term, lex_start, lexer_of, ignored = lexer[0], lexer[1], lexer[4], lexer[5], lexer[6]
    for k in range(start, stop):
        byte = data[k]
        nxt = lex_trans[q, byte]
        if nxt < 0:
            term = lex_term[q]
            if term < 0:
                return ERROR, q, ov_len, base
            if not ignored[term]:
                status, ov_len, base = feed(term, ov, ov_len, base, parser, node_state, node_parent)
                if status != SHIFTED:
                    return status, q, ov_len, base
            lexer_id = lexer_of[_top(ov, ov_len, base, node_state)]
            if lexer_id < 0:
                return UNKNOWN, q, ov_len, base
            nxt = lex_trans[lex_start[lexer_id], byte]
            if nxt < 0:
                return ERROR, q, ov_len, base
        q = nxt
    return SHIFTED, q, ov_len, base


@numba.njit(cache=True)
def check_token(data, start, stop, q, ov, ov_len, base, scratch, lexer, parser, node_state,
                node_parent):  # pragma: no cover - compiled
    """Whether the bytes keep the sequence (stack ``chain(base) + ov[:ov_len]``, lexer state
    ``q``) viable, on the full stack. Leaves the new overlay in ``ov``; returns ``(allowed, q,
    ov_len, base)``."""
    status, q, ov_len, base = walk_bytes(data, start, stop, q, ov, ov_len, base, lexer, parser,
                                         node_state, node_parent)
    if status == OVERFLOW:
        raise RuntimeError("grammar stack overlay overflow")
    if status != SHIFTED:
        return False, q, ov_len, base
    verdict = viable(q, ov, ov_len, base, scratch, lexer, parser, node_state, node_parent)
    if verdict == OVERFLOW:
        raise RuntimeError("grammar stack overlay overflow")
    return verdict == SHIFTED, q, ov_len, base


@numba.njit(cache=True, inline="always")
def _set_bit(row, token):  # pragma: no cover - compiled
    row[token >> 5] |= np.uint32(1) << np.uint32(token & 31)


@numba.njit(cache=True)
def _subtree_tokens(i, node_end, node_lo, num_sorted):  # pragma: no cover - compiled
    """The range of sorted-token positions in the subtree of trie node ``i``."""
    end = node_end[i]
    return node_lo[i], (node_lo[end] if end < node_end.shape[0] else num_sorted)


@numba.njit(cache=True)
def classify(s, q0, trie, lexer, parser, node_state, node_parent, row, cd, memo, ov_rows,
             scratch):  # pragma: no cover - compiled
    """The static part of the mask of position (top state ``s``, lexer state ``q0``): sets in
    ``row`` the tokens accepted whatever lies below ``s`` on the stack and writes to ``cd`` the
    context-dependent ones; returns their count. ``memo`` (int8 [Q], -1) caches the final
    verdict of tokens that stay in the first lexeme; ``ov_rows`` is [max_depth + 1, capacity]."""
    node_byte, node_depth, node_end, node_lo, node_hi, sorted_tokens = trie
    lex_trans, lex_term, lex_start, lexer_of, ignored = lexer[0], lexer[1], lexer[4], lexer[5], lexer[6]
    depth_max = ov_rows.shape[0]
    pq = np.empty(depth_max, np.int32)
    src = np.empty(depth_max, np.int32)
    olen = np.empty(depth_max, np.int32)
    pq[0] = q0
    src[0] = 0
    olen[0] = 1
    ov_rows[0, 0] = s
    count = 0
    n = node_byte.shape[0]
    i = 0
    while i < n:
        d = node_depth[i]
        byte = node_byte[i]
        parent_src = src[d - 1]
        q = lex_trans[pq[d - 1], byte]
        if q >= 0:
            src[d] = parent_src
        elif d == 1:  # the token ends the lexeme in progress: the mask adds these at runtime
            i = node_end[i]
            continue
        else:
            term = lex_term[pq[d - 1]]
            if term < 0:
                i = node_end[i]
                continue
            status = SHIFTED
            if ignored[term]:
                src[d] = parent_src
            else:
                length = olen[parent_src]
                ov_rows[d, :length] = ov_rows[parent_src, :length]
                status, length, _ = feed(term, ov_rows[d], length, -1, parser, node_state, node_parent)
                olen[d] = length
                src[d] = d
            if status == SHIFTED:
                lexer_id = lexer_of[ov_rows[src[d], olen[src[d]] - 1]]
                status = UNKNOWN if lexer_id < 0 else SHIFTED
            if status != SHIFTED:
                if status != ERROR:  # the stack below s decides: every token below is checked later
                    lo, hi = _subtree_tokens(i, node_end, node_lo, sorted_tokens.shape[0])
                    for k in range(lo, hi):
                        cd[count] = sorted_tokens[k]
                        count += 1
                i = node_end[i]
                continue
            q = lex_trans[lex_start[lexer_id], byte]
            if q < 0:
                i = node_end[i]
                continue
        pq[d] = q
        if node_hi[i] > node_lo[i]:
            here = src[d]
            if here == 0 and memo[q] >= 0:
                verdict = memo[q]
            else:
                verdict = viable(q, ov_rows[here], olen[here], -1, scratch, lexer, parser, node_state,
                                 node_parent)
                if here == 0:
                    memo[q] = verdict
            for k in range(node_lo[i], node_hi[i]):
                if verdict == SHIFTED:
                    _set_bit(row, sorted_tokens[k])
                elif verdict != ERROR:
                    cd[count] = sorted_tokens[k]
                    count += 1
        i += 1
    return count


@numba.njit(cache=True)
def _check_dependent(out_row, r, q_from, first_q, ov, ov_len, base, work, scratch, cd_start, cd_end,
                     cd_tokens, tokens, lexer, parser, node_state, node_parent):  # pragma: no cover
    """Check the context-dependent tokens of row ``r`` from (``chain(base) + ov``, ``q_from``);
    with ``first_q >= 0`` only those whose first byte ends a lexeme in state ``first_q``."""
    token_offsets, token_data = tokens
    lex_trans = lexer[0]
    for k in range(cd_start[r], cd_end[r]):
        token = cd_tokens[k]
        start = token_offsets[token]
        if first_q >= 0 and lex_trans[first_q, token_data[start]] >= 0:
            continue
        work[:ov_len] = ov[:ov_len]
        allowed, _, _, _ = check_token(token_data, start, token_offsets[token + 1], q_from, work, ov_len,
                                       base, scratch, lexer, parser, node_state, node_parent)
        if allowed:
            _set_bit(out_row, token)


@numba.njit(cache=True)
def fill_masks(states, stride, out, missing, store, first_dead, tokens, eos_ids, fresh, lexer, parser,
               node_state, node_parent, capacity):  # pragma: no cover - compiled
    """Mask rows of encoded states (``node * stride + q``, -1 dead) into ``out`` (uint32, zeroed).

    A row is the cached static row of the position (top state, q) with its context-dependent
    tokens checked on the real stack; when the lexeme in progress may end, plus the tokens whose
    first byte ends it: the row of the position after feeding its terminal (computed here on
    the real stack), restricted to first bytes that are dead in ``q`` (``first_dead``). EOS where
    the text may end. ``store = (row_of, rows, cd_start, cd_end, cd_tokens)``. A row whose cached
    parts are missing is left alone and ``(i, kind, key)`` written to ``missing``: kind 0 a
    position ``key = s * stride + q``, kind 1 the first-dead row of ``q = key``. Returns the count.
    """
    row_of, rows, cd_start, cd_end, cd_tokens = store
    dead_of, dead_rows = first_dead
    lex_term, lex_start, lexer_of, ignored = lexer[1], lexer[4], lexer[5], lexer[6]
    ov = np.empty(capacity, np.int32)
    work = np.empty(capacity, np.int32)
    scratch = np.empty(capacity, np.int32)
    missed = 0
    for i in range(states.shape[0]):
        state = states[i]
        if state < 0:
            continue
        node = state // stride
        q = state % stride
        s = node_state[node]
        r = row_of[s, q]
        if r < 0:
            missing[missed, 0], missing[missed, 1], missing[missed, 2] = i, 0, s * stride + q
            missed += 1
            continue
        r2, q2, length, base = -1, -1, 0, node
        term = lex_term[q] if q != fresh else -1
        if term >= 0:
            status = SHIFTED
            if not ignored[term]:
                status, length, base = feed(term, ov, 0, node, parser, node_state, node_parent)
            if status == SHIFTED:
                s2 = _top(ov, length, base, node_state)
                q2 = lex_start[lexer_of[s2]]
                r2 = row_of[s2, q2]
                if r2 < 0:
                    missing[missed, 0], missing[missed, 1], missing[missed, 2] = i, 0, s2 * stride + q2
                    missed += 1
                    continue
                if dead_of[q] < 0:
                    missing[missed, 0], missing[missed, 1], missing[missed, 2] = i, 1, q
                    missed += 1
                    continue
        out[i, :] = rows[r]
        _check_dependent(out[i], r, q, -1, ov, 0, node, work, scratch, cd_start, cd_end, cd_tokens,
                         tokens, lexer, parser, node_state, node_parent)
        if r2 >= 0:
            out[i, :] |= rows[r2] & dead_rows[dead_of[q]]
            _check_dependent(out[i], r2, q2, q, ov, length, base, work, scratch, cd_start, cd_end,
                             cd_tokens, tokens, lexer, parser, node_state, node_parent)
        if can_end(q, fresh, ov, 0, node, lexer, parser, node_state, node_parent):
            for token in eos_ids:
                _set_bit(out[i], token)
    return missed


@numba.njit(cache=True)
def completing_tokens(candidates, tokens, node, q, fresh, out, lexer, parser, node_state, node_parent,
                      capacity):  # pragma: no cover - compiled
    """Set in ``out`` the candidate tokens after which the text may end (for budgets)."""
    token_offsets, token_data = tokens
    ov = np.empty(capacity, np.int32)
    scratch = np.empty(capacity, np.int32)
    for token in candidates:
        allowed, q2, ov_len, base = check_token(token_data, token_offsets[token], token_offsets[token + 1],
                                                q, ov, 0, node, scratch, lexer, parser, node_state,
                                                node_parent)
        if allowed and can_end(q2, fresh, ov, ov_len, base, lexer, parser, node_state, node_parent):
            _set_bit(out, token)
