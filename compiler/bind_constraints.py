"""Constraint IR -> the runtime's compiled constraints, for one model's vocabulary.

A hole's language combines its constraint, its ``stop`` string and its ``max N tokens``:

* no constraint, no stop: any text (only special tokens are excluded); the budget simply ends it;
* ``stop S``: the texts that contain ``S`` once, as a suffix;
* constraint ``C``: the texts of ``C``;
* constraint ``C`` and ``stop S`` (``C`` regular): a text of ``C`` without ``S``, then ``S``
  (:class:`ThenStop`);
* ``max N tokens`` on top of either: a :class:`TokenBudget` (the text must be complete in time).

Compiled constraints are cached per (vocabulary, language) in this process, on top of the
runtime's on-disk cache, so repeated runs reuse mask rows already computed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from genweave.compiler import ir
from genweave.dsl.errors import GenCheckError, Span
from genweave.runtime import constraints as rc
from genweave.runtime.constraints.byte_dfa import ByteDFA, minimize, product
from genweave.runtime.vocab import Vocabulary


def language_of(constraint: ir.ConstraintIR) -> rc.Language:
    """The runtime language builder of a constraint expression."""
    match constraint:
        case ir.Regex(pattern):
            return rc.regex(pattern)
        case ir.Choice(options):
            return rc.choice(list(options))
        case ir.Literal(text):
            return rc.literal(text)
        case ir.Builtin(name):
            return rc.builtin(name)
        case ir.Intersect(left, right):
            return language_of(left) & language_of(right)
        case ir.Union(left, right):
            return language_of(left) | language_of(right)
        case ir.Grammar(text):
            from genweave.runtime.constraints.grammar import grammar

            return grammar(text)
        case ir.Json(schema):
            from genweave.runtime.constraints.json_schema import json_schema

            return json_schema(json.loads(schema))
    raise TypeError(f"not a constraint: {constraint!r}")


def hole_language(hole: ir.Hole) -> rc.Language | None:
    """The language a hole's text must belong to, or None for unconstrained text."""
    if hole.constraint is not None and hole.stop is not None:
        inner = language_of(hole.constraint)
        if not isinstance(inner, rc.Language):
            raise GenCheckError(f"hole '{hole.name}': a stop string can follow a regular constraint only, "
                                f"not {type(inner).__name__.lower()} {inner}", span=hole.span,
                                hint="end the grammar with the stop text instead of `stop`")
        return ThenStop(inner, hole.stop)
    if hole.constraint is not None:
        return language_of(hole.constraint)
    if hole.stop is not None:
        return rc.stop(hole.stop)
    return None


@dataclass(frozen=True, slots=True)
class ThenStop(rc.Language):
    """A value of ``constraint`` then the stop string: the texts ``v + stop`` with ``v`` in the
    constraint, in which ``stop`` occurs exactly once (as the suffix: the hole ends at the first
    occurrence, so a value containing ``stop`` could not be written), as the product of the
    concatenation automaton and ``stop(text)``."""

    constraint: rc.Language
    text: str

    def to_dfa(self) -> ByteDFA:
        from genweave.runtime.constraints.json_schema.automata import NFA

        nfa = NFA()
        entry = nfa.embed(self.constraint.to_dfa(), nfa.literal(self.text.encode("utf-8"), nfa.final))
        return minimize(product(nfa.determinize(entry), rc.stop(self.text).to_dfa(), union=False))

    def key(self) -> str:
        return f"then_stop({self.constraint.key()},{self.text!r})"

    def __str__(self) -> str:
        return f"{self.constraint} then stop({self.text!r})"


def bind_hole(hole: ir.Hole, vocab: Vocabulary, file: str, source: str | None):
    """The compiled constraint of a hole for ``vocab`` (None for unconstrained text)."""
    language = hole_language(hole)
    if language is None:
        return None
    try:
        compiled = _compiled(language, vocab)
        if hole.max_tokens is None:
            return compiled
        budget = rc.TokenBudget(compiled, hole.max_tokens)
        budget.require_text(hole.name)  # a language with no text of at most N tokens is an error now
        return budget
    except GenCheckError as err:
        if err.span is None:
            span = hole.span
            err.span = Span(span.line, span.col, span.end_line, span.end_col, file)
            err.source = source
        raise


@lru_cache(maxsize=8)
def _trie(vocab: Vocabulary) -> rc.TokenTrie:
    return rc.TokenTrie.from_vocabulary(vocab)


@lru_cache(maxsize=256)
def _compiled(language: rc.Language, vocab: Vocabulary) -> rc.CompiledConstraint:
    # Languages are frozen dataclasses, equal when they denote the same expression. Grammars are
    # indexed fully at compile time: tens of milliseconds once, then every mask is a lookup.
    index = "full" if getattr(language, "parser_kind", None) == "lalr" else "lazy"
    return rc.compile_constraint(language, _trie(vocab), index=index)
