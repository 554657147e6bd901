"""JSON Schema constraints at the token level: seeded generations validate (SmolLM2 and a toy
vocabulary that splits characters), masks equal brute force, valid instances are allowed token by
token in their canonical tokenization."""

from __future__ import annotations

import json

import numpy as np
import pytest
from constraint_oracles import brute_force_masks, unpack
from json_schema_helpers import assert_valid, sample_texts
from test_json_schema_keywords import CASES, TREE

from genweave.runtime.constraints import Matcher, compile_constraint
from genweave.runtime.constraints.json_schema import json_schema
from genweave.runtime.vocab import Vocabulary

ORDER = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "when": {"type": "string", "format": "date-time"},
        "items": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
            "type": "object", "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
                                             "qty": {"type": "integer", "minimum": 1, "maximum": 99},
                                             "price": {"type": "number", "minimum": 0}},
            "required": ["sku", "qty"], "additionalProperties": False}},
        "note": {"type": ["string", "null"], "maxLength": 12},
        "status": {"enum": ["new", "paid", "sent"]},
    },
    "required": ["id", "items", "status"],
    "additionalProperties": False,
}

# 8 schemas x 25 generations = 200 per vocabulary
SCHEMAS = {"order": ORDER, "tree": TREE, **{name: CASES[name][0] for name in (
    "one_of_negated", "pattern_properties", "not_integer", "enum_const", "additional_schema", "date")}}

TOY_TOKENS = [bytes([b]) for b in range(0x20, 0x7F)] + [
    b'{"', b'":', b'",', b'"}', b"null", b"true", b"false", b"12", b"-0", b"\\n", b"\\u00",
    "é".encode(), b"\xc3", b"\xa9", "🙂".encode()[:2], "🙂".encode()[2:], b"\n", b"\t", b"<eos>",
]


@pytest.fixture(scope="module")
def toy_json_vocab() -> Vocabulary:
    return Vocabulary.from_bytes(TOY_TOKENS, eos_ids=[len(TOY_TOKENS) - 1])


def generate(constraint, rng, max_steps: int = 400) -> list[int] | None:
    """The tokens (EOS excluded) of a seeded walk over allowed tokens that ends where EOS is
    drawn (None if it does not end in ``max_steps``):
    EOS with probability 1/3 when allowed; otherwise a token uniformly among the allowed ones, or
    (half of the time) among those reaching a uniformly drawn next state."""
    matcher = Matcher(constraint)
    eos = np.array(constraint.eos_ids)
    for _ in range(max_steps):
        allowed = np.flatnonzero(unpack(matcher.mask())[: constraint.vocab_size])
        assert allowed.size, "a live state with an empty mask"
        ends = np.isin(allowed, eos)
        if ends.any() and (ends.all() or rng.random() < 1 / 3):
            return matcher.tokens()
        tokens = allowed[~ends]
        if rng.random() < 0.5:
            targets = constraint.advance_batch(np.full(tokens.size, matcher.state), tokens)
            tokens = tokens[targets == rng.choice(np.unique(targets))]
        assert matcher.consume([int(rng.choice(tokens))])
    return None


@pytest.mark.parametrize("vocab_name", ["smollm2", "toy"])
def test_generations_validate(vocab_name, smollm2_trie, smollm2_vocab, toy_json_vocab):
    trie, vocab = (smollm2_trie, smollm2_vocab) if vocab_name == "smollm2" else (toy_json_vocab, toy_json_vocab)
    finished = 0
    for index, (name, schema) in enumerate(sorted(SCHEMAS.items())):
        constraint = compile_constraint(json_schema(schema), trie, cache=False)
        rng = np.random.default_rng(1000 + index)
        texts = []
        for _ in range(25):
            ids = generate(constraint, rng)
            if ids is not None:
                texts.append(vocab.decode(ids))
        assert len(texts) >= 20, name
        assert_valid(schema, texts)
        finished += len(texts)
    assert finished >= 180


@pytest.mark.parametrize("name", ["order", "tree", "pattern_properties"])
def test_masks_equal_brute_force(name, smollm2_trie, smollm2_vocab, sp_vocab):
    for trie, vocab in ((smollm2_trie, smollm2_vocab), (sp_vocab, sp_vocab)):
        constraint = compile_constraint(json_schema(SCHEMAS[name]), trie, cache=False)
        rng = np.random.default_rng(7)
        states = {constraint.initial()}
        for _ in range(3):
            matcher = Matcher(constraint)
            for token in generate(constraint, rng) or []:
                matcher.consume([token])
                if len(states) < 12 and not matcher.is_ended():
                    states.add(matcher.state)
        states = sorted(states)
        allowed, _ = brute_force_masks(constraint.dfa, vocab, states)
        got = unpack(constraint.mask(states))[:, : len(vocab)]
        assert np.array_equal(got, allowed)


@pytest.mark.parametrize("name", ["order", "tree", "enum_const", "not_integer"])
def test_valid_texts_are_allowed_token_by_token(name, smollm2_tokenizer, smollm2_trie, smollm2_vocab):
    language = json_schema(SCHEMAS[name])
    constraint = compile_constraint(language, smollm2_trie, cache=False)
    texts = sample_texts(language.to_dfa(), seed=3, count=15)
    texts.append(json.dumps(json.loads(texts[0]), ensure_ascii=False, separators=(",", ":")).encode())
    for text in texts:
        ids = smollm2_tokenizer.encode(text.decode(), add_special_tokens=False)
        if smollm2_vocab.decode(ids) != text:
            continue  # the tokenizer normalised the text (control characters)
        matcher = Matcher(constraint)
        for token in [*ids, smollm2_vocab.eos_ids[0]]:
            assert matcher.allows(token), (text, token)
            matcher.consume([token])
        assert matcher.is_complete()
