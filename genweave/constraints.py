"""``genweave.constraint``: a constraint as a per-sequence token matcher, for users' own tests.

A builder constraint (:func:`regex`, :func:`json_schema`, :func:`grammar`, :func:`choice`, and
their combinations with ``&`` and ``|``) is lowered exactly as the constraint of a ``.gen`` hole
is (checked, lowered, optimized and bound by the compiler), then compiled against a tokenizer's
vocabulary. The result follows one token sequence through the language:

>>> import genweave
>>> m = genweave.constraint(genweave.regex(r"[0-9]{2,3}"), "smollm2-135m")   # doctest: +SKIP
>>> m.accepts("123"), m.accepts("12a")                                       # doctest: +SKIP
(True, False)

Unsupported input (a bad regex, an unsupported JSON Schema keyword, an unknown model) raises a
:class:`~genweave.GenError` when the matcher is built, never later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from genweave import builders
from genweave.builders import Constraint, choice, grammar, regex
from genweave.compiler.check import check
from genweave.compiler.lower import lower
from genweave.compiler.pipeline import optimize
from genweave.compiler.plan import plan
from genweave.dsl import ast
from genweave.dsl.errors import GenArgumentError, GenModelError
from genweave.dsl.parser import parse
from genweave.runtime import execute
from genweave.runtime.constraints.json_schema.document import schema_of
from genweave.runtime.constraints.matcher import Matcher
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.vocab import Vocabulary

__all__ = ["ConstraintMatcher", "choice", "constraint", "grammar", "json_schema", "regex"]

_FILE = "<genweave.constraint>"
_HOLE = "value"


def json_schema(schema: Any) -> Constraint:
    """JSON text valid for ``schema``: a dict, a boolean, JSON text, or a Pydantic model class
    (anything with a ``model_json_schema()`` method)."""
    if not isinstance(schema, dict | bool | str):
        schema = schema_of(schema)  # a Pydantic model's schema; anything else is refused here
    return builders.json_schema(schema)


class ConstraintMatcher:
    """One token sequence's walk through a compiled constraint.

    ``consume`` advances by token ids (a disallowed token makes the matcher dead, which is sticky
    until rolled back; it never raises); ``mask`` is the packed int32 row ``[ceil(V/32)]`` of the
    tokens allowed next (bit ``j`` of word ``w`` is token ``32 w + j``; EOS is allowed exactly when
    the text so far is complete); ``accepts(text)`` asks whether the text so far followed by
    ``text``'s canonical tokenization (the tokenizer's own ids for it) is complete, without
    changing the matcher.
    """

    def __init__(self, matcher: Matcher, encode: Callable[[str], Sequence[int]], vocab: Vocabulary,
                 description: str):
        self._matcher = matcher
        self._encode = encode
        self.vocab = vocab
        self.description = description

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def num_consumed(self) -> int:
        return self._matcher.num_consumed

    def consume(self, token_ids: Sequence[int]) -> bool:
        """Advance by each token id; returns False if the matcher is dead afterwards."""
        return self._matcher.consume(token_ids)

    def mask(self) -> torch.Tensor:
        """The packed int32 row ``[ceil(V/32)]`` of the tokens allowed next (all zero when dead)."""
        return self._matcher.mask()

    def allowed_tokens(self) -> np.ndarray:
        """Sorted ids of the tokens allowed next (the set bits of :meth:`mask`)."""
        row = self.mask().numpy()
        bits = np.unpackbits(row.view(np.uint8), bitorder="little")[: self.vocab_size]
        return np.flatnonzero(bits)

    def allows(self, token_id: int) -> bool:
        """Whether ``token_id`` may come next (its bit in :meth:`mask`)."""
        return self._matcher.allows(token_id)

    def is_complete(self) -> bool:
        """Whether the text so far is a complete string of the language (or EOS was consumed)."""
        return self._matcher.is_complete()

    def is_dead(self) -> bool:
        """Whether a consumed token left the language."""
        return self._matcher.is_dead()

    def is_ended(self) -> bool:
        """Whether an EOS token was consumed (only EOS is allowed afterwards)."""
        return self._matcher.is_ended()

    def tokens(self) -> list[int]:
        """The token ids consumed so far."""
        return self._matcher.tokens()

    def rollback(self, n: int) -> None:
        """Forget the last ``n`` consumed tokens (``0 <= n <= num_consumed``)."""
        try:
            self._matcher.rollback(n)
        except ValueError as error:
            raise GenArgumentError(str(error), hint="roll back at most num_consumed tokens") from None

    def fork(self) -> ConstraintMatcher:
        """An independent copy at the same position (sharing the compiled constraint)."""
        return ConstraintMatcher(self._matcher.fork(), self._encode, self.vocab, self.description)

    def accepts(self, text: str) -> bool:
        """Whether the text so far followed by the canonical tokens of ``text`` is complete
        (False for a text the tokenizer cannot write)."""
        try:
            tokens = self._encode(text)
        except GenModelError:  # e.g. a toy model without tokens for some of its bytes
            return False
        probe = self._matcher.fork()
        return probe.consume(tokens) and probe.is_complete()

    def __repr__(self) -> str:
        return f"ConstraintMatcher({self.description}, V={self.vocab_size}, consumed={self.num_consumed})"


def constraint(c: Constraint | str, tokenizer: Any) -> ConstraintMatcher:
    """A fresh :class:`ConstraintMatcher` of ``c`` (a builder constraint, or a string for that
    literal text) over ``tokenizer``: a model name or path (only its tokenizer and config are
    read), a Hugging Face fast tokenizer (or ``tokenizers.Tokenizer``), or a loaded
    :class:`~genweave.runtime.models.base.LanguageModel`. Raises a :class:`~genweave.GenError` for
    input it cannot compile."""
    vocab, encode = _vocabulary(tokenizer)
    compiled = _bind(c, vocab)
    return ConstraintMatcher(Matcher(compiled), encode, vocab, repr(compiled))


def _bind(c: Constraint | str, vocab: Vocabulary):
    """The compiled constraint a hole ``value = gen C`` gets for ``vocab``."""
    if isinstance(c, str):
        c = builders.literal(c)
    if not isinstance(c, Constraint):
        raise GenArgumentError(f"genweave.constraint takes a constraint builder, not {type(c).__name__}",
                               hint="build one with genweave.regex, json_schema, grammar or choice")
    if _has_where(c.node):
        raise GenArgumentError("a `where` condition is checked on the finished value, not token by token, "
                               "so genweave.constraint cannot mask with it",
                               hint="pass the constraint without .where and test the condition on the text")
    program = builders.Program("constraint")
    program.ret(program.gen(_HOLE, c))
    source = builders.to_source(program)
    module = parse(source, _FILE)
    check(module)
    bound = plan(optimize(lower(module)["constraint"]), vocab, file=_FILE, source=source)
    (fill,) = [step for step in bound.steps if isinstance(step, execute.Fill)]
    return fill.constraint


def _has_where(node: ast.Constraint) -> bool:
    match node:
        case ast.WhereC():
            return True
        case ast.BinaryC(_, left, right):
            return _has_where(left) or _has_where(right)
    return False


def _vocabulary(tokenizer: Any) -> tuple[Vocabulary, Callable[[str], Sequence[int]]]:
    """The vocabulary of ``tokenizer`` and its canonical encoding (no special tokens added)."""
    if isinstance(tokenizer, str):
        from genweave.runtime.models.registry import load_tokenizer, load_vocabulary

        vocab = load_vocabulary(tokenizer)
        return vocab, _hf_encoder(load_tokenizer(tokenizer))
    if isinstance(tokenizer, LanguageModel):
        return tokenizer.vocab, tokenizer.encode
    if hasattr(tokenizer, "backend_tokenizer") or hasattr(tokenizer, "to_str"):
        return Vocabulary.from_hf(tokenizer), _hf_encoder(tokenizer)
    raise GenModelError(f"genweave.constraint needs a model name, a Hugging Face tokenizer or a model, "
                        f"not {type(tokenizer).__name__}",
                        hint='pass e.g. "smollm2-135m" or AutoTokenizer.from_pretrained(...)')


def _hf_encoder(tokenizer: Any) -> Callable[[str], Sequence[int]]:
    if hasattr(tokenizer, "backend_tokenizer"):  # transformers: recognises special-token text, adds none
        return lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]
    return lambda text: tokenizer.encode(text, add_special_tokens=False).ids  # tokenizers.Tokenizer
