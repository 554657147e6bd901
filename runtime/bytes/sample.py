"""Drawing byte strings byte by byte from a byte-level model, with draws sharing their beams.

``n`` independent draws that have produced the same bytes so far are in the same byte-level state,
so they are kept as one *group*: its next-byte distribution is computed once and the group splits by
a single multinomial draw of ``n`` bytes (the counts of each byte). All groups advance together, one
batched LM call per step (``advance_many``), so the cost follows the number of distinct prefixes
drawn, not ``n``. Every draw is an exact sample of the model's byte-level distribution; the output
lists draws group by group.

>>> from genweave.runtime.models import ToyLM
>>> from genweave.runtime.bytes.byte_lm import ByteLM
>>> samples = ByteLM(ToyLM([b"a", b"b", b"ab"], seed=1)).sample_bytes(
...     b"", n=5, max_bytes=8, generator=torch.Generator().manual_seed(0))
>>> len(samples.texts), all(set(text) <= set(b"ab") for text in samples.texts)
(5, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from genweave.runtime.bytes.byte_lm import EOT


class ByteModel(Protocol):
    """What :func:`sample_bytes` needs: ``ByteLM`` and ``ByteEnsemble`` both provide it."""

    def prefill(self, prompt: bytes = b"") -> Any: ...

    def advance_many(self, steps: list[tuple[Any, int]]) -> list[Any]: ...

    def next_byte_logprobs(self, prefix: Any) -> torch.Tensor: ...


@dataclass(frozen=True)
class ByteSamples:
    """``texts[i]``: the bytes of draw ``i`` after the prompt; ``ended[i]``: it ended with end of
    text (False: it was cut at ``max_bytes``)."""

    texts: tuple[bytes, ...]
    ended: tuple[bool, ...]


def sample_bytes(model: ByteModel, prompt: Any = b"", *, n: int = 1, max_bytes: int = 64,
                 generator: torch.Generator | None = None) -> ByteSamples:
    """``n`` draws of at most ``max_bytes`` bytes after ``prompt`` (bytes or a state of ``model``)."""
    state = model.prefill(prompt) if isinstance(prompt, bytes | bytearray) else prompt
    frontier: list[tuple[Any, bytes, int]] = [(state, b"", n)]
    texts: list[bytes] = []
    ended: list[bool] = []
    while frontier:
        steps, grown = [], []
        for state, data, count in frontier:
            if len(data) >= max_bytes:
                texts.extend([data] * count)
                ended.extend([False] * count)
                continue
            counts = multinomial_counts(model.next_byte_logprobs(state), count, generator)
            for byte, times in counts.items():
                if byte == EOT:
                    texts.extend([data] * times)
                    ended.extend([True] * times)
                else:
                    steps.append((state, byte))
                    grown.append((data + bytes([byte]), times))
        advanced = model.advance_many(steps) if steps else []
        frontier = [(state, data, times) for state, (data, times) in zip(advanced, grown)]
    return ByteSamples(tuple(texts), tuple(ended))


def multinomial_counts(logprobs: torch.Tensor, count: int, generator: torch.Generator | None) -> dict[int, int]:
    """``{category: times}`` of ``count`` draws from ``softmax(logprobs)`` (one batched draw)."""
    device = generator.device if generator is not None else logprobs.device
    probs = logprobs.to(device=device, dtype=torch.float64).exp()
    draws = torch.multinomial(probs, count, replacement=True, generator=generator)
    counts = torch.bincount(draws, minlength=len(probs)).cpu()
    return {int(k): int(counts[k]) for k in torch.nonzero(counts)[:, 0]}
