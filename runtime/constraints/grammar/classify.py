"""The static part of a position's mask: one numba walk of the token trie per position.

A position is (top parser state ``s``, lexer state ``q``). The walk reads every token's bytes
from it with the stack known only as ``[s]`` (static mode of
:mod:`~genweave.runtime.constraints.grammar.walks`), sharing prefixes and cutting dead subtrees.
Each token is *accepted* (its fate does not depend on the stack below ``s``), rejected, or
*context-dependent*: then it is recorded with the event at which the unknown stack is first
needed (see the ``walks`` module) and the byte offset where its walk resumes after a FEED event.

A FEED event's shift lands in one of the few states its terminal shifts to; for each such
*target* the rest of each token is classified again with the stack known as ``[target]``
(``sub``): accepted, rejected, decided by a *child* END event evaluated on the stack the FEED
event produced (``]}`` after a value: the ``}`` needs the stack below the array), or left to a
run-time walk. So at run time most FEED tokens need only their events, not a walk.

Tokens whose first byte ends the lexeme in progress are left out: the mask adds them at run
time from the position after that lexeme (so a finished ``}`` does not make the whole vocabulary
context-dependent).
"""

from __future__ import annotations

import numba
import numpy as np

from genweave.runtime.constraints.grammar.walks import (
    END_EVENT,
    ERROR,
    EV_KIND,
    EV_LEN,
    EV_OV,
    EV_PARENT,
    EV_SYM,
    FEED_EVENT,
    SHIFTED,
    SUB_ACCEPT,
    SUB_CHILD,
    SUB_REJECT,
    SUB_WALK,
    UNKNOWN,
    feed,
    i64,
    viable,
    views,
    walk_bytes,
)


@numba.njit(cache=True)
def _event(events, count, kind, sym, parent, ov, length):  # pragma: no cover - compiled
    """The index of event (kind, sym, parent, ov[:length]) in ``events[:count]``, appended if new
    (then its index is ``count``); -1 if the table is full."""
    if length > events.shape[1] - EV_OV:
        return -1
    for e in range(count):
        if (events[e, EV_KIND] == kind and events[e, EV_SYM] == sym and events[e, EV_PARENT] == parent
                and events[e, EV_LEN] == length):
            same = True
            for k in range(length):
                if events[e, EV_OV + k] != ov[k]:
                    same = False
                    break
            if same:
                return e
    if count == events.shape[0]:
        return -1
    events[count, EV_KIND] = kind
    events[count, EV_SYM] = sym
    events[count, EV_PARENT] = parent
    events[count, EV_LEN] = length
    events[count, EV_OV:EV_OV + length] = ov[:length]
    return count


@numba.njit(cache=True)
def _targets(action, term, out):  # pragma: no cover - compiled
    """The distinct states ``term`` shifts to, into ``out`` (-1 padded); False if more than fit."""
    out[:] = -1
    count = 0
    for state in range(action.shape[0]):
        target = action[state, term]
        if target < 0:
            continue
        known = False
        for k in range(count):
            if out[k] == target:
                known = True
        if not known:
            if count == out.shape[0]:
                out[:] = -1
                return False
            out[count] = target
            count += 1
    return True


@numba.njit(cache=True)
def _sub_verdicts(count, num_events, cd, events, targets, sub, tokens, ov, scratch, lexer, parser,
                  node_state, node_parent):  # pragma: no cover - compiled
    """For every FEED token and every target of its event: what the token's remaining bytes do
    on the stack ``[target]``: SUB_REJECT, SUB_ACCEPT, SUB_CHILD + e when only the final check
    needs the stack below (a child END event ``e`` of the FEED event), else SUB_WALK. Returns
    the new event count (-1 when the table is full)."""
    token_offsets, token_data = tokens
    lex_start, lexer_of = lexer[4], lexer[5]
    for e in range(num_events):
        if events[e, EV_KIND] == FEED_EVENT:
            _targets(parser[0], events[e, EV_SYM], targets[e])
    for k in range(count):
        e = cd[k, 1]
        sub[k, :] = SUB_WALK
        if events[e, EV_KIND] != FEED_EVENT:
            continue
        token = cd[k, 0]
        for j in range(targets.shape[1]):
            target = targets[e, j]
            if target < 0 or lexer_of[target] < 0:
                break
            ov[0] = target
            status, q, length, _ = walk_bytes(token_data, i64(token_offsets[token] + cd[k, 2]),
                                              i64(token_offsets[token + 1]), i64(lex_start[lexer_of[target]]), ov,
                                              i64(1), i64(-1), lexer, parser, node_state, node_parent)
            if status == ERROR:
                sub[k, j] = SUB_REJECT
            elif status == SHIFTED:
                verdict = viable(i64(q), ov, i64(length), i64(-1), scratch, lexer, parser, node_state, node_parent)
                if verdict == SHIFTED:
                    sub[k, j] = SUB_ACCEPT
                elif verdict == ERROR:
                    sub[k, j] = SUB_REJECT
                elif verdict == UNKNOWN:
                    child = _event(events, i64(num_events), i64(END_EVENT), i64(q), i64(e), ov, i64(length))
                    if child < 0 or child + SUB_CHILD > 32767:
                        return -1
                    num_events = max(num_events, child + 1)
                    sub[k, j] = SUB_CHILD + child
    return num_events


