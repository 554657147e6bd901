"""Anchors anywhere in a regex (``^``, ``$``, ``\\A``, ``\\Z``), compiled exactly.

An anchor is a zero-width test of the position it stands at: ``^``/``\\A`` at the start of the
text; ``\\Z`` at its end; ``$`` at the end or (Python, not ECMA-262) before a final ``\\n``.
Each depends only on the characters just before and just after it, so:

1. every anchor becomes a *marker*, a private character no class of the pattern matches
   (:func:`mark_anchors`), and interegular builds the automaton of the marked pattern;
2. :func:`resolve_markers` reads markers as epsilon moves that test the class of the previous
   character (kept in the state) and constrain the class of the next one (an obligation kept in
   the state until the next character or the end), and determinises the result.

A text is accepted iff some path through the marked pattern places every marker at a position
that satisfies it, which is what matching means for a zero-width assertion.

>>> from genweave.runtime.constraints.regex import regex_dfa
>>> dfa = regex_dfa(r"a(?:$|,)b?")
>>> [dfa.accepts(t) for t in (b"a", b"a,", b"a,b", b"ab")]
[True, True, True, False]
"""

from __future__ import annotations

from dataclasses import replace

from interegular import patterns
from interegular.fsm import FSM, Alphabet, anything_else
from interegular.patterns import REFlags

from genweave.dsl.errors import GenCheckError

BEGIN, END, END_STRICT = range(3)
MARKERS = {kind: chr(0x10FFF0 + kind) for kind in range(3)}  # private use, plane 16
_KIND_OF = {char: kind for kind, char in MARKERS.items()}

# The class of the next character: the end of the text, a final newline, another newline,
# anything else. An obligation is a bit set of the classes allowed next.
NEXT_END, NEXT_FINAL_NL, NEXT_NL, NEXT_OTHER = (1 << i for i in range(4))
ANY_NEXT = 0b1111
# The class of the previous character (a word-boundary test would add "word").
PREV_START, PREV_NL, PREV_OTHER = range(3)


def mark_anchors(pattern: str, *, ecma: bool) -> str:
    """``pattern`` with every anchor outside a character class replaced by its marker (``$``:
    :data:`END_STRICT` under ECMA-262 semantics, :data:`END` under Python's)."""
    if any(char in pattern for char in _KIND_OF):
        raise GenCheckError(f"regex {pattern!r} contains a reserved character (U+10FFF0..U+10FFF2)",
                            hint="remove these private-use characters from the pattern")
    escapes = {"A": BEGIN, "Z": END_STRICT}
    plain = {"^": BEGIN, "$": END_STRICT if ecma else END}
    out = []
    for _, piece, kind in regex_pieces(pattern):
        if kind == "escape" and piece[1:] in escapes:
            piece = MARKERS[escapes[piece[1:]]]
        elif kind == "char" and piece in plain:
            piece = MARKERS[plain[piece]]
        out.append(piece)
    return "".join(out)


def regex_pieces(pattern: str):
    """Yield ``(index, piece, kind)`` covering ``pattern`` in order: ``"escape"`` (a backslash and
    the character after it, outside a class), ``"open"`` (a class's ``[`` with ``^`` and a leading
    ``]``, which is a literal), ``"class"`` (a character or escape inside a class, its closing
    ``]`` included) and ``"char"`` (any other single character)."""
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            piece, kind = pattern[i:i + 2], "class" if in_class else "escape"
        elif in_class:
            piece, kind = char, "class"
            in_class = char != "]"
        elif char == "[":
            lead = 2 if pattern[i + 1:i + 3] == "^]" else 1 if pattern[i + 1:i + 2] == "]" else 0
            piece, kind, in_class = pattern[i:i + 1 + lead], "open", True
        else:
            piece, kind = char, "char"
        yield i, piece, kind
        i += len(piece)


def seal_classes(node, dotall: bool = False):
    """The interegular tree with the markers taken out of every class but their own literals
    (``.``, ``[^,]``, ``\\S`` would otherwise read a marker as a character)."""
    markers = frozenset(MARKERS.values())
    if node is patterns._DOT:
        return patterns._CharGroup(markers | (frozenset() if dotall else frozenset("\n")), True)
    if isinstance(node, patterns._CharGroup):
        if len(node.chars) == 1 and node.chars <= markers and not node.negated:
            return node
        return replace(node, chars=node.chars | markers if node.negated else node.chars - markers)
    if isinstance(node, patterns.Pattern):
        if node.added_flags & REFlags.SINGLE_LINE:
            dotall = True
        if node.removed_flags & REFlags.SINGLE_LINE:
            dotall = False
        return replace(node, options=tuple(seal_classes(o, dotall) for o in node.options))
    if isinstance(node, patterns._Concatenation):
        return replace(node, parts=tuple(seal_classes(p, dotall) for p in node.parts))
    if isinstance(node, patterns._Repeated):
        return replace(node, base=seal_classes(node.base, dotall))
    return node


