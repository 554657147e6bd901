"""The grammar route of JSON schemas: schemas whose automaton is too large compile to a grammar.

Oracles: the DFA route on schemas without recursion or free values (the two routes must accept
the same texts and give the same token masks), ``jsonschema`` validation of texts sampled from
the grammar's masks, the development sample's test instances, and a SmolLM2 generation.
"""

from __future__ import annotations

import doctest
import json
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from constraint_oracles import unpack
from json_schema_helpers import DEV_SAMPLE, SHARED, sample_texts

from genweave.runtime.constraints import DEAD, TokenTrie, compile_constraint
from genweave.runtime.constraints.json_schema import json_schema
from genweave.runtime.constraints.json_schema.emit import Options
from genweave.runtime.constraints.json_schema.grammar_route import build_grammar
from genweave.runtime.constraints.json_schema.language import JsonSchemaGrammar
from genweave.runtime.vocab import Vocabulary

TREE = {"$ref": "#/$defs/node", "$defs": {"node": {
    "type": "object", "required": ["name"], "additionalProperties": False,
    "properties": {"name": {"type": "string", "pattern": "^[a-z]{1,6}$"},
                   "size": {"type": "integer", "minimum": 0, "maximum": 99},
                   "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 3},
                   "meta": {}}}}}

# No recursion, no free value: the grammar and the DFA route denote the same language.
FLAT = {"type": "object", "required": ["id", "tags"], "additionalProperties": False, "properties": {
    "id": {"type": "integer", "minimum": -5, "maximum": 300},
    "kind": {"enum": ["a", "b", {"x": 1}]},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "minItems": 1, "maxItems": 3},
    "pos": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "boolean"}},
            "required": ["x"], "additionalProperties": {"type": "null"}},
    "alt": {"anyOf": [{"type": "string", "format": "date"}, {"type": "array", "items": {"type": "integer"},
                                                             "maxItems": 2}]}}}

# A counted object too large for one automaton (a state per member count): the grammar route.
COUNTED = {"type": "object", "maxProperties": 20000,
           "additionalProperties": {"type": "object", "properties": {"x": {"type": "string"}},
                                    "additionalProperties": False}}


def byte_vocab() -> Vocabulary:
    return Vocabulary.from_bytes([bytes([b]) for b in range(256)] + [b"</s>"], eos_ids=[256])