@numba.njit(cache=True, nogil=True)
def classify(s, q0, trie, tokens, tab, lay, nodes, row, cd, events, targets, sub, ov_rows,
             scratch):  # pragma: no cover
    """Fill ``row`` (uint32, zeroed) with the accepted tokens of position (``s``, ``q0``), ``cd``
    (int32 [V, 4]) with (token, event, resume offset or -1, first byte), ``events`` (int32 [E, EV_OV + C],
    columns in ``walks``), ``targets`` (int32 [E, T]: a FEED event's shift targets) and ``sub``
    (int16 [V, T]: what FEED tokens do after each target). Returns ``(tokens, events)`` counts,
    or events -1 when the event table is full (call again with a larger one). ``ov_rows`` is
    [max_depth + 1, C]."""
    node_byte, node_depth, node_end, node_lo, node_hi, sorted_tokens = trie
    lexer, parser = views(tab, lay)
    lex_trans, lex_term, lex_start, lexer_of, ignored = lexer[0], lexer[1], lexer[4], lexer[5], lexer[6]
    node_state, node_parent = nodes[:, 0], nodes[:, 1]
    depth_max = ov_rows.shape[0]
    pq = np.empty(depth_max, np.int32)
    src = np.empty(depth_max, np.int32)
    olen = np.empty(depth_max, np.int32)
    memo = np.full(lex_trans.shape[0], -2, np.int32)  # end verdicts without a boundary: -1 no, >= 0 event
    pq[0] = q0
    src[0] = 0
    olen[0] = 1
    ov_rows[0, 0] = s
    count = 0
    num_events = 0
    n = node_byte.shape[0]
    num_sorted = sorted_tokens.shape[0]
    first_byte = 0
    i = 0
    while i < n:
        d = node_depth[i]
        byte = node_byte[i]
        if d == 1:
            first_byte = byte
        parent_src = src[d - 1]
        q = lex_trans[pq[d - 1], byte]
        if q >= 0:
            src[d] = parent_src
        elif d == 1:  # the token ends the lexeme in progress: the mask adds these at run time
            i = node_end[i]
            continue
        else:
            term = lex_term[pq[d - 1]]
            if term < 0:
                i = node_end[i]
                continue
            status = SHIFTED
            src[d] = parent_src
            if not ignored[term]:
                length = olen[parent_src]
                ov_rows[d, :length] = ov_rows[parent_src, :length]
                status, length, _ = feed(i64(term), ov_rows[d], i64(length), i64(-1), parser, node_state, node_parent)
                olen[d] = length
                src[d] = d
            if status == SHIFTED and lexer_of[ov_rows[src[d], olen[src[d]] - 1]] < 0:
                status = UNKNOWN  # Earley: the next lexer is not known statically
            if status == ERROR:
                i = node_end[i]
                continue
            if status != SHIFTED:
                e = _event(events, i64(num_events), i64(FEED_EVENT), i64(term), i64(-1), ov_rows[parent_src], i64(olen[parent_src]))
                if e < 0:
                    return count, -1
                num_events = max(num_events, e + 1)
                end = node_end[i]
                for k in range(node_lo[i], node_lo[end] if end < n else num_sorted):
                    cd[count, 0], cd[count, 1], cd[count, 2] = sorted_tokens[k], e, d - 1
                    cd[count, 3] = first_byte
                    count += 1
                i = end
                continue
            q = lex_trans[lex_start[lexer_of[ov_rows[src[d], olen[src[d]] - 1]]], byte]
            if q < 0:
                i = node_end[i]
                continue
        pq[d] = q
        if node_hi[i] > node_lo[i]:
            here = src[d]
            outcome = memo[q] if here == 0 else -2
            if outcome == -2:
                verdict = viable(i64(q), ov_rows[here], i64(olen[here]), i64(-1), scratch, lexer, parser, node_state,
                                 node_parent)
                outcome = -1
                if verdict == SHIFTED:
                    outcome = events.shape[0]  # past every event index: "accepted"
                elif verdict != ERROR:
                    outcome = _event(events, i64(num_events), i64(END_EVENT), i64(q), i64(-1), ov_rows[here], i64(olen[here]))
                    if outcome < 0:
                        return count, -1
                    num_events = max(num_events, outcome + 1)
                if here == 0:
                    memo[q] = outcome
            for k in range(node_lo[i], node_hi[i]):
                if outcome >= events.shape[0]:
                    token = sorted_tokens[k]
                    row[token >> 5] |= np.uint32(1) << np.uint32(token & 31)
                elif outcome >= 0:
                    cd[count, 0], cd[count, 1], cd[count, 2] = sorted_tokens[k], outcome, -1
                    cd[count, 3] = first_byte
                    count += 1
        i += 1
    num_events = _sub_verdicts(count, num_events, cd, events, targets, sub, tokens, ov_rows[0], scratch, lexer,
                               parser, node_state, node_parent)
    return count, num_events
