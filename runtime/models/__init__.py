"""Language models behind one batched, KV-cached step protocol (see ``base.py``).

``HFModel`` (transformers) is imported lazily so that ``ToyLM`` users do not pay for transformers.
"""

from genweave.runtime.models.base import LanguageModel
from genweave.runtime.models.registry import DEFAULT_MODEL, REGISTRY_NAMES, load_model, load_tokenizer
from genweave.runtime.models.toy import ToyLM, ToyState

__all__ = ["DEFAULT_MODEL", "REGISTRY_NAMES", "HFModel", "HFState", "LanguageModel", "ToyLM", "ToyState",
           "load_model", "load_tokenizer"]


def __getattr__(name: str):
    if name in ("HFModel", "HFState"):
        from genweave.runtime.models import hf

        return getattr(hf, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