def marked_fsm(tree: patterns.Pattern) -> FSM:
    """The character DFA of a sealed, marked tree, over an alphabet in which newline, other
    characters and each marker never share a symbol."""
    kinds = Alphabet.from_groups({"\n"}, *({m} for m in MARKERS.values()), {anything_else})
    alphabet, _ = Alphabet.union(tree.get_alphabet(REFlags(0)), kinds)
    return tree.to_fsm(alphabet)


def resolve_markers(fsm: FSM) -> FSM:
    """The DFA of the texts some marked path of ``fsm`` accepts with every marker satisfied."""
    roles = _symbol_roles(fsm.alphabet)
    closure_of = _Closures(fsm, roles)
    start = closure_of(frozenset({(fsm.initial, PREV_START, ANY_NEXT)}))
    ids, todo, table, finals = {start: 0}, [start], {}, set()
    while todo:
        current = todo.pop()
        here = ids[current]
        if any(q in fsm.finals and pending & NEXT_END for q, _, pending in current):
            finals.add(here)
        row = {}
        for key, role in roles.items():
            if role in _KIND_OF.values():
                continue
            moved = frozenset(s for q, prev, pending in current for s in _read(fsm, q, pending, key, role))
            if not moved:
                continue
            target = closure_of(moved)
            if target not in ids:
                ids[target] = len(ids)
                todo.append(target)
            row[key] = ids[target]
        table[here] = row
    return FSM(alphabet=fsm.alphabet, states=set(ids.values()), initial=0, finals=finals, map=table)


def _symbol_roles(alphabet: Alphabet) -> dict:
    """Per transition key: a marker kind, or the class ``"nl"`` or ``"other"``."""
    roles = {}
    for key, symbols in alphabet.by_transition.items():
        named = set(symbols) - {anything_else}
        if len(named) == 1 and next(iter(named)) in _KIND_OF:
            roles[key] = _KIND_OF[next(iter(named))]
        elif named == {"\n"}:
            roles[key] = "nl"
        elif not named & ({"\n"} | set(_KIND_OF)):
            roles[key] = "other"
        else:  # the alphabet refinement of marked_fsm rules this out
            raise AssertionError(f"alphabet symbol mixes character classes: {sorted(named)[:5]}")
    return roles


def _read(fsm: FSM, q, pending: int, key, role: str):
    """The NFA states after reading one character of class ``role`` from (q, _, pending)."""
    target = fsm.map.get(q, {}).get(key)
    if target is None:
        return
    if role == "other" and pending & NEXT_OTHER:
        yield target, PREV_OTHER, ANY_NEXT
    elif role == "nl":
        final, more = pending & NEXT_FINAL_NL, pending & NEXT_NL
        if final and more:
            yield target, PREV_NL, ANY_NEXT
        elif final:
            yield target, PREV_NL, NEXT_END
        elif more:
            yield target, PREV_NL, ANY_NEXT & ~NEXT_END


def allowed_next(kind: int, prev: int) -> int:
    """The classes a marker of ``kind`` allows next, after a character of class ``prev``
    (0: the marker fails here)."""
    if kind == BEGIN:
        return ANY_NEXT if prev == PREV_START else 0
    return NEXT_END | NEXT_FINAL_NL if kind == END else NEXT_END


class _Closures:
    """Epsilon closures over marker moves, memoised per set of NFA states."""

    def __init__(self, fsm: FSM, roles: dict):
        self.fsm = fsm
        self.markers = [(key, role) for key, role in roles.items() if role in _KIND_OF.values()]
        self.memo: dict[frozenset, frozenset] = {}

    def __call__(self, states: frozenset) -> frozenset:
        found = self.memo.get(states)
        if found is not None:
            return found
        seen, stack = set(states), list(states)
        while stack:
            q, prev, pending = stack.pop()
            for key, kind in self.markers:
                target = self.fsm.map.get(q, {}).get(key)
                narrowed = pending & allowed_next(kind, prev)
                if target is not None and narrowed and (target, prev, narrowed) not in seen:
                    seen.add((target, prev, narrowed))
                    stack.append((target, prev, narrowed))
        result = frozenset(seen)
        self.memo[states] = result
        return result
