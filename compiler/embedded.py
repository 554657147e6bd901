"""Check the languages embedded in ``.gen`` source: regular expressions and Lark grammars.

Each check returns problems as ``(message, start, end)`` with offsets into the embedded text, so
the checker can point into the string literal (:func:`genweave.dsl.strings.span_in_string`).
JSON Schemas are checked in :mod:`genweave.compiler.json_schema`.

>>> regex_problems(r"(a|b)+(?=c)")
[('regex uses an unsupported feature: lookahead assertion', 6, 9)]
>>> regex_problems(r"[a-z")[0][0]
'invalid regex: unterminated character set'
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parse
from functools import lru_cache

import interegular
from lark import Lark
from lark.exceptions import LarkError

from genweave.runtime.constraints.regex import (
    has_anchors,
    interegular_pattern,
    strip_edge_anchors,
    unsupported_feature,
)

Problem = tuple[str, int, int]

# Where each unsupported feature (as the runtime names it) shows in a pattern.
_FEATURE_SYNTAX = [
    ("lookahead", re.compile(r"\(\?[=!]")),
    ("lookbehind", re.compile(r"\(\?<[=!]")),
    ("atomic", re.compile(r"\(\?>")),
    ("conditional", re.compile(r"\(\?\(")),
    ("backreference", re.compile(r"\\[1-9]|\(\?P=")),
    ("boundary", re.compile(r"\\[bB]")),
    ("\\A", re.compile(r"\\A")),
    ("\\Z", re.compile(r"\\Z")),
    ("anchor", re.compile(r"[\^$]")),
    ("possessive", re.compile(r"[*+?}]\+")),
]


@lru_cache(maxsize=1024)
def regex_problems(pattern: str) -> list[Problem]:
    """What keeps ``pattern`` from being a hole's regular language (empty when nothing)."""
    body = strip_edge_anchors(pattern)
    shift = pattern.find(body) if body else 0
    try:
        tree = sre_parse.parse(body, re.ASCII)
    except re.error as err:
        at = shift + (err.pos if err.pos is not None else 0)
        return [(f"invalid regex: {err.msg}", at, at + 1)]
    except (OverflowError, RecursionError) as err:
        return [(f"invalid regex: {err}", 0, len(pattern))]
    feature = unsupported_feature(tree)
    if feature is not None:
        start, end = _locate(body, feature)
        return [(f"regex uses an unsupported feature: {feature}", shift + start, shift + end)]
    if tree.state.flags & re.VERBOSE:
        return [("regex uses verbose mode (?x), which is not supported", 0, len(pattern))]
    try:
        interegular_pattern(body, anchored=has_anchors(tree))
    except (interegular.Unsupported, interegular.InvalidSyntax, ValueError, RecursionError) as err:
        reason = str(err) or type(err).__name__
        return [(f"regex cannot be compiled to an automaton ({reason}); rewrite it in plain regular syntax",
                 0, len(pattern))]
    return []


def _locate(body: str, feature: str) -> tuple[int, int]:
    """The first place in ``body`` (outside classes and escapes) where ``feature`` is written."""
    masked = _mask_classes_and_escapes(body)
    for key, syntax in _FEATURE_SYNTAX:
        if key in feature:
            match = syntax.search(masked)
            if match is not None:
                return match.start(), match.end()
    return 0, len(body)


def _mask_classes_and_escapes(body: str) -> str:
    """``body`` with character classes blanked and escapes other than the anchor/back-reference
    ones blanked, so a feature's syntax is found only where it has its meaning."""
    out = list(body)
    i = 0
    while i < len(body):
        if body[i] == "\\":
            if i + 1 < len(body) and body[i + 1] not in "123456789bBAZ":
                out[i] = out[i + 1] = " "
            i += 2
        elif body[i] == "[":
            end = _class_end(body, i)
            for k in range(i, end):
                out[k] = " "
            i = end
        else:
            i += 1
    return "".join(out)


def _class_end(body: str, start: int) -> int:
    i = start + 1
    if i < len(body) and body[i] == "^":
        i += 1
    if i < len(body) and body[i] == "]":
        i += 1
    while i < len(body) and body[i] != "]":
        i += 2 if body[i] == "\\" else 1
    return min(i + 1, len(body))


@lru_cache(maxsize=1024)
def regex_is_finite(pattern: str) -> bool:
    """True when ``pattern`` (already checked) has no unbounded repetition: a finite language."""
    try:
        tree = sre_parse.parse(strip_edge_anchors(pattern), re.ASCII)
    except (re.error, OverflowError, RecursionError):
        return False
    return _finite(tree)


def _finite(tree) -> bool:
    for op, av in tree.data:
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            if av[1] == sre.MAXREPEAT or not _finite(av[2]):
                return False
        elif op == sre.BRANCH and not all(_finite(sub) for sub in av[1]):
            return False
        elif op == sre.SUBPATTERN and not _finite(av[3]):
            return False
    return True


# --- Lark grammars ------------------------------------------------------------------------------

_AT_LINE_COLUMN = re.compile(r"at line (\d+) column (\d+)")
_UNDEFINED = re.compile(r"Rule '([^']+)' used but not defined|Terminal '?([A-Z_0-9]+)'? .*not defined")


@lru_cache(maxsize=256)
def grammar_problems(text: str) -> list[Problem]:
    """What keeps ``text`` from being a Lark grammar with a ``start`` rule (empty when nothing)."""
    try:
        Lark(text, start="start", parser="earley")
    except LarkError as err:
        return [_grammar_problem(text, str(err))]
    except (re.error, RecursionError, ValueError) as err:
        return [(f"invalid Lark grammar: {err}", 0, len(text))]
    return []


def _grammar_problem(text: str, message: str) -> Problem:
    first = message.strip().splitlines()[0] if message.strip() else message
    if "undefined rule: NonTerminal('start')" in first:
        return ("the grammar has no `start` rule", 0, len(text))
    at = _AT_LINE_COLUMN.search(first)
    if at is not None:
        offset = _offset(text, int(at.group(1)), int(at.group(2)))
        first = _AT_LINE_COLUMN.sub("", first).replace(" in <string>", "").rstrip(": ,")
        return (f"invalid Lark grammar: {first}", offset, offset + 1)
    undefined = _UNDEFINED.search(first)
    if undefined is not None:
        name = undefined.group(1) or undefined.group(2)
        use = re.search(rf"(?<![\w\"/]){re.escape(name)}(?![\w\"/])", _after_colons(text))
        if use is not None:
            return (f"invalid Lark grammar: {first}", use.start(), use.end())
    return (f"invalid Lark grammar: {first}", 0, len(text))


def _after_colons(text: str) -> str:
    # Rule bodies only (definitions blanked), so an undefined name is found where it is used.
    return re.sub(r"(?m)^(\s*[?!]?[\w]+(\.\d+)?\s*:)", lambda m: " " * len(m.group(0)), text)


def _offset(text: str, line: int, column: int) -> int:
    lines = text.splitlines(keepends=True)
    return sum(len(x) for x in lines[:line - 1]) + column - 1
