"""Exact bytes of every token of a tokenizer.

A :class:`Vocabulary` maps each token id to the bytes the token contributes to a text. Everything
above the text level (constraints, byte-level LM, token healing) works on these bytes, so they
must be exact: for a byte-level BPE tokenizer (GPT-2 byte-to-unicode map) a token's bytes may be
an incomplete UTF-8 sequence, and for SentencePiece-style tokenizers ``▁`` stands for a space and
``<0xNN>`` is the single byte ``0xNN``.

The bytes of a token are what it contributes **in the middle of a text**. SentencePiece-style
decoders drop the space of the first token of a text (the prefix space the encoder added); those
tokens' first-position bytes are kept in :attr:`Vocabulary.start_bytes`, and
:meth:`Vocabulary.decode_text` applies them. For every id sequence whose bytes are valid UTF-8,
``tokenizer.decode(ids)`` (skipping no tokens, with no clean-up) equals ``decode_text(ids)``.

>>> vocab = Vocabulary.from_bytes([b"a", b"\\xc3", b"\\xa9", b""], eos_ids=[3])
>>> vocab.decode([0, 1, 2, 3]).decode()
'a\u00e9'
>>> sorted(vocab.special), len(vocab)
([3], 4)
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from types import MappingProxyType
from typing import Any

import numpy as np

from genweave.dsl.errors import GenArgumentError, GenModelError

_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_DECODER_STEPS = frozenset({"ByteLevel", "Replace", "ByteFallback", "Fuse", "Strip", "Metaspace"})
_CACHE_SIZE = 8
# In-process caches of from_hf, keyed by the sha256 of the tokenizer JSON (plus the arguments):
# the decoded token table (the expensive part, one loop over the vocabulary) and the vocabularies.
_TABLES: OrderedDict[str, _TokenTable] = OrderedDict()
_VOCABULARIES: OrderedDict[tuple, Vocabulary] = OrderedDict()


@dataclass(frozen=True, eq=False, repr=False)
class Vocabulary:
    """The byte string of every token id, plus which ids are special and which end text.

    * ``token_bytes[i]``: exact bytes token ``i`` contributes in the middle of a text (special
      tokens: the UTF-8 of their text form, e.g. ``b"<|im_end|>"``, since they never occur inside
      generated text; padding ids beyond the tokenizer: ``b""``).
    * ``special``: ids of special/control tokens (never produced as text by a hole). Always
      contains ``eos_ids``.
    * ``eos_ids``: ids that end a text, in order of preference (the tokenizer's EOS first).
    * ``start_bytes``: the ids whose bytes differ when they open a text (SentencePiece prefix
      space), mapped to those bytes; see :meth:`decode_text`.
    * :attr:`fingerprint`: a stable sha256 hex digest of all of the above but ``name`` (cache key
      for compiled constraints).
    """

    token_bytes: tuple[bytes, ...]
    special: frozenset[int]
    eos_ids: tuple[int, ...]
    name: str = ""
    start_bytes: Mapping[int, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        size = len(self.token_bytes)
        object.__setattr__(self, "token_bytes", tuple(self.token_bytes))
        if not all(isinstance(t, bytes) for t in self.token_bytes):
            raise GenArgumentError("every token of a vocabulary must be a bytes object")
        ids = (*self.special, *self.eos_ids, *self.start_bytes)
        bad = [i for i in ids if not (isinstance(i, int | np.integer) and 0 <= i < size)]
        if bad:
            raise GenArgumentError(f"token id {bad[0]!r} is outside the vocabulary of {size} tokens",
                                   hint="special, EOS and start ids must lie in range(len(tokens))")
        eos = tuple(dict.fromkeys(int(i) for i in self.eos_ids))
        object.__setattr__(self, "eos_ids", eos)
        object.__setattr__(self, "special", frozenset(int(i) for i in self.special) | frozenset(eos))
        object.__setattr__(self, "start_bytes", MappingProxyType(dict(self.start_bytes)))

    def __len__(self) -> int:
        return len(self.token_bytes)

    def __repr__(self) -> str:
        return (f"Vocabulary(name={self.name!r}, size={len(self)}, special={len(self.special)}, "
                f"eos_ids={self.eos_ids})")

    def decode(self, ids: Sequence[int]) -> bytes:
        """The bytes of ``ids`` in the middle of a text: the concatenation of their token bytes."""
        return b"".join([self.token_bytes[i] for i in ids])

    def decode_text(self, ids: Sequence[int]) -> bytes:
        """The bytes of ``ids`` as a whole text: like :meth:`decode`, but the first token
        contributes its :attr:`start_bytes` (e.g. SentencePiece's ``▁Hello`` opens a text as
        ``Hello``). This is what the tokenizer's own ``decode`` returns, as UTF-8."""
        if len(ids) == 0:
            return b""
        first = self.start_bytes.get(int(ids[0]), self.token_bytes[ids[0]])
        return first + self.decode(ids[1:])

    @cached_property
    def fingerprint(self) -> str:
        """sha256 hex digest of token bytes, special ids, EOS ids and start bytes (not the name)."""
        digest = hashlib.sha256(b"genweave.Vocabulary/1")
        digest.update(struct.pack("<q", len(self)))
        digest.update(self.lengths.astype("<i8").tobytes())
        digest.update(b"".join(self.token_bytes))
        digest.update(np.asarray(sorted(self.special), dtype="<i8").tobytes())
        digest.update(b"|eos|" + np.asarray(self.eos_ids, dtype="<i8").tobytes())
        for i, data in sorted(self.start_bytes.items()):
            digest.update(struct.pack("<qq", i, len(data)) + data)
        return digest.hexdigest()

    @cached_property
    def lengths(self) -> np.ndarray:
        """Byte length of every token, ``int32[V]`` (read-only)."""
        return _frozen(np.fromiter(map(len, self.token_bytes), dtype=np.int32, count=len(self)))

    @cached_property
    def special_mask(self) -> np.ndarray:
        """``bool[V]``, true at the special ids (read-only)."""
        mask = np.zeros(len(self), dtype=bool)
        mask[list(self.special)] = True
        return _frozen(mask)

    def token_array(self) -> tuple[np.ndarray, np.ndarray]:
        """``(matrix, lengths)``: ``uint8[V, Lmax]`` with token ``i``'s bytes in row ``i``,
        zero-padded, and ``int32[V]`` byte lengths. Built once, read-only, shared."""
        return self._byte_matrix, self.lengths

    @cached_property
    def _byte_matrix(self) -> np.ndarray:
        lengths = self.lengths.astype(np.int64)
        width = int(lengths.max(initial=0))
        matrix = np.zeros((len(self), max(width, 1)), dtype=np.uint8)
        flat = np.frombuffer(b"".join(self.token_bytes), dtype=np.uint8)
        rows = np.repeat(np.arange(len(self)), lengths)
        starts = np.cumsum(lengths) - lengths
        matrix[rows, np.arange(flat.size) - np.repeat(starts, lengths)] = flat
        return _frozen(matrix)

    def ids_of(self, data: bytes) -> tuple[int, ...]:
        """The non-special ids whose bytes are exactly ``data`` (ascending; often none or one)."""
        return self._ids_by_bytes.get(data, ())

    @cached_property
    def _ids_by_bytes(self) -> dict[bytes, tuple[int, ...]]:
        index: dict[bytes, list[int]] = {}
        for i, data in enumerate(self.token_bytes):
            if i not in self.special:
                index.setdefault(data, []).append(i)
        return {data: tuple(ids) for data, ids in index.items()}

    @classmethod
    def from_bytes(cls, tokens: Iterable[bytes], eos_ids: Iterable[int] = (), special: Iterable[int] = (),
                   name: str = "") -> Vocabulary:
        """A vocabulary with the given token bytes (toy models, tests); EOS ids become special.

        >>> Vocabulary.from_bytes([b"x", b"y"], eos_ids=[1]).special
        frozenset({1})
        """
        return cls(tuple(tokens), frozenset(special), tuple(eos_ids), name)

    @classmethod
    def from_hf(cls, tokenizer: Any, *, extra_eos: Iterable[int] = (), size: int | None = None,
                name: str | None = None) -> Vocabulary:
        """The vocabulary of a Hugging Face fast tokenizer (or a ``tokenizers.Tokenizer``).

        Token bytes follow the tokenizer's decoder, read from its JSON: byte-level BPE
        (``ByteLevel``), SentencePiece-style chains (``Metaspace``, ``Replace``, ``ByteFallback``,
        ``Fuse``, ``Strip``); another decoder raises :class:`GenModelError`. Added tokens marked
        special (and the model's unknown token) are special; ``eos_ids`` are the tokenizer's
        ``eos_token_id`` followed by ``extra_eos`` (e.g. a generation config's ids). ``size`` pads
        the vocabulary with special, never-produced ids of bytes ``b""`` up to a model's logits
        width. Results are cached in-process by a sha256 of the tokenizer JSON and the arguments.
        """
        backend = _backend_of(tokenizer)
        spec_text = backend.to_str()
        label = name if name is not None else str(getattr(tokenizer, "name_or_path", "") or "")
        eos = [getattr(tokenizer, "eos_token_id", None), *extra_eos]
        eos_ids = tuple(dict.fromkeys(int(i) for i in eos if i is not None))
        digest = hashlib.sha256(spec_text.encode()).hexdigest()
        key = (digest, eos_ids, size, label)
        vocab = _cached(_VOCABULARIES, key)
        if vocab is not None:
            return vocab
        table = _cached(_TABLES, digest)
        if table is None:
            table = _remember(_TABLES, digest, _TokenTable.build(spec_text, backend, label))
        return _remember(_VOCABULARIES, key, table.vocabulary(eos_ids, size, label))


def _cached(cache: OrderedDict, key: Any) -> Any:
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    return None


def _remember(cache: OrderedDict, key: Any, value: Any) -> Any:
    cache[key] = value
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _backend_of(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` behind a transformers tokenizer (or the object itself)."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not (hasattr(backend, "to_str") and hasattr(backend, "get_vocab")):
        raise GenModelError(f"cannot read token bytes from a {type(tokenizer).__name__}: it is not a fast "
                            "(tokenizers-backed) tokenizer",
                            hint="load it with AutoTokenizer.from_pretrained(...), which builds a fast "
                                 "tokenizer, or pass a tokenizers.Tokenizer")
    return backend


@dataclass(frozen=True)
class _TokenTable:
    """The decoded token bytes of one tokenizer JSON, before EOS ids and padding are chosen."""

    tokens: tuple[bytes, ...]
    special: frozenset[int]
    start: Mapping[int, bytes]

    @classmethod
    def build(cls, spec_text: str, backend: Any, name: str) -> _TokenTable:
        """Token bytes of every id (one loop over the vocabulary); ids without a token are special."""
        spec = json.loads(spec_text)
        token_of = {i: t for t, i in backend.get_vocab(with_added_tokens=True).items()}
        width = max(token_of, default=-1) + 1
        special = {entry["id"] for entry in spec.get("added_tokens", []) if entry.get("special")}
        special |= _unknown_ids(spec.get("model") or {}, backend) | (set(range(width)) - set(token_of))
        steps = _decoder_steps(spec.get("decoder"), name)
        tokens: list[bytes] = [b""] * width
        start: dict[int, bytes] = {}
        for i, token in token_of.items():
            if i in special:
                tokens[i] = token.encode()
                continue
            tokens[i] = _token_bytes(steps, token, first=False)
            first = _token_bytes(steps, token, first=True)
            if first != tokens[i]:
                start[i] = first
        return cls(tuple(tokens), frozenset(special), MappingProxyType(start))

    def vocabulary(self, eos_ids: tuple[int, ...], size: int | None, name: str) -> Vocabulary:
        """The table padded to ``size`` ids (special, ``b""``) with the given EOS ids."""
        width = len(self.tokens)
        if size is not None and size < width:
            raise GenModelError(f"tokenizer {name!r} has {width} token ids but the model only {size} logits",
                                hint="use the tokenizer that belongs to this model")
        total = width if size is None else size
        bad = [i for i in eos_ids if not 0 <= i < total]
        if bad:
            raise GenModelError(f"EOS id {bad[0]} is outside the {total} token ids of tokenizer {name!r}",
                                hint="pass the model's logits width as size=, or check the EOS ids")
        padding = range(width, total)
        return Vocabulary(self.tokens + (b"",) * len(padding), self.special | frozenset(padding), eos_ids,
                          name, self.start)


def _unknown_ids(model: dict, backend: Any) -> set[int]:
    """The id of the model's unknown-token (its text is not the text it stands for)."""
    if model.get("unk_id") is not None:
        return {int(model["unk_id"])}
    unk = model.get("unk_token")
    unk_id = backend.token_to_id(unk) if unk is not None else None
    return set() if unk_id is None else {unk_id}


# -- decoder chains ------------------------------------------------------------------------------
#
# A tokenizers decoder maps the list of token strings of a text to its string, step by step; most
# steps act on each token alone. ``Fuse`` (and ``ByteLevel``, whose output is one string) join all
# tokens into one, after which a step sees the whole text: a ``Strip`` then touches only the
# first token, and ``Metaspace`` treats every token as part of the first "token" of the text.
# ``_token_bytes`` replays a chain on one token, as the first token of a text or in its middle.
# ``None`` stands for "no decoder": tokenizers then joins the tokens with single spaces.


def _decoder_steps(decoder: dict | None, name: str) -> tuple[dict, ...] | None:
    """The flattened steps of a decoder, checked to be ones whose per-token effect is exact."""
    if decoder is None:
        return None
    steps = tuple(_flatten(decoder))
    fused = byte_fallback = False
    for step in steps:
        kind = step["type"]
        problem = None
        if kind not in _DECODER_STEPS:
            problem = f"the {kind} decoder"
        elif kind == "Replace" and ("String" not in step["pattern"]
                                    or (fused and len(step["pattern"]["String"]) > 1)):
            problem = "a Replace decoder with a regex or a multi-character pattern"
        elif kind in ("ByteFallback", "ByteLevel") and (fused or byte_fallback):
            problem = f"a {kind} decoder after a Fuse, ByteLevel or ByteFallback step"
        elif kind in ("Strip", "Metaspace") and byte_fallback and not fused:
            problem = f"a {kind} decoder between ByteFallback and Fuse"
        elif kind == "Strip" and fused and step.get("stop", 0):
            problem = "a Strip decoder that strips the end of a text"
        if problem:
            raise GenModelError(f"tokenizer {name!r} uses {problem}; genweave cannot derive exact token bytes "
                                "from it",
                                hint="use a byte-level BPE or SentencePiece-style tokenizer (decoders "
                                     "ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip)")
        fused = fused or kind in ("Fuse", "ByteLevel")
        byte_fallback = byte_fallback or kind == "ByteFallback"
    return steps


def _flatten(decoder: dict) -> Iterable[dict]:
    if decoder["type"] == "Sequence":
        for inner in decoder["decoders"]:
            yield from _flatten(inner)
    else:
        yield decoder


def _token_bytes(steps: tuple[dict, ...] | None, token: str, *, first: bool) -> bytes:
    """The bytes ``token`` contributes as the ``first`` token of a text or in its middle."""
    if steps is None:
        return token.encode() if first else b" " + token.encode()
    value: str | bytes = token
    fused = False
    for step in steps:
        kind = step["type"]
        if kind == "ByteLevel":
            value = _byte_level(value)
        elif kind == "Replace":
            value = _replace(value, step["pattern"]["String"], step["content"])
        elif kind == "ByteFallback":
            match = _BYTE_TOKEN.fullmatch(value)
            value = bytes([int(match[1], 16)]) if match else value
        elif kind == "Strip" and (first or not fused):
            value = _strip(value, step["content"], step.get("start", 0), 0 if fused else step.get("stop", 0))
        elif kind == "Metaspace":
            value = _metaspace(value, step, first_unit=first or fused)
        fused = fused or kind in ("Fuse", "ByteLevel")
    return value.encode() if isinstance(value, str) else value


def _replace(value: str | bytes, old: str, new: str) -> str | bytes:
    if isinstance(value, str):
        return value.replace(old, new)
    return value.replace(old.encode(), new.encode())


def _strip(value: str | bytes, char: str, start: int, stop: int) -> str | bytes:
    """``value`` without up to ``start`` leading and ``stop`` trailing copies of ``char``."""
    unit = char if isinstance(value, str) else char.encode()
    for _ in range(start):
        if value.startswith(unit):
            value = value[len(unit):]
    for _ in range(stop):
        if value.endswith(unit):
            value = value[:len(value) - len(unit)]
    return value


def _metaspace(value: str | bytes, step: dict, *, first_unit: bool) -> str | bytes:
    """The Metaspace decoder: the replacement character is a space, except in the first token of a
    text (when a prefix space was prepended), where it is dropped."""
    scheme = step.get("prepend_scheme")
    if scheme is None:
        scheme = "always" if step.get("add_prefix_space", True) else "never"
    drop = first_unit and scheme != "never"
    return _replace(value, step["replacement"], "" if drop else " ")


def _byte_level(value: str | bytes) -> bytes:
    """GPT-2 byte-level decoding: each character is one byte; a token with a character outside
    the map (an added token) stands for its own UTF-8."""
    table = _unicode_to_byte()
    text = value if isinstance(value, str) else value.decode()
    if all(char in table for char in text):
        return bytes(table[char] for char in text)
    return text.encode()


@cache
def _unicode_to_byte() -> dict[str, int]:
    """Inverse of GPT-2's byte-to-unicode map: the 188 printable Latin-1 bytes stand for
    themselves; the other 68 (controls, space, 0x7F-0xA0, 0xAD) are, in byte order, U+0100...."""
    printable = {*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)}
    table: dict[str, int] = {}
    shifted = 0
    for byte in range(256):
        if byte in printable:
            table[chr(byte)] = byte
        else:
            table[chr(256 + shifted)] = byte
            shifted += 1
    return table
