"""Regular expressions -> byte-level DFAs.

Semantics: a constraint ``regex(p)`` accepts exactly the strings ``s`` with
``re.fullmatch(p, s, re.ASCII)`` (so ``\\d``, ``\\w``, ``\\s`` are ASCII classes, ``.`` excludes
``\\n`` unless ``(?s)``), encoded as UTF-8. Anchors may stand anywhere and mean what ``re`` says:
``^``/``\\A`` the start, ``\\Z`` the end, ``$`` the end or before a final newline (only the end
with ``ecma=True``, as ECMA-262 says), compiled exactly (see
:mod:`genweave.runtime.constraints.regex_anchors`). Features that no finite automaton can express,
or that interegular does not implement, raise :class:`GenCheckError` naming the feature:
backreferences, lookarounds, conditionals, word boundaries, multiline anchors ``(?m)``, atomic
groups, possessive quantifiers, verbose mode. Case-insensitive matching (``(?i)``) folds with
``str.lower``/``str.upper`` per character (also outside ASCII).

>>> dfa = regex_dfa(r"^[0-9]{2}-é$")
>>> dfa.accepts("12-é".encode()), dfa.accepts(b"12-e")
(True, False)
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parse

import interegular

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints import regex_anchors
from genweave.runtime.constraints.alphabet import compress_alphabet
from genweave.runtime.constraints.byte_dfa import ByteDFA
from genweave.runtime.constraints.utf8 import char_fsm_to_bytes

BUILTIN_PATTERNS = {
    "int": r"-?(0|[1-9][0-9]*)",
    "float": r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?",
    "bool": r"true|false",
}

_HINT = "constraints must be regular languages: rewrite the pattern without it"

_UNSUPPORTED_OPS = {
    sre.GROUPREF: "backreference (\\1, (?P=name))",
    sre.GROUPREF_EXISTS: "conditional group (?(id)yes|no)",
    sre.ATOMIC_GROUP: "atomic group (?>...)",
    sre.POSSESSIVE_REPEAT: "possessive quantifier (*+, ++, ?+, {m,n}+)",
}

_ANCHORS = {  # ^ $ \\A \\Z are compiled (regex_anchors)
    sre.AT_BOUNDARY: "word boundary \\b",
    sre.AT_NON_BOUNDARY: "non-boundary \\B",
}
_MULTILINE = "anchor ^ or $ in multiline mode (?m)"


def regex_dfa(pattern: str, *, ecma: bool = False) -> ByteDFA:
    """The minimal byte DFA of ``pattern`` (see the module docstring for the exact semantics;
    ``ecma``: ``$`` matches only at the end of the text)."""
    body = strip_edge_anchors(pattern)
    tree = _parse_python(body, pattern)
    feature = unsupported_feature(tree)
    if feature is None and tree.state.flags & re.MULTILINE and has_anchors(tree):
        feature = _MULTILINE
    if feature is not None:
        raise GenCheckError(f"regex {pattern!r} uses an unsupported feature: {feature}", hint=_HINT)
    if tree.state.flags & re.VERBOSE:
        raise GenCheckError(f"regex {pattern!r} uses verbose mode (?x), which is not supported",
                            hint="write the pattern without (?x): remove whitespace and comments")
    anchored = has_anchors(tree)
    try:
        tree, atoms = compress_alphabet(interegular_pattern(body, anchored=anchored, ecma=ecma))
        fsm = regex_anchors.resolve_markers(regex_anchors.marked_fsm(tree)) if anchored else tree.to_fsm()
    except (interegular.Unsupported, interegular.InvalidSyntax, ValueError) as error:
        raise GenCheckError(f"regex {pattern!r} cannot be compiled to an automaton: {error}",
                            hint=_HINT) from None
    return char_fsm_to_bytes(fsm, atoms)


def interegular_pattern(body: str, *, anchored: bool = True, ecma: bool = False) -> interegular.patterns.Pattern:
    """interegular's tree of a pattern (without edge anchors) whose features Python's parser
    accepted: ``\\uXXXX`` escapes rewritten and, when ``anchored``, anchors as markers
    (:mod:`~genweave.runtime.constraints.regex_anchors`). Raises interegular's errors."""
    text = _escape_code_points(body)
    if anchored:
        text = regex_anchors.mark_anchors(text, ecma=ecma)
    parsed = interegular.parse_pattern(text)
    return regex_anchors.seal_classes(parsed) if anchored else parsed


def strip_edge_anchors(pattern: str) -> str:
    """``pattern`` without a leading ``^``/``\\A`` and a trailing unescaped ``$``/``\\Z``.

    Under full-match semantics these only assert what already holds: the leading one sits at the
    start of the first alternative, the trailing one at the end of the last.
    """
    if pattern.startswith("^"):
        pattern = pattern[1:]
    elif pattern.startswith("\\A"):
        pattern = pattern[2:]
    for anchor in ("$", "\\Z"):
        if pattern.endswith(anchor):
            body = pattern[: -len(anchor)]
            backslashes = len(body) - len(body.rstrip("\\"))
            if backslashes % 2 == 0:
                return body
    return pattern


def _parse_python(body: str, pattern: str) -> sre_parse.SubPattern:
    try:
        return sre_parse.parse(body, re.ASCII)
    except (re.error, OverflowError, RecursionError) as error:
        raise GenCheckError(f"invalid regex {pattern!r}: {error}",
                            hint="fix the pattern; it must be valid for Python's re module") from None


def unsupported_feature(tree: sre_parse.SubPattern) -> str | None:
    """The first feature of a parsed pattern that no DFA can express here, or None."""
    for op, av in tree.data:
        if op in _UNSUPPORTED_OPS:
            return _UNSUPPORTED_OPS[op]
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            direction, sub = av
            kind = "lookahead" if direction == 1 else "lookbehind"
            return f"{'negative ' if op == sre.ASSERT_NOT else ''}{kind} assertion"
        if op == sre.AT and av in _ANCHORS:
            return _ANCHORS[av]
        if op == sre.SUBPATTERN and av[1] & re.MULTILINE and has_anchors(av[3]):
            return _MULTILINE
        for sub in _children(op, av):
            found = unsupported_feature(sub)
            if found is not None:
                return found
    return None


def has_anchors(tree: sre_parse.SubPattern) -> bool:
    """Whether a parsed pattern has a zero-width position test (``^ $ \\A \\Z``)."""
    return any(op == sre.AT or any(has_anchors(sub) for sub in _children(op, av)) for op, av in tree.data)


def _children(op, av) -> list[sre_parse.SubPattern]:
    if op == sre.BRANCH:
        return list(av[1])
    if op == sre.SUBPATTERN:
        return [av[3]]
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        return [av[2]]
    return []


_CODE_POINT_ESCAPE = re.compile(r"\\(\\|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")


def _escape_code_points(pattern: str) -> str:
    """Rewrite ``\\uXXXX`` and ``\\UXXXXXXXX`` (unknown to interegular) as ``\\xNN`` or the
    character itself; non-ASCII characters are never regex syntax, so this keeps the meaning."""

    def rewrite(match: re.Match) -> str:
        escape = match.group(1)
        if escape == "\\":
            return "\\\\"
        code = int(escape[1:], 16)
        return f"\\x{code:02x}" if code < 0x100 else chr(code)

    return _CODE_POINT_ESCAPE.sub(rewrite, pattern)
