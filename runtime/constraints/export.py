"""Compiled constraints for users of Hugging Face ``generate``: a ``LogitsProcessor``.

:func:`logits_processor` masks the scores of every row with the row's constraint state, which it
follows from ``input_ids`` (the prompt is what the first call sees; each later call consumes the
tokens appended since). Rows that produced EOS are left alone (``generate`` pads them). The mask
engine is genweave's by default; ``engine="xgrammar"`` or ``engine="llguidance"`` uses that
library instead (when installed) for JSON schemas, regexes and choices, so the same constraint
can run on either engine, e.g. side by side in a benchmark.

>>> from genweave.runtime.vocab import Vocabulary
>>> from genweave.runtime.constraints import regex
>>> import torch
>>> vocab = Vocabulary.from_bytes([b"a", b"b", b"<eos>"], eos_ids=[2])
>>> processor = logits_processor(regex("ab"), vocab)
>>> processor(torch.tensor([[0]]), torch.zeros(1, 3))  # prompt "a": the constraint starts now
tensor([[0., -inf, -inf]])
>>> processor(torch.tensor([[0, 0]]), torch.zeros(1, 3))  # "a" generated: "b" is next
tensor([[-inf, 0., -inf]])
"""

from __future__ import annotations

from typing import Any

import torch

from genweave.dsl.errors import GenArgumentError, GenRuntimeError, NoValidTokenError
from genweave.runtime.constraints.compiled import compile_constraint
from genweave.runtime.constraints.languages import Choice, Language, Regex
from genweave.runtime.constraints.matcher import Matcher
from genweave.runtime.vocab import Vocabulary

ENGINES = ("genweave", "xgrammar", "llguidance")


def _unpack(words: torch.Tensor, width: int) -> torch.Tensor:
    """Bool ``[B, width]`` from packed int32 ``[B, W]`` (bits past the table are False)."""
    shifts = torch.arange(32, dtype=torch.int32)
    bits = ((words.to(torch.int32).unsqueeze(-1) >> shifts) & 1).reshape(words.shape[0], -1).bool()
    if bits.shape[1] >= width:
        return bits[:, :width]
    return torch.nn.functional.pad(bits, (0, width - bits.shape[1]), value=False)


class _GenweaveEngine:
    """Rows are :class:`Matcher` s of one compiled constraint."""

    def __init__(self, constraint):
        self.constraint = constraint
        self.eos_ids = frozenset(constraint.eos_ids)

    def row(self):
        return Matcher(self.constraint)

    def consume(self, row, token: int) -> bool:
        return row.consume([token])

    def is_ended(self, row) -> bool:
        return row.is_ended()

    def fill(self, rows) -> torch.Tensor:
        live = [r for r in rows if not r.is_ended()]
        masks = self.constraint.mask([r.state for r in live]) if live else None
        out, k = [], 0
        for r in rows:
            if r.is_ended():
                out.append(self.constraint.eos_mask())
            else:
                out.append(masks[k])
                k += 1
        return torch.stack(out)


class _XGrammarEngine:
    def __init__(self, language: Language, tokenizer, width: int):
        import xgrammar as xgr

        self.xgr = xgr
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=width)
        compiler = xgr.GrammarCompiler(info, cache_enabled=False)
        kind, source = _peer_source(language)
        if kind == "json_schema":
            separators = (", ", ": ") if language.options.whitespace == "spaces" else (",", ":")
            self.compiled = compiler.compile_json_schema(source, any_whitespace=False, separators=separators,
                                                         strict_mode=False)
        elif kind == "regex":
            self.compiled = compiler.compile_regex(source)
        else:
            self.compiled = compiler.compile_grammar(source)
        self.eos_ids = frozenset(info.stop_token_ids)
        self.width = width

    def row(self):
        return [self.xgr.GrammarMatcher(self.compiled), False]

    def consume(self, row, token: int) -> bool:
        row[1] = row[1] or token in self.eos_ids
        return bool(row[0].accept_token(token))

    def is_ended(self, row) -> bool:
        return row[1]

    def fill(self, rows) -> torch.Tensor:
        mask = self.xgr.allocate_token_bitmask(len(rows), self.width)
        for i, row in enumerate(rows):
            row[0].fill_next_token_bitmask(mask, i)
        return mask


class _LLGuidanceEngine:
    def __init__(self, language: Language, tokenizer, width: int):
        import llguidance
        import llguidance.hf
        import llguidance.torch

        self.llg = llguidance
        self.fill_row = llguidance.torch.fill_next_token_bitmask
        self.allocate = llguidance.torch.allocate_token_bitmask
        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=width)
        kind, source = _peer_source(language)
        build = {"json_schema": llguidance.LLMatcher.grammar_from_json_schema,
                 "regex": llguidance.LLMatcher.grammar_from_regex,
                 "lark": llguidance.LLMatcher.grammar_from_lark}[kind]
        if kind == "json_schema":
            spaces = language.options.whitespace == "spaces"
            self.grammar = build(source, defaults={
                "whitespace_flexible": False, "item_separator": ", " if spaces else ",",
                "key_separator": ": " if spaces else ":"})
        else:
            self.grammar = build(source)
        self.eos_ids = frozenset([tokenizer.eos_token_id])
        self.width = width

    def row(self):
        matcher = self.llg.LLMatcher(self.tokenizer, self.grammar, log_level=0)
        if matcher.is_error():
            raise GenArgumentError(f"llguidance cannot compile the constraint: {matcher.get_error()}")
        return [matcher, False]

    def consume(self, row, token: int) -> bool:
        row[1] = row[1] or token in self.eos_ids
        return bool(row[0].consume_token(token)) and not row[0].is_error()

    def is_ended(self, row) -> bool:
        return row[1]

    def fill(self, rows) -> torch.Tensor:
        mask = self.allocate(len(rows), self.width)
        for i, row in enumerate(rows):
            self.fill_row(row[0], mask, i)
        return mask


