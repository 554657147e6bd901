"""Numba kernels: token bytes through (contextual lexer, LR parser stack), exactly.

A parser stack is a persistent linked list of nodes (``nodes[n] = (state, parent)``; the root's
parent is -1) plus, during a walk, an *overlay*: states pushed on top of a base node, in
``ov[:ov_len]``. The stack is ``chain(base) + ov[:ov_len]``. In *static* mode (``base = -1``)
only the overlay is known: it starts as ``[s]``, the top state of some unknown stack, and any
step that needs a state below it answers UNKNOWN. That splits a position's tokens into those
whose fate is decided by ``s`` alone (cached rows) and *context-dependent* ones, which are
grouped by the *event* where the unknown part of the stack is first needed: feeding a terminal
at a lexeme boundary (FEED) or the final check of the lexeme in progress (END). At mask time
each event is evaluated once on the real stack; END tokens take its verdict, FEED tokens walk
their remaining bytes from the stack it produced.

All static tables live in one int32 array ``tab`` described by ``lay`` (see :func:`views`):
lexer ``lex_trans[q, byte]`` (global states, -1 dead), ``lex_term[q]`` (the terminal a lexeme
ending in ``q`` becomes, -1), ``emit_off``/``emit_terms`` (terminals a lexeme in ``q`` can
still end as), ``lex_start[lexer]``, ``lexer_of[s]`` (-1: not known statically), ``ignored[t]``;
parser ``action[s, t]`` (``>= 0`` shift, -1 error, ``<= -2`` reduce by rule ``-a - 2``),
``goto[s, A]``, ``rule_len``, ``rule_lhs``, ``accept`` (the state whose goto on $END accepts)
and ``end`` (the $END column).
"""

from __future__ import annotations

import numba
import numpy as np

# Scalars passed between kernels are int64 (``i64``): one compiled variant per kernel, not one
# per mix of int32/int64/literal arguments.
i64 = np.int64
ERROR, SHIFTED, UNKNOWN, OVERFLOW = 0, 1, 2, 3
END_EVENT, FEED_EVENT = 0, 1
# Columns of an event row: kind, symbol (lexer state of END, terminal of FEED), parent event
# (-1 for events on the position's stack), overlay length, overlay.
EV_KIND, EV_SYM, EV_PARENT, EV_LEN, EV_OV = 0, 1, 2, 3, 4
# Codes of ``sub[k, j]`` (a FEED token's rest after target j); codes >= SUB_CHILD name a child event.
SUB_REJECT, SUB_ACCEPT, SUB_WALK, SUB_CHILD = 0, 1, 2, 3

# Slots of ``lay``.
(L_NQ, L_TRANS, L_TERM, L_EMIT_OFF, L_EMIT, L_NEMIT, L_START, L_NLEX, L_LEXER_OF, L_NSTATES, L_IGNORED,
 L_NTERMS, L_ACTION, L_GOTO, L_NNT, L_RULE_LEN, L_NRULES, L_RULE_LHS, L_ACCEPT, L_END, L_FRESH, L_STRIDE,
 L_CAPACITY, L_EOS, L_NEOS, L_SIZE) = range(26)