def grammar_samples(constraint, seed: int, count: int, max_bytes: int = 400, ascii: bool = False) -> list[bytes]:
    """Texts drawn byte by byte from the constraint's masks (byte vocabulary, EOS id 256): stop with
    probability 1/3 where EOS is allowed; prefer structure (one of the allowed bytes that is not
    a letter or digit, half of the time); with ``ascii``, ASCII bytes wherever one is allowed."""
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(20 * count):  # walks longer than ``max_bytes`` are dropped
        if len(texts) == count:
            break
        state, out = constraint.initial(), bytearray()
        while len(out) < max_bytes:
            allowed = np.flatnonzero(unpack(constraint.mask([state]))[0, :257])
            if 256 in allowed and (allowed.size == 1 or rng.random() < 1 / 3):
                texts.append(bytes(out))
                break
            allowed = allowed[allowed != 256]
            if ascii and (allowed < 128).any():
                allowed = allowed[allowed < 128]
            punct = allowed[~np.isin(allowed, np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", np.uint8))]
            pool = punct if punct.size and rng.random() < 0.5 else allowed
            byte = int(rng.choice(pool))
            state = constraint.advance(state, byte)
            assert state != DEAD
            out.append(byte)
    return texts


def test_recursive_schema_is_a_grammar_and_its_samples_validate():
    built = build_grammar(TREE, Options())
    assert built.grammar.parser_kind == "lalr"
    deep = b'{"name":"a","kids":[{"name":"b","kids":[{"name":"c","kids":[{"name":"d","kids":[{"name":"e"}]}]}]}]}'
    assert built.accepts(deep)  # deeper than max_depth: real recursion
    assert built.accepts(b'{"name":"a","meta":{"x":[[[[[1]]]]]}}')  # free values nest to any depth
    for bad in (b'{"name":"A"}', b'{"kids":[]}', b'{"name":"a","kids":[{},{}]}', b'{"name":"a","size":100}',
                b'{"name":"a","kids":[{"name":"b"},{"name":"b"},{"name":"b"},{"name":"b"}]}'):
        assert not built.accepts(bad), bad
    constraint = built.grammar.compile(byte_vocab())
    texts = grammar_samples(constraint, seed=1, count=40)
    assert len(set(texts)) > 20
    for text in texts:
        jsonschema.validate(json.loads(text), TREE)
        assert built.accepts(text)


def test_flat_schema_same_language_and_masks_as_the_dfa_route():
    dfa_route = json_schema(FLAT)
    assert dfa_route.route == "dfa"
    built = build_grammar(FLAT, Options())
    dfa = dfa_route.to_dfa()
    texts = sample_texts(dfa, seed=3, count=60)
    for text in texts:
        assert built.accepts(text), text
        for cut in (len(text) // 2, len(text) - 1):  # prefixes and one-byte edits: same verdicts
            for probe in (text[:cut], text[:cut] + b"}" + text[cut:], text[:cut] + b"7" + text[cut + 1:]):
                assert built.accepts(probe) == dfa.accepts(probe), probe
    vocab = byte_vocab()
    grammar_c, dfa_c = built.grammar.compile(vocab), compile_constraint(dfa_route, vocab, cache=False)
    for text in texts[:20]:
        g, d = grammar_c.initial(), dfa_c.initial()
        for byte in text:
            assert torch.equal(grammar_c.mask([g]), dfa_c.mask([d])), (text, byte)
            g, d = grammar_c.advance(g, byte), dfa_c.advance(d, byte)
        assert torch.equal(grammar_c.mask([g]), dfa_c.mask([d]))


def test_masks_equal_the_byte_walk_on_smollm2_tokens(smollm2_vocab, smollm2_trie):
    """Each token of SmolLM2 is allowed iff reading its bytes keeps the text a live prefix, and
    EOS iff the text is complete (brute force over the vocabulary, on states along a text)."""
    built = build_grammar(TREE, Options())
    constraint = built.grammar.compile(smollm2_trie)
    text = b'{"name":"ab","size":7,"kids":[{"name":"c","meta":[1,{"q":null}]}]}'
    prefixes = [text[:k] for k in (0, 1, 9, 13, 21, 30, 48, len(text))]
    eos = set(smollm2_vocab.eos_ids)
    for prefix in prefixes:
        state = constraint.walk(constraint.initial(), prefix)
        assert state != DEAD
        got = unpack(constraint.mask([state]))[0, :len(smollm2_vocab)]
        expected = np.zeros(len(smollm2_vocab), dtype=bool)
        for token, data in enumerate(smollm2_vocab.token_bytes):
            if token in eos:
                expected[token] = constraint.is_complete(state)
            elif data and token not in smollm2_vocab.special:
                expected[token] = constraint.walk(state, data) != DEAD
        assert np.array_equal(got, expected), prefix


def test_json_schema_takes_the_grammar_route_when_the_automaton_is_too_large():
    language = json_schema(COUNTED, max_depth=0)
    assert isinstance(language, JsonSchemaGrammar) and language.route == "grammar"
    assert language.grammar_kind == "lalr"
    assert language.compiled().capped == ("/: maxProperties 20000 enforced as 16",)  # like maxItems
    assert "grammar route" in language.explain()
    assert language.accepts(b'{"a":{"x":"1"},"b":{}}') and not language.accepts(b'{"a":{"x":1}}')
    assert language.canonical_text({"a": {"x": "q"}}) == '{"a":{"x":"q"}}'
    assert language.canonical_text({"a": {"y": 1}}) is None
    with pytest.raises(Exception, match="grammar route"):
        language.to_dfa()
    constraint = compile_constraint(language, TokenTrie.from_vocabulary(byte_vocab()))
    state = constraint.walk(constraint.initial(), b'{"k":{}')
    assert constraint.is_complete(constraint.walk(state, b"}"))
    assert not constraint.is_complete(state)


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared data folder {SHARED} is missing")
def test_dev_sample_schema_on_the_grammar_route():
    rows = {json.loads(line)["id"]: json.loads(line) for line in DEV_SAMPLE.read_text().splitlines()}
    row = rows["JsonSchemaStore---tokenlist.schema"]
    built = build_grammar(row["schema"], Options())
    assert built.grammar.parser_kind == "lalr"
    constraint = built.grammar.compile(byte_vocab())
    for text in grammar_samples(constraint, seed=5, count=8, max_bytes=3000):
        jsonschema.validate(json.loads(text), row["schema"])


def test_docs_example_runs():
    docs = Path(__file__).resolve().parents[4] / "docs" / "constraints.md"
    blocks = re.findall(r"```python\n(.*?)```", docs.read_text(), flags=re.S)
    (block,) = [b for b in blocks if 'route == "grammar"' in b]
    exec(compile(block, "docs/constraints.md[grammar route]", "exec"), {})


def test_smollm2_generation_validates(smollm2, smollm2_trie):
    """Greedy decoding of SmolLM2 under the recursive schema's masks ends in a valid text."""
    constraint = build_grammar(TREE, Options()).grammar.compile(smollm2_trie)
    prompt = 'A tree as JSON: {"name":"root","kids":[{"name":"leaf"}]}\nAnother tree as JSON: '
    model_state = smollm2.prefill([smollm2.encode(prompt)])
    state, text = constraint.initial(), b""
    for _ in range(80):
        logits = smollm2.logits(model_state)[0].clone()
        allowed = torch.from_numpy(unpack(constraint.mask([state]))[0, :logits.shape[0]])
        token = int(torch.where(allowed, logits, torch.tensor(float("-inf"))).argmax())
        if token in smollm2.vocab.eos_ids:
            break
        state = constraint.advance(state, token)
        text += smollm2.vocab.token_bytes[token]
        model_state, _ = smollm2.extend(model_state, torch.tensor([[token]]))
    assert constraint.is_complete(state), text
    jsonschema.validate(json.loads(text), TREE)


def test_module_docstring_example_runs():
    from genweave.runtime.constraints.json_schema import grammar_route

    result = doctest.testmod(grammar_route)
    assert result.attempted > 0 and result.failed == 0
