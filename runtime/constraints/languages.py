"""Regular languages as immutable builders; each compiles to a trim, minimal byte DFA.

Strings are sets of UTF-8 texts. Builders: :func:`regex`, :func:`literal`, :func:`choice`,
:func:`stop`, :func:`builtin` (``int``, ``float``, ``bool``), and ``a & b`` (intersection),
``a | b`` (union). :func:`language_dfa` compiles one and rejects the empty language.

>>> lang = (regex(r"[a-z]+") & stop("ing")) | literal("42")
>>> print(lang)
(regex('[a-z]+') & stop('ing')) | literal('42')
>>> dfa = language_dfa(lang)
>>> [dfa.accepts(s.encode()) for s in ("singing", "sing", "42", "ring4")]
[False, True, True, False]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import (
    ByteDFA,
    first_occurrence_dfa,
    literal_dfa,
    product,
)
from genweave.runtime.constraints.regex import BUILTIN_PATTERNS, regex_dfa


class Language(ABC):
    """A regular language over UTF-8 text. ``key()`` is a canonical cache key: equal keys, equal
    languages."""

    @abstractmethod
    def to_dfa(self) -> ByteDFA:
        """The trim, minimal byte DFA of the language (possibly empty)."""

    @abstractmethod
    def key(self) -> str:
        """A canonical description, stable across runs (used by the disk cache)."""

    def __and__(self, other: Language) -> Language:
        if _is_other_kind(other):
            return NotImplemented  # a grammar combines with us (Grammar.__rand__)
        return Intersection(self, _check_language(other))

    def __or__(self, other: Language) -> Language:
        if _is_other_kind(other):
            return NotImplemented
        return Union(self, _check_language(other))


def _is_other_kind(value) -> bool:
    """A constraint that is not a regular language but compiles itself (a grammar)."""
    return not isinstance(value, Language) and hasattr(value, "compile")


def _check_language(value) -> Language:
    if not isinstance(value, Language):
        raise GenCheckError(f"cannot combine a constraint with {value!r}",
                            hint="combine constraints built with regex(), literal(), choice(), stop()")
    return value


@dataclass(frozen=True, slots=True)
class Regex(Language):
    """Strings fully matched by ``pattern`` (semantics: :mod:`genweave.runtime.constraints.regex`)."""

    pattern: str

    def to_dfa(self) -> ByteDFA:
        return regex_dfa(self.pattern)

    def key(self) -> str:
        return f"regex({self.pattern!r})"

    def __str__(self) -> str:
        return f"regex({self.pattern!r})"


@dataclass(frozen=True, slots=True)
class Builtin(Language):
    """A builtin type's text form: ``int`` ``-?(0|[1-9][0-9]*)``, ``float`` (a JSON number) or
    ``bool`` (``true|false``)."""

    name: str

    def to_dfa(self) -> ByteDFA:
        return regex_dfa(BUILTIN_PATTERNS[self.name])

    def key(self) -> str:
        return f"builtin({self.name}:{BUILTIN_PATTERNS[self.name]!r})"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Choice(Language):
    """Exactly the given strings (one string: a literal)."""

    options: tuple[str, ...]

    def to_dfa(self) -> ByteDFA:
        return literal_dfa(option.encode("utf-8") for option in self.options)

    def key(self) -> str:
        return f"choice({sorted(set(self.options))!r})"

    def __str__(self) -> str:
        if len(self.options) == 1:
            return f"literal({self.options[0]!r})"
        return f"choice({list(self.options)!r})"


@dataclass(frozen=True, slots=True)
class Stop(Language):
    """"No S, then S": texts that contain ``text`` exactly once, as a suffix."""

    text: str

    def to_dfa(self) -> ByteDFA:
        any_text = regex_dfa(r"(?s).*")  # valid UTF-8 only
        return product(first_occurrence_dfa(self.text.encode("utf-8")), any_text, union=False)

    def key(self) -> str:
        return f"stop({self.text!r})"

    def __str__(self) -> str:
        return f"stop({self.text!r})"


@dataclass(frozen=True, slots=True)
class Intersection(Language):
    """Strings in both languages (product DFA, AND of acceptance)."""

    left: Language
    right: Language

    def to_dfa(self) -> ByteDFA:
        return product(self.left.to_dfa(), self.right.to_dfa(), union=False)

    def key(self) -> str:
        return f"and({self.left.key()},{self.right.key()})"

    def __str__(self) -> str:
        return f"{_operand(self.left)} & {_operand(self.right)}"


@dataclass(frozen=True, slots=True)
class Union(Language):
    """Strings in either language (product DFA, OR of acceptance)."""

    left: Language
    right: Language

    def to_dfa(self) -> ByteDFA:
        return product(self.left.to_dfa(), self.right.to_dfa(), union=True)

    def key(self) -> str:
        return f"or({self.left.key()},{self.right.key()})"

    def __str__(self) -> str:
        return f"{_operand(self.left)} | {_operand(self.right)}"


def _operand(language: Language) -> str:
    return f"({language})" if isinstance(language, Intersection | Union) else str(language)


def regex(pattern: str) -> Regex:
    """The language of a regular expression (checked when compiled)."""
    if not isinstance(pattern, str):
        raise GenCheckError(f"regex() takes a pattern string, not {type(pattern).__name__}")
    return Regex(pattern)


def literal(text: str) -> Choice:
    """The one-string language ``{text}``."""
    return choice([text])


def choice(options) -> Choice:
    """The finite language of ``options`` (strings)."""
    options = tuple(options)
    if not options:
        raise GenCheckError("choice() needs at least one option", hint="list the allowed strings")
    for option in options:
        if not isinstance(option, str):
            raise GenCheckError(f"choice() options must be strings, not {option!r}")
    return Choice(options)


def stop(text: str) -> Stop:
    """The language "no ``text``, then ``text``" (the hole ends at the first occurrence)."""
    if not isinstance(text, str) or not text:
        raise GenCheckError(f"a stop string must be a non-empty string, not {text!r}",
                            hint="write the text that ends the hole, e.g. stop(\"\\n\")")
    return Stop(text)


def builtin(name: str) -> Builtin:
    """The text form of a builtin type: ``"int"``, ``"float"`` or ``"bool"``."""
    if name not in BUILTIN_PATTERNS:
        raise GenCheckError(f"unknown builtin type {name!r}", hint=f"use one of {sorted(BUILTIN_PATTERNS)}")
    return Builtin(name)


def language_dfa(language: Language) -> ByteDFA:
    """The minimal byte DFA of ``language``; :class:`GenCheckError` if the language is empty."""
    dfa = _check_language(language).to_dfa()
    if dfa.is_empty():
        raise GenCheckError(f"the constraint {language} accepts no string at all",
                            hint="an intersection of disjoint languages or an impossible regex is empty")
    return dfa
