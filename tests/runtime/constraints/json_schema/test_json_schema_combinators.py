"""``oneOf``, ``not``, ``if``/``then``/``else``, ``contains``, ``uniqueItems`` and the added formats: each compiled
language is compared with ``jsonschema`` on every value of a small universe (exact: the same
verdicts; approximated: a subset, with the place reported), and seeded samples validate."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from json_schema_helpers import assert_valid, sample_texts, validator

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.json_schema import json_schema

SCALARS = [None, True, False, 0, 1, -3, 2.5, "", "a", "ab", "abc"]
SMALL = [None, 1, "a", "ab"]


def universe() -> list:
    """Scalars, arrays of up to 3 small values, and objects over the names a, b, c."""
    values = list(SCALARS)
    for n in range(4):
        values += [list(t) for t in itertools.product(SMALL, repeat=n)]
    for choice in itertools.product([...] + SMALL + [[1]], repeat=3):
        values.append({k: v for k, v in zip("abc", choice, strict=True) if v is not ...})
    return values


VALUES = universe()


def verdicts(schema, **options):
    """(jsonschema's verdict, the language's verdict) for every value of the universe."""
    language = json_schema(schema, **options)
    check = validator(schema)
    return language, [(check.is_valid(v), language.canonical_text(v) is not None) for v in VALUES]


EXACT = {
    "one_of_objects": {"type": "object", "oneOf": [
        {"properties": {"a": {"type": "integer"}}, "required": ["a"]},
        {"properties": {"b": {"type": "string"}}, "required": ["b"]}]},
    "one_of_no_required": {"oneOf": [
        {"type": "object", "properties": {"a": {"const": 1}, "b": {"type": "string"}}, "additionalProperties": False},
        {"type": "object", "properties": {"a": {"const": "a"}, "c": {"type": "string"}}, "additionalProperties": False}]},
    "one_of_subsumed": {"oneOf": [{"type": "object", "properties": {"a": {"type": "integer"}}}, {"type": "object"}]},
    "one_of_scalars": {"oneOf": [{"type": "string", "maxLength": 2}, {"type": "string", "pattern": "b"},
                                 {"type": "integer"}, {"enum": [1, "a", None]}]},
    "not_object": {"type": "object", "not": {"properties": {"a": {"type": "string"}}, "required": ["b"],
                                            "minProperties": 2}},
    "not_all_nots": {"oneOf": [{"not": {"required": ["a", "b", "c"]}},
                               {"allOf": [{"not": {"required": ["a"]}}, {"not": {"required": ["b"]}}]}]},
    "not_array": {"type": "array", "not": {"prefixItems": [{"type": "integer"}], "maxItems": 2, "minItems": 1}},
    "if_then_else": {"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"type": ["integer", "object"]}},
    "if_object": {"type": "object", "properties": {"a": {"type": ["integer", "string"]}},
                  "if": {"properties": {"a": {"const": 1}}, "required": ["a"]},
                  "then": {"required": ["b"]}, "else": {"not": {"required": ["c"]}}},
    "dependent_not": {"type": "object", "not": {"dependentRequired": {"a": ["b"]}}},
    "one_of_items": {"type": "array", "oneOf": [{"items": {"type": "integer"}}, {"items": {"type": "string"}}]},
    "contains_counts": {"type": "array", "contains": {"type": "string"}, "minContains": 1, "maxContains": 2},
    "two_contains": {"allOf": [{"contains": {"type": "string"}}, {"contains": {"const": 1}, "maxContains": 1}]},
    "not_contains": {"type": "array", "not": {"contains": {"type": "null"}, "minContains": 2}},
    "unique_enum": {"type": "array", "items": {"enum": [1, "a", None]}, "uniqueItems": True, "minItems": 1},
    "unique_bounded_integers": {"type": "array", "items": {"type": "integer", "minimum": -3, "maximum": 1},
                                "uniqueItems": True, "maxItems": 3},
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_languages(name):
    language, pairs = verdicts(EXACT[name])
    assert not language.compiled().approximated
    wrong = [v for v, (valid, hit) in zip(VALUES, pairs, strict=True) if valid != hit]
    assert not wrong, wrong[:5]
    assert sum(valid for valid, _ in pairs) > 0
    texts = sample_texts(language.to_dfa(), seed=len(name), count=20)
    assert_valid(EXACT[name], texts)


APPROXIMATED = {
    "unique_strings": ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems"),
    "not_additional": ({"type": "object", "not": {"additionalProperties": {"type": "integer"}, "required": ["a"]}},
                       "not"),
    "not_unique": ({"type": "array", "not": {"uniqueItems": True, "maxItems": 2}}, "not"),
    "not_format": ({"type": "string", "not": {"format": "date", "maxLength": 2}}, "not"),
}


@pytest.mark.parametrize("name", sorted(APPROXIMATED))
def test_approximations_are_subsets_and_reported(name):
    schema, keyword = APPROXIMATED[name]
    language, pairs = verdicts(schema)
    assert keyword in {k for k, _ in language.compiled().approximated}
    assert all(valid for valid, hit in pairs if hit)  # nothing invalid is accepted
    assert any(hit for _, hit in pairs)
    assert_valid(schema, sample_texts(language.to_dfa(), seed=7, count=20))


def test_unique_items_relaxed_allows_repeats():
    schema = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    assert not json_schema(schema).to_dfa().accepts(b'["a","b"]')  # the subset: at most one item
    relaxed = json_schema(schema, relax={"uniqueItems"})
    assert relaxed.relaxed and relaxed.to_dfa().accepts(b'["a","a"]')


FORMATS = {
    "uri-reference": (['"/a/b?c"', '"../x#f"', '"https://x.org/"', '""'], ['"a b"', '"%zz"']),
    "json-pointer": (['""', '"/a~1b/0"', '"/é"'], ['"a"', '"/~2"']),
    "relative-json-pointer": (['"0"', '"1/a"', '"2#"'], ['"/a"', '"01"']),
    "duration": (['"P1Y2M"', '"PT5M"', '"P3W"', '"P1DT2H"'], ['"P"', '"PT"', '"1Y"', '"P1H"']),
    "byte": (['""', '"aGk="', '"YWJj"'], ['"abc"', '"a==="']),
    "regex": (['"^[a-z]+$"', '"a.b*"', '"\\\\d+"'], ['"("', '"a{"']),
    "uri-template": (['"/users/{id}"', '"http://x/{+path}{?q,r}"'], ['"{"', '"{a b}"']),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_added_formats(name):
    schema = {"type": "string", "format": name}
    dfa = json_schema(schema).to_dfa()
    good, bad = FORMATS[name]
    assert [dfa.accepts(t.encode()) for t in good] == [True] * len(good)
    assert [dfa.accepts(t.encode()) for t in bad] == [False] * len(bad)
    assert_valid(schema, sample_texts(dfa, seed=3, count=20))


def test_formats_no_draft_defines_are_annotations():
    language = json_schema({"type": "object", "properties": {"p": {"type": "string", "format": "path"}}})
    assert language.compiled().ignored == (("format", "/properties/p"),)
    assert language.to_dfa().accepts(b'{"p":"any text"}')
    with pytest.raises(GenCheckError, match="idn-hostname"):  # defined, but not enforced here
        json_schema({"type": "string", "format": "idn-hostname"})


def test_docs_example_runs():
    docs = Path(__file__).resolve().parents[4] / "docs" / "constraints.md"
    blocks = re.findall(r"```python\n(.*?)```", docs.read_text(), flags=re.S)
    (block,) = [b for b in blocks if "approximated" in b]
    exec(compile(block, "docs/constraints.md", "exec"), {})
