"""``genweave.sampler``: a sampler chain from its ``.gen`` text, as a tensor-level test hook.

>>> import torch
>>> chain = sampler("temperature 0.7 | top_p 0.9")
>>> chain.logprobs(torch.tensor([[2.0, 1.0, 0.0, -5.0]])).exp().sum().item() > 0.999
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from genweave.compiler.check import check
from genweave.compiler.lower import lower
from genweave.compiler.plan import decoding_chain
from genweave.dsl.errors import GenError, Span
from genweave.dsl.parser import parse
from genweave.runtime.samplers import ChainSpec, CompiledChain, SamplerState

_PREFIX = 'program chain():\n  target:\n    return ""\n  infer:\n    sample '


def sampler(text: str, *, temperature_last: bool = False) -> Sampler:
    """The chain written ``text`` (as after ``sample`` in an ``infer:`` block), folded.

    Errors point into ``text`` (line 1, its column).
    """
    source = _PREFIX + text.strip() + "\n"
    try:
        module = parse(source, file="<sampler>")
        check(module)
        program = next(iter(lower(module).values()))
        spec = decoding_chain(program.decoding)
    except GenError as err:
        raise _relocated(err, text) from None
    if temperature_last:
        from genweave.runtime.samplers import move_temperature_last

        spec = move_temperature_last(spec)
    return Sampler(spec)


@dataclass
class Sampler:
    """A compiled sampler chain; compiled lazily per (vocabulary size, batch, device)."""

    spec: ChainSpec
    _compiled: dict = field(default_factory=dict, repr=False)

    def compiled(self, logits: torch.Tensor) -> CompiledChain:
        batch, vocab = logits.shape
        key = (vocab, batch, str(logits.device))
        if key not in self._compiled:
            self._compiled[key] = self.spec.compile(vocab, device=logits.device, batch=batch)
        return self._compiled[key]

    def logprobs(self, logits: torch.Tensor, state: SamplerState | None = None,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, V]`` log-probs of the chain's distribution (``-inf`` for excluded tokens)."""
        return self.compiled(logits).logprobs(logits, state, mask=mask)

    def sample(self, logits: torch.Tensor, generator: torch.Generator | None = None,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[B]`` tokens, one exact draw per row."""
        return self.compiled(logits).sample(logits, generator, mask=mask)

    def __str__(self) -> str:
        return str(self.spec)


def _relocated(err: GenError, text: str) -> GenError:
    for inner in getattr(err, "errors", ()):
        if inner is not err:
            _relocated(inner, text)
    span = err.span
    if span is not None and span.line == _PREFIX.count("\n") + 1:
        offset = len(_PREFIX.rsplit("\n", 1)[-1])
        err.span = Span(1, max(1, span.col - offset), 1, max(2, span.end_col - offset), "<sampler>")
        err.source = text
    return err
