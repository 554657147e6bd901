"""Run-time masks: cached static rows plus context-dependent tokens checked on the real stack.

The store (:class:`~genweave.runtime.constraints.grammar.stores.RowStore`) gives, per position,
its static row, its context-dependent tokens ``cd[k] = (token, event, offset)`` and its events
(``ranges[r] = (cd_lo, cd_hi, event_lo, event_hi)``). :func:`fill_masks` evaluates each event
of a row once on the sequence's stack, then decides the tokens: an END token takes the verdict
of its event, a FEED token walks its bytes after ``offset`` from the stack the event produced.
"""

from __future__ import annotations

import numba
import numpy as np

from genweave.runtime.constraints.grammar.walks import (
    END_EVENT,
    EV_KIND,
    EV_LEN,
    EV_OV,
    EV_SYM,
    L_CAPACITY,
    L_EOS,
    L_FRESH,
    L_NEOS,
    L_NQ,
    L_STRIDE,
    OVERFLOW,
    SHIFTED,
    SUB_ACCEPT,
    SUB_CHILD,
    SUB_REJECT,
    SUB_WALK,
    _top,
    _walk_and_check,
    can_end,
    feed,
    i64,
    viable,
    views,
    walk_bytes,
)


@numba.njit(cache=True, inline="always")
def _set_bit(row, token):  # pragma: no cover - compiled
    row[token >> 5] |= np.uint32(1) << np.uint32(token & 31)


@numba.njit(cache=True)
def _evaluate(e, j, events, targets, ov0, len0, base0, ev, scratch, lexer, parser, node_state,
              node_parent):  # pragma: no cover - compiled
    """Evaluate event ``e`` (local slot ``j``) on the stack ``chain(base0) + ov0[:len0]`` plus its
    static overlay without the first state (the top of that stack): an END event's verdict, or
    a FEED event's result stack and the index of the state it shifted to among its targets."""
    ev_ov, ev_len, ev_base, ev_ok, ev_target = ev
    ev_ov[j, :len0] = ov0[:len0]
    n = len0
    for k in range(1, events[e, EV_LEN]):
        ev_ov[j, n] = events[e, EV_OV + k]
        n += 1
    if events[e, EV_KIND] == END_EVENT:
        verdict = viable(i64(events[e, EV_SYM]), ev_ov[j], i64(n), i64(base0), scratch, lexer, parser, node_state,
                         node_parent)
        ev_target[j] = -1
    else:
        verdict, n, base = feed(i64(events[e, EV_SYM]), ev_ov[j], i64(n), i64(base0), parser, node_state, node_parent)
        ev_len[j] = n
        ev_base[j] = base
        ev_target[j] = -1
        if verdict == SHIFTED:
            top = _top(ev_ov[j], n, base, node_state)
            for t in range(targets.shape[1]):
                if targets[e, t] == top:
                    ev_target[j] = t
    if verdict == OVERFLOW:
        raise RuntimeError("grammar stack overlay overflow")
    ev_ok[j] = verdict == SHIFTED


