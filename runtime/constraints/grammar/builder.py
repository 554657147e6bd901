"""The ``grammar`` builder: a context-free language given in Lark syntax.

``grammar(text, start="start")`` reads the grammar at once (an invalid grammar, an unsupported
terminal pattern or an empty language raises :class:`GenCheckError` here), and
:meth:`Grammar.compile` builds the step protocol of constraints for a vocabulary: an LALR(1)
engine when lark's analyser finds no conflict, else the Earley fallback (``parser_kind`` and
:meth:`Grammar.explain` say which and why). ``std_grammar("json")`` loads ``stdlib/json.lark``
(also ``arithmetic`` and ``sql``).

>>> g = grammar('start: "a" start | "b"')
>>> g.parser_kind, g.key() == grammar('start: "a" start | "b"').key()
('lalr', True)
>>> from genweave.runtime.vocab import Vocabulary
>>> c = g.compile(Vocabulary.from_bytes([b"a", b"b", b"ab", b"</s>"], eos_ids=[3]))
>>> state = c.advance(c.initial(), 2)
>>> c.allowed_tokens(c.initial()).tolist(), c.is_complete(state), c.allowed_tokens(state).tolist()
([0, 1, 2], True, [3])
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.grammar.earley import EarleyGrammar
from genweave.runtime.constraints.grammar.lalr import LALRGrammar
from genweave.runtime.constraints.grammar.operators import CombinableConstraint
from genweave.runtime.constraints.grammar.spec import GrammarSpec, load_spec
from genweave.runtime.constraints.token_trie import TokenTrie
from genweave.runtime.vocab import Vocabulary

STD_GRAMMARS = ("arithmetic", "json", "sql")


@dataclass(frozen=True, slots=True)
class Grammar(CombinableConstraint):
    """The language of a Lark grammar from its ``start`` rule (see the module docstring)."""

    text: str
    start: str = "start"

    def spec(self) -> GrammarSpec:
        """The grammar as read by lark (cached per text and start)."""
        return load_spec(self.text, self.start)

    @property
    def parser_kind(self) -> str:
        """``"lalr"`` or ``"earley"`` (the general fallback for grammars that are not LALR(1))."""
        return self.spec().parser_kind

    def key(self) -> str:
        """A canonical description, stable across runs."""
        digest = hashlib.sha256(self.text.encode("utf-8")).hexdigest()
        return f"grammar({digest}, start={self.start!r})"

    def compile(self, vocab: Vocabulary | TokenTrie, *, index: str = "lazy") -> LALRGrammar | EarleyGrammar:
        """The constraint of this grammar for ``vocab``; ``index="full"`` computes the static
        rows of every position of an LALR grammar now (compile time for steady step times)."""
        if index not in ("lazy", "full"):
            raise ValueError(f"index must be 'lazy' or 'full', not {index!r}")
        trie = vocab if isinstance(vocab, TokenTrie) else TokenTrie.from_vocabulary(vocab)
        spec = self.spec()
        engine = LALRGrammar if spec.parser_kind == "lalr" else EarleyGrammar
        compiled = engine(spec, trie, str(self))
        return compiled.precompute() if index == "full" else compiled

    def explain(self) -> str:
        """The parser kind and why, with the grammar's size."""
        return f"{self}: {describe_parser(self.spec())}"

    def __str__(self) -> str:
        first = next((line.strip() for line in self.text.splitlines() if line.strip()), "")
        if len(first) > 40:
            first = first[:37] + "..."
        suffix = "" if self.start == "start" else f", start={self.start!r}"
        return f"grammar({first!r}{suffix})"


def describe_parser(spec: GrammarSpec) -> str:
    """The parser kind and why, with the grammar's size (for ``explain``)."""
    if spec.parser_kind == "lalr":
        how = f"LALR(1), {spec.lalr.action.shape[0]} states"
    else:
        how = f"Earley fallback (not LALR(1): {spec.conflict})"
    return f"{how}; {len(spec.terminals)} terminals, {len(spec.rules)} rules"


def grammar(text: str, start: str = "start") -> Grammar:
    """The language of the Lark grammar ``text`` from rule ``start`` (checked now)."""
    if not isinstance(text, str):
        raise GenCheckError(f"grammar() takes the text of a Lark grammar, not {type(text).__name__}")
    if not isinstance(start, str) or not start:
        raise GenCheckError(f"the start rule must be a rule name, not {start!r}")
    built = Grammar(text, start)
    built.spec()  # raises GenCheckError for invalid grammars
    return built


def std_grammar(name: str) -> Grammar:
    """A grammar of the standard library: ``"json"``, ``"arithmetic"`` or ``"sql"``."""
    if name not in STD_GRAMMARS:
        raise GenCheckError(f"unknown standard grammar {name!r}", hint=f"use one of {list(STD_GRAMMARS)}")
    text = resources.files("genweave.stdlib").joinpath(f"{name}.lark").read_text(encoding="utf-8")
    return grammar(text)


def compile_grammar(language, vocab: Vocabulary | TokenTrie, *, index: str = "lazy"):
    """Compile a :class:`Grammar` or a combination with grammars (``&``, ``|``) for ``vocab``."""
    if not hasattr(language, "compile"):
        raise GenCheckError(f"not a grammar constraint: {language!r}",
                            hint="build one with grammar(...) or std_grammar(...)")
    return language.compile(vocab, index=index)