def pack_tables(lexer: dict, parser: dict, scalars: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(tab, lay)`` from the named arrays of the module docstring and the scalars ``fresh``,
    ``stride``, ``capacity``, ``accept``, ``end`` and the array ``eos``."""
    parts, lay, offset = [], np.zeros(L_SIZE, dtype=np.int64), 0

    def put(slot, array):
        nonlocal offset
        flat = np.ascontiguousarray(array, dtype=np.int32).reshape(-1)
        lay[slot] = offset
        parts.append(flat)
        offset += flat.size

    put(L_TRANS, lexer["transitions"])
    put(L_TERM, lexer["terminal"])
    put(L_EMIT_OFF, lexer["emit_offsets"])
    put(L_EMIT, lexer["emit_terminals"])
    put(L_START, lexer["starts"])
    put(L_LEXER_OF, lexer["lexer_of"])
    put(L_IGNORED, lexer["ignored"])
    put(L_ACTION, parser["action"])
    put(L_GOTO, parser["goto"])
    put(L_RULE_LEN, parser["rule_len"])
    put(L_RULE_LHS, parser["rule_lhs"])
    put(L_EOS, scalars["eos"])
    lay[L_NQ] = lexer["transitions"].shape[0]
    lay[L_NEMIT], lay[L_NLEX] = len(lexer["emit_terminals"]), len(lexer["starts"])
    lay[L_NSTATES], lay[L_NTERMS] = parser["action"].shape[0], len(lexer["ignored"])
    lay[L_NNT], lay[L_NRULES] = parser["goto"].shape[1], len(parser["rule_len"])
    lay[L_NEOS] = len(scalars["eos"])
    for slot, name in ((L_ACCEPT, "accept"), (L_END, "end"), (L_FRESH, "fresh"), (L_STRIDE, "stride"),
                       (L_CAPACITY, "capacity")):
        lay[slot] = scalars[name]
    tab = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    return tab, lay


@numba.njit(cache=True)
def views(tab, lay):  # pragma: no cover - compiled
    """``(lexer, parser)`` tuples of views into ``tab``."""
    nq, nstates = lay[L_NQ], lay[L_NSTATES]
    lex_trans = tab[lay[L_TRANS]:lay[L_TRANS] + nq * 256].reshape((nq, 256))
    lex_term = tab[lay[L_TERM]:lay[L_TERM] + nq]
    emit_off = tab[lay[L_EMIT_OFF]:lay[L_EMIT_OFF] + nq + 1]
    emit_terms = tab[lay[L_EMIT]:lay[L_EMIT] + lay[L_NEMIT]]
    lex_start = tab[lay[L_START]:lay[L_START] + lay[L_NLEX]]
    lexer_of = tab[lay[L_LEXER_OF]:lay[L_LEXER_OF] + nstates]
    ignored = tab[lay[L_IGNORED]:lay[L_IGNORED] + lay[L_NTERMS]]
    width = lay[L_NTERMS] + 1
    action = tab[lay[L_ACTION]:lay[L_ACTION] + nstates * width].reshape((nstates, width))
    goto = tab[lay[L_GOTO]:lay[L_GOTO] + nstates * lay[L_NNT]].reshape((nstates, lay[L_NNT]))
    rule_len = tab[lay[L_RULE_LEN]:lay[L_RULE_LEN] + lay[L_NRULES]]
    rule_lhs = tab[lay[L_RULE_LHS]:lay[L_RULE_LHS] + lay[L_NRULES]]
    lexer = (lex_trans, lex_term, emit_off, emit_terms, lex_start, lexer_of, ignored)
    parser = (action, goto, rule_len, rule_lhs, np.int32(lay[L_ACCEPT]), np.int32(lay[L_END]))
    return lexer, parser


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
    accepts: SHIFTED (yes), ERROR (no), UNKNOWN/OVERFLOW (undecided here)."""
    emit_off, emit_terms, ignored = lexer[2], lexer[3], lexer[6]
    undecided = ERROR
    for k in range(emit_off[q], emit_off[q + 1]):
        term = emit_terms[k]
        if ignored[term]:
            return SHIFTED
        scratch[:ov_len] = ov[:ov_len]
        status, _, _ = feed(i64(term), scratch, i64(ov_len), i64(base), parser, node_state, node_parent)
        if status == SHIFTED:
            return SHIFTED
        if status != ERROR:
            undecided = status
    return undecided


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
            status, ov_len, base = feed(i64(term), ov, i64(ov_len), i64(base), parser, node_state, node_parent)
            if status != SHIFTED:
                return False
    status, _, _ = feed(i64(parser[5]), ov, i64(ov_len), i64(base), parser, node_state, node_parent)
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
                status, ov_len, base = feed(i64(term), ov, i64(ov_len), i64(base), parser, node_state, node_parent)
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
def _walk_and_check(data, start, stop, q, ov, ov_len, base, scratch, lexer, parser, node_state,
                    node_parent):  # pragma: no cover - compiled
    status, q, ov_len, base = walk_bytes(data, i64(start), i64(stop), i64(q), ov, i64(ov_len), i64(base), lexer, parser,
                                         node_state, node_parent)
    if status == OVERFLOW:
        raise RuntimeError("grammar stack overlay overflow")
    if status != SHIFTED:
        return False, q, ov_len, base
    verdict = viable(i64(q), ov, i64(ov_len), i64(base), scratch, lexer, parser, node_state, node_parent)
    if verdict == OVERFLOW:
        raise RuntimeError("grammar stack overlay overflow")
    return verdict == SHIFTED, q, ov_len, base


@numba.njit(cache=True)
def check_bytes(data, start, stop, node, q, ov, scratch, tab, lay, nodes):  # pragma: no cover
    """Whether ``data[start:stop]`` keeps the sequence (stack ``node``, lexer state ``q``)
    viable. Leaves the overlay pushed on the returned base in ``ov``; returns ``(allowed, q,
    ov_len, base)``."""
    lexer, parser = views(tab, lay)
    return _walk_and_check(data, i64(start), i64(stop), i64(q), ov, i64(0), i64(node), scratch, lexer, parser, nodes[:, 0],
                           nodes[:, 1])


@numba.njit(cache=True)
def is_complete(node, q, ov, tab, lay, nodes):  # pragma: no cover - compiled
    lexer, parser = views(tab, lay)
    return can_end(i64(q), i64(lay[L_FRESH]), ov, i64(0), i64(node), lexer, parser, nodes[:, 0], nodes[:, 1])
