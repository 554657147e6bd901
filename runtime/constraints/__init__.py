"""Exact token-level constraints: regular languages compiled to byte DFAs and token masks.

Build a language (:func:`regex`, :func:`literal`, :func:`choice`, :func:`stop`, :func:`builtin`,
``&``, ``|``), compile it once per vocabulary with :func:`compile_constraint`, then step with the
:class:`CompiledConstraint` protocol (batched masks) or a per-sequence :class:`Matcher`.
:class:`TokenBudget` adds ``max N tokens``. See ``docs/constraints.md``.
"""

from genweave.runtime.constraints.budget import BudgetState, TokenBudget
from genweave.runtime.constraints.byte_dfa import DEAD, ByteDFA
from genweave.runtime.constraints.compiled import CompiledConstraint, compile_constraint
from genweave.runtime.constraints.languages import (
    Language,
    builtin,
    choice,
    language_dfa,
    literal,
    regex,
    stop,
)
from genweave.runtime.constraints.matcher import Matcher
from genweave.runtime.constraints.token_trie import TokenTrie

__all__ = [
    "DEAD", "BudgetState", "ByteDFA", "CompiledConstraint", "Language", "Matcher", "TokenBudget",
    "TokenTrie", "builtin", "choice", "compile_constraint", "language_dfa", "literal", "regex", "stop",
]