@numba.njit(cache=True)
def _dependent(out_row, r, first_q, dead, ov0, len0, base0, store, tokens, work, scratch, ev, lexer, parser,
               node_state, node_parent):  # pragma: no cover - compiled
    """Set the allowed context-dependent tokens of row ``r`` on the stack ``chain(base0) +
    ov0``; with ``first_q >= 0`` only tokens whose first byte (``cd[k, 3]``) ends a lexeme in
    state ``first_q`` (the packed ``dead`` row). Events with packed rows are evaluated first and
    their row ORed in; the others once, when a token first needs them."""
    token_offsets, token_data = tokens
    ranges, cd, events, targets, sub, event_row_of, event_rows = store
    ev_ov, ev_len, ev_base, ev_ok, ev_target = ev
    lex_trans, lex_start, lexer_of = lexer[0], lexer[4], lexer[5]
    cd_lo, cd_hi, ev_lo, ev_hi = ranges[r, 0], ranges[r, 1], ranges[r, 2], ranges[r, 3]
    if ev_lo == ev_hi:
        return
    ev_target[: ev_hi - ev_lo] = -2  # every event is evaluated on first use
    for e in range(ev_lo, ev_hi):
        if event_row_of[e, 0] < 0:
            continue
        j = e - ev_lo
        _evaluate(i64(e), i64(j), events, targets, ov0, i64(len0), i64(base0), ev, scratch, lexer, parser, node_state,
                  node_parent)
        slot = 0 if events[e, EV_KIND] == END_EVENT else ev_target[j]
        if ev_ok[j] and slot >= 0 and event_row_of[e, slot] >= 0:
            packed = event_rows[event_row_of[e, slot]]
            if first_q >= 0:
                for w in range(out_row.shape[0]):
                    out_row[w] |= packed[w] & dead[w]
            else:
                for w in range(out_row.shape[0]):
                    out_row[w] |= packed[w]
    for k in range(cd_lo, cd_hi):
        if first_q >= 0 and lex_trans[first_q, cd[k, 3]] >= 0:
            continue
        token = cd[k, 0]
        start = token_offsets[token]
        e = cd[k, 1]
        j = e - ev_lo
        if ev_target[j] == -2:
            _evaluate(i64(e), i64(j), events, targets, ov0, i64(len0), i64(base0), ev, scratch, lexer, parser, node_state,
                      node_parent)
        if not ev_ok[j]:
            continue
        if events[e, EV_KIND] == END_EVENT:
            _set_bit(out_row, token)
            continue
        code = sub[k, ev_target[j]] if ev_target[j] >= 0 else SUB_WALK
        if code >= SUB_CHILD:
            child = ev_lo + code - SUB_CHILD
            c = child - ev_lo
            if ev_target[c] == -2:
                _evaluate(i64(child), i64(c), events, targets, ev_ov[j], i64(ev_len[j]), i64(ev_base[j]), ev, scratch, lexer, parser,
                          node_state, node_parent)
            code = SUB_ACCEPT if ev_ok[c] else SUB_REJECT
        if code == SUB_ACCEPT:
            _set_bit(out_row, token)
        if code != SUB_WALK:
            continue
        n = ev_len[j]
        work[:n] = ev_ov[j, :n]
        base = ev_base[j]
        q = lex_start[lexer_of[_top(work, n, base, node_state)]]
        allowed, _, _, _ = _walk_and_check(token_data, i64(start + cd[k, 2]), i64(token_offsets[token + 1]), i64(q), work,
                                           i64(n), i64(base), scratch, lexer, parser, node_state, node_parent)
        if allowed:
            _set_bit(out_row, token)


