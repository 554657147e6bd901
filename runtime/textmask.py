"""Which tokens a hole may produce as text: every non-special token, and end-of-sequence."""

from __future__ import annotations

from functools import lru_cache

import torch

from genweave.runtime.vocab import Vocabulary


@lru_cache(maxsize=32)
def text_token_mask(vocab: Vocabulary, device: str = "cpu") -> torch.Tensor:
    """Bool ``[V]``: True for tokens that may appear in a hole (text tokens and EOS)."""
    mask = torch.ones(len(vocab), dtype=torch.bool)
    special = sorted(i for i in vocab.special if i not in vocab.eos_ids)
    if special:
        mask[torch.tensor(special, dtype=torch.long)] = False
    return mask.to(device)
