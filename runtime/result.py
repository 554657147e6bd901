"""What a program run returns."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Result:
    """One draw of a program.

    * ``value``: the returned value.
    * ``text``: the whole text of the draw: prompt, chat templates, holes (with the stop strings
      they generated) and any text after the last hole.
    * ``holes``: each hole's value by name (a ``stop`` string is excluded from the value).
    * ``tokens``: every token id the model saw or produced (text after the last hole is never
      tokenized, so it has no tokens).
    * ``logprob``: log-probability of the draw's generated tokens (end-of-sequence choices
      included) under the distribution each was drawn from (after masks and the sampler chain);
      0 for greedy decoding, which is deterministic.
    * ``guarantee``: what the inference promises about this draw (see LANGUAGE.md).
    * ``weight``: the draw's log-weight: the sum of its ``factor`` values, ``-inf`` when a
      ``condition`` or check failed (rejection sampling discards those draws).
    """

    value: Any
    text: str
    holes: dict[str, Any]
    tokens: tuple[int, ...]
    logprob: float
    guarantee: str = "local"
    hole_tokens: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    weight: float = 0.0

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Results(Sequence[Result]):
    """Several draws of one program, in draw order."""

    draws: tuple[Result, ...]

    def __getitem__(self, index):
        return self.draws[index]

    def __len__(self) -> int:
        return len(self.draws)

    def __iter__(self) -> Iterator[Result]:
        return iter(self.draws)

    @property
    def values(self) -> list[Any]:
        return [r.value for r in self.draws]