@numba.njit(cache=True, nogil=True)
def fill_masks(states, out, missing, tab, lay, nodes, row_of, rows, ranges, cd, events, targets, sub,
               event_row_of, event_rows, dead_of, dead_rows, tokens, max_events):  # pragma: no cover - compiled
    """Mask rows of encoded states (``node * stride + q``, -1 dead) into ``out`` (uint32, zeroed).

    A row is the cached static row of the position (top state, q) with its context-dependent
    tokens checked on the real stack; when the lexeme in progress may end, plus the tokens whose
    first byte ends it: those of the position after feeding its terminal (computed here on the
    real stack), restricted to first bytes dead in ``q`` (the row ``dead_rows[dead_of[q]]``).
    EOS where the text may end. A row whose cached parts are missing is left alone and
    ``(i, kind, key)`` written to ``missing``: kind 0 a position ``key = s * stride + q``, kind 1
    the first-dead row of ``q = key``. Returns how many.
    """
    lexer, parser = views(tab, lay)
    node_state, node_parent = nodes[:, 0], nodes[:, 1]
    lex_term, lex_start, lexer_of, ignored = lexer[1], lexer[4], lexer[5], lexer[6]
    stride, fresh, capacity = lay[L_STRIDE], lay[L_FRESH], lay[L_CAPACITY]
    eos_ids = tab[lay[L_EOS]:lay[L_EOS] + lay[L_NEOS]]
    ov = np.empty(capacity, np.int32)
    work = np.empty(capacity, np.int32)
    scratch = np.empty(capacity, np.int32)
    ev_ov = np.empty((max(max_events, 1), capacity), np.int32)
    ev_ok = np.empty(max(max_events, 1), np.bool_)
    ev = (ev_ov, np.empty(max(max_events, 1), np.int32), np.empty(max(max_events, 1), np.int32), ev_ok,
          np.empty(max(max_events, 1), np.int32))
    store = (ranges, cd, events, targets, sub, event_row_of, event_rows)
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
                status, length, base = feed(i64(term), ov, i64(0), i64(node), parser, node_state, node_parent)
            if status == SHIFTED:
                s2 = _top(ov, length, base, node_state)
                q2 = lex_start[lexer_of[s2]]
                r2 = row_of[s2, q2]
                if r2 < 0 or dead_of[q] < 0:
                    missing[missed, 0] = i
                    missing[missed, 1] = 0 if r2 < 0 else 1
                    missing[missed, 2] = s2 * stride + q2 if r2 < 0 else q
                    missed += 1
                    continue
        out[i, :] = rows[r]
        _dependent(out[i], i64(r), i64(-1), rows[r], ov, i64(0), i64(node), store, tokens, work, scratch, ev, lexer, parser,
                   node_state, node_parent)
        if r2 >= 0:
            dead = dead_rows[dead_of[q]]
            for w in range(out.shape[1]):
                out[i, w] |= rows[r2, w] & dead[w]
            _dependent(out[i], i64(r2), i64(q), dead, ov, i64(length), i64(base), store, tokens, work, scratch, ev, lexer, parser,
                       node_state, node_parent)
        if can_end(i64(q), i64(fresh), ov, i64(0), i64(node), lexer, parser, node_state, node_parent):
            for token in eos_ids:
                _set_bit(out[i], token)
    return missed


@numba.njit(cache=True)
def completing_tokens(candidates, tokens, node, q, out, tab, lay, nodes):  # pragma: no cover - compiled
    """Set in ``out`` the candidate tokens after which the text may end (for token budgets).
    Tokens that stay in the lexeme in progress leave the stack as it is, so their verdict depends
    only on the lexer state they reach: it is computed once per such state."""
    lexer, parser = views(tab, lay)
    node_state, node_parent = nodes[:, 0], nodes[:, 1]
    token_offsets, token_data = tokens
    fresh = lay[L_FRESH]
    ov = np.empty(lay[L_CAPACITY], np.int32)
    scratch = np.empty(lay[L_CAPACITY], np.int32)
    memo = np.full(lay[L_NQ], -1, np.int8)
    for token in candidates:
        status, q2, n, base = walk_bytes(token_data, i64(token_offsets[token]), i64(token_offsets[token + 1]), i64(q), ov,
                                         i64(0), i64(node),
                                         lexer, parser, node_state, node_parent)
        if status == OVERFLOW:
            raise RuntimeError("grammar stack overlay overflow")
        if status != SHIFTED:
            continue
        if n == 0 and base == node:  # the stack is untouched
            if memo[q2] < 0:
                memo[q2] = (viable(i64(q2), ov, i64(0), i64(node), scratch, lexer, parser, node_state, node_parent) == SHIFTED
                            and can_end(i64(q2), i64(fresh), ov, i64(0), i64(node), lexer, parser, node_state, node_parent))
            done = memo[q2] == 1
        else:
            done = (viable(i64(q2), ov, i64(n), i64(base), scratch, lexer, parser, node_state, node_parent) == SHIFTED
                    and can_end(i64(q2), i64(fresh), ov, i64(n), i64(base), lexer, parser, node_state, node_parent))
        if done:
            _set_bit(out, token)
