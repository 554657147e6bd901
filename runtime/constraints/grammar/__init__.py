"""Context-free grammars (Lark syntax) as exact token-level constraints.

``grammar(text)`` (or ``std_grammar("json" | "arithmetic" | "sql")``) builds the language;
``.compile(vocab)`` gives a constraint with the same step protocol as
:class:`~genweave.runtime.constraints.compiled.CompiledConstraint` (``initial``, batched
``mask``, ``advance``, ``check``, ``is_complete``, ``is_dead``, ``dead_state``,
``complete_mask``, ``eos_mask``, ``walk``), so :class:`~genweave.runtime.constraints.Matcher`
and :class:`~genweave.runtime.constraints.TokenBudget` work unchanged. LALR(1) grammars get the
fast engine (:mod:`.lalr`), others the Earley fallback (:mod:`.earley`); ``parser_kind`` and
``explain()`` report which. See ``docs/constraints.md``, section "Grammars".
"""

from genweave.runtime.constraints.grammar.builder import (
    STD_GRAMMARS,
    Grammar,
    compile_grammar,
    grammar,
    std_grammar,
)
from genweave.runtime.constraints.grammar.combine import Combination, CompiledCombination
from genweave.runtime.constraints.grammar.earley import EarleyGrammar
from genweave.runtime.constraints.grammar.lalr import LALRGrammar

__all__ = [
    "STD_GRAMMARS", "Combination", "CompiledCombination", "EarleyGrammar", "Grammar", "LALRGrammar",
    "compile_grammar", "grammar", "std_grammar",
]