def _peer_source(language) -> tuple[str, str]:
    """(kind, text) of a language for a peer engine: a JSON schema, a regex or a Lark grammar."""
    from genweave.runtime.constraints.json_schema.language import JsonSchema

    if isinstance(language, JsonSchema):
        if language.options.whitespace not in ("compact", "spaces"):
            raise GenArgumentError("peer engines take JSON schemas with whitespace='compact' or 'spaces'")
        return "json_schema", language.schema_text
    if isinstance(language, Regex):
        return "regex", language.pattern
    if isinstance(language, Choice):
        import re

        return "regex", "|".join(re.escape(option) for option in language.options)
    lark = getattr(language, "lark_text", None) or getattr(language, "text", None)
    if isinstance(lark, str):
        return "lark", lark
    raise GenArgumentError(f"the {language} constraint cannot run on another engine",
                           hint="peer engines take json_schema(), regex(), choice() and grammar() constraints")


class ConstraintLogitsProcessor:
    """A ``transformers`` logits processor (``__call__(input_ids, scores) -> scores``) that sets
    the scores of disallowed tokens to ``-inf`` (module docstring). Use one per ``generate`` call
    or call :meth:`reset` between calls (a new prompt is also detected by itself)."""

    def __init__(self, engine, width: int | None = None):
        self.engine = engine
        self.width = width
        self.reset()

    def reset(self) -> None:
        self._rows: list | None = None
        self._prompt: torch.Tensor | None = None
        self._consumed = 0

    def _follow(self, input_ids: torch.Tensor) -> None:
        batch, length = input_ids.shape
        prompt = self._prompt
        fresh = (self._rows is None or len(self._rows) != batch or prompt is None
                 or length < prompt.shape[1] + self._consumed
                 or not torch.equal(input_ids[:, : prompt.shape[1]], prompt))
        if fresh:
            self._rows = [self.engine.row() for _ in range(batch)]
            self._prompt = input_ids.clone()
            self._consumed = 0
            return
        start = prompt.shape[1] + self._consumed
        for step in input_ids[:, start:].T.tolist():
            for row, token in zip(self._rows, step):
                if not self.engine.is_ended(row) and not self.engine.consume(row, int(token)):
                    raise GenRuntimeError(f"token {token} broke the constraint",
                                          hint="another logits processor or a sampler allowed a masked token")
        self._consumed = length - prompt.shape[1]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self._follow(input_ids)
        width = scores.shape[-1]
        allowed = _unpack(self.engine.fill(self._rows), width)
        ended = torch.tensor([self.engine.is_ended(r) for r in self._rows])
        allowed[ended] = True  # generate pads finished rows; their scores do not matter
        empty = ~allowed.any(dim=-1)
        if bool(empty.any()):
            raise NoValidTokenError(f"row {int(empty.nonzero()[0])}: the constraint allows no token",
                                    hint="a token budget or max_new_tokens ended the text before it could complete")
        return scores.masked_fill(~allowed.to(scores.device), float("-inf"))


def logits_processor(constraint, tokenizer_or_vocab: Any, *, engine: str = "genweave",
                     width: int | None = None) -> ConstraintLogitsProcessor:
    """A :class:`ConstraintLogitsProcessor` for ``constraint`` (a language such as
    ``regex(...)``/``json_schema(...)``, or an already compiled constraint or token budget).

    ``tokenizer_or_vocab`` is a Hugging Face tokenizer (or, for the genweave engine, a
    :class:`Vocabulary`). ``engine`` picks the mask engine: ``"genweave"``, ``"xgrammar"`` or
    ``"llguidance"`` (those two need their package, a tokenizer and a JSON schema, regex, choice
    or grammar language). ``width`` is the model's logits width when it differs from the
    tokenizer's size (by default taken from the scores).
    """
    if engine not in ENGINES:
        raise GenArgumentError(f"unknown engine {engine!r}", hint=f"use one of {', '.join(ENGINES)}")
    if engine == "genweave":
        if isinstance(constraint, Language):
            vocab = tokenizer_or_vocab if isinstance(tokenizer_or_vocab, Vocabulary) else \
                Vocabulary.from_hf(tokenizer_or_vocab)
            constraint = compile_constraint(constraint, vocab)
        elif not hasattr(constraint, "mask") or not hasattr(constraint, "advance"):
            raise GenArgumentError(f"logits_processor() takes a constraint, not {type(constraint).__name__}")
        return ConstraintLogitsProcessor(_GenweaveEngine(constraint), width)
    if not isinstance(constraint, Language) or isinstance(tokenizer_or_vocab, Vocabulary):
        raise GenArgumentError(f"engine={engine!r} needs a language (not a compiled constraint) and a "
                               "Hugging Face tokenizer")
    module = "xgrammar" if engine == "xgrammar" else "llguidance"
    try:
        __import__(module)
    except ImportError:
        raise GenArgumentError(f"engine={engine!r} needs the {module} package",
                               hint=f"pip install {module}") from None
    size = width or len(tokenizer_or_vocab)
    cls = _XGrammarEngine if engine == "xgrammar" else _LLGuidanceEngine
    return ConstraintLogitsProcessor(cls(constraint, tokenizer_or_vocab, size), width)


__all__ = ["ENGINES", "ConstraintLogitsProcessor", "logits_processor"]
