"""Negations and conditions compiled exactly where they used to be subsets or too many cases.

* ``oneOf`` branches told apart by a member the *enclosing* schema requires are disjoint: no
  negation of the other branch is needed (it was a subset under ``additionalProperties``);
* ``if``/``then``/``else`` keyed on one member (``if: {properties: {kind: {const: ...}}}``) are
  expanded together: one case per tested value, not 2**n;
* ``not N`` whose positive cases are a subset, with ``N`` layout-neutral (no declared members),
  is the difference of two automata (``complement.py``), exact.

Each claim is checked exactly: enumerated instances are accepted (in the schema's member order,
``canonical_text``) iff ``jsonschema`` says they are valid, random walks of the automaton validate,
and ``compiled().approximated`` says no subset was used.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
from json_schema_helpers import DEV_SAMPLE, SHARED, assert_valid, sample_texts, validator

from genweave.runtime.constraints.json_schema import json_schema
from genweave.runtime.constraints.json_schema.combinators import _member_test, discriminated_conditions
from genweave.runtime.constraints.json_schema.document import Sub
from genweave.runtime.constraints.json_schema.merge import Merged


def assert_exact(schema, values) -> None:
    """Each value is in the language (some member order) iff it validates; walks validate."""
    language = json_schema(schema)
    check = validator(schema)
    wrong = [v for v in values if (language.canonical_text(v) is not None) != check.is_valid(v)]
    assert wrong == [], wrong[:5]
    assert_valid(schema, sample_texts(language.to_dfa(), seed=0, count=30))
    assert language.compiled().approximated == ()


def objects(members: dict) -> list:
    """Every object choosing, per name, one of its values or leaving it out (None)."""
    names = list(members)
    return [{n: v for n, v in zip(names, choice, strict=True) if v is not None}
            for choice in itertools.product(*([None] + members[n] for n in names))]


SCALARS = [None, True, 1, "s", [], {}]


def test_one_of_told_apart_by_a_member_the_schema_requires():
    schema = {"type": "object", "required": ["kind"], "oneOf": [
        {"properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}, "additionalProperties": False},
        {"properties": {"kind": {"const": "b"}, "y": {"type": "string"}}, "additionalProperties": False}]}
    values = objects({"kind": ["a", "b", "c"], "x": [1, "t"], "y": ["t", 2]}) + SCALARS
    assert_exact(schema, values)


def discriminated(n: int) -> dict:
    """``n`` conditions on ``kind`` (as a 125-branch schema of the dev sample has), plus an enum
    test that requires the member, and one that requires an object."""
    conditions = [{"if": {"properties": {"kind": {"const": f"k{i}"}}},
                   "then": {"properties": {"v": {"type": "integer", "minimum": i}}}} for i in range(n)]
    conditions.append({"if": {"properties": {"kind": {"enum": ["k0", "k1", "z"]}}, "required": ["kind"]},
                       "then": {"required": ["v"]}, "else": {"properties": {"w": {"type": "string"}}}})
    conditions.append({"if": {"type": "object", "properties": {"kind": {"const": "k2"}}},
                       "then": {"maxProperties": 2}, "else": {"minProperties": 1}})
    return {"allOf": conditions}


def test_conditions_on_one_member_expand_together():
    schema = discriminated(30)  # 2**32 cases one condition at a time
    values = objects({"kind": ["k0", "k1", "k2", "k7", "z", "q", 3], "v": [0, 2, 40, "s"], "w": ["t", 1]})
    assert_exact(schema, values + SCALARS)


def test_member_tests_are_recognised_only_in_the_exact_shape():
    assert _member_test({"properties": {"t": {"const": 1}}}) == ("t", [1], False, False)
    assert _member_test({"properties": {"t": {"enum": [1, 2]}}, "required": ["t"], "type": "object",
                         "description": "..."}) == ("t", [1, 2], True, True)
    for schema in ({"properties": {"t": {"const": 1}}, "minProperties": 1},  # another keyword
                   {"properties": {"t": {"const": 1, "type": "integer"}}},  # more than a value test
                   {"properties": {"t": {"const": 1}, "u": {"const": 2}}},  # two members
                   {"properties": {"t": {"const": 1}}, "required": ["u"]},
                   {"properties": {"t": {"const": 1}}, "type": "array"}, True):
        assert _member_test(schema) is None, schema
    one = Sub({"properties": {"t": {"const": 1}}}, "/if")
    assert discriminated_conditions(Merged("", conditions=((one, Sub(True, "/then"), None),)), frozenset()) is None


@pytest.mark.parametrize("schema, values", [
    ({"type": "object", "maxProperties": 2, "not": {"patternProperties": {"c": False}}},
     objects({"a": [1], "c": [1, "s"], "bc": [2], "x": [[]]})),
    ({"type": "object", "not": {"additionalProperties": {"type": "string", "maxLength": 1}, "minProperties": 1}},
     objects({"a": [1, "s", "st"], "b": ["t", None]})),
    ({"type": "array", "maxItems": 3, "not": {"prefixItems": [{"type": "string"}], "items": {"type": "null"}}},
     [list(items) for n in range(4) for items in itertools.product([1, "s", None], repeat=n)]),
])
def test_negations_of_layout_neutral_schemas_are_differences(schema, values):
    assert_exact(schema, values + SCALARS)


@pytest.mark.parametrize("schema", [
    {"type": "object", "not": {"properties": {"a": {"type": "integer"}}, "additionalProperties": False}},
    {"type": "object", "not": {"additionalProperties": {"type": "integer"}, "minProperties": 1}},  # 1e2
    {"type": "object", "not": {"additionalProperties": {"enum": ["\b"]}, "minProperties": 1}},  # "\u0008"
])
def test_negations_that_change_the_writing_stay_reported_subsets(schema):
    language = json_schema(schema)
    assert language.compiled().approximated == (("not", "/not"),)
    assert_valid(schema, sample_texts(language.to_dfa(), seed=1, count=60))


# -- the dev sample rows this work targets ------------------------------------------------------

def _rows(ids):
    if not SHARED.is_dir():
        pytest.skip(f"the shared data folder {SHARED} is missing (it sits beside the clone in CI)")
    rows = {row["id"]: row for row in map(json.loads, DEV_SAMPLE.read_text().splitlines())}
    return [rows[i] for i in ids]


@pytest.mark.parametrize("name", ["Github_easy---o55159", "Handwritten---allOfPProp4"])
def test_dev_sample_rows_compile_and_hold(name):
    row, = _rows([name])
    language = json_schema(row["schema"])
    dfa = language.to_dfa()
    assert language.compiled().approximated == ()
    assert_valid(row["schema"], sample_texts(dfa, seed=2, count=40))
    for test in row["tests"]:
        assert (language.canonical_text(test["data"]) is not None) == test["valid"], test


def test_docs_example_runs():
    docs = Path(__file__).resolve().parents[4] / "docs" / "constraints.md"
    blocks = re.findall(r"```python\n(.*?)```", docs.read_text(), flags=re.S)
    (block,) = [b for b in blocks if "difference of automata" in b]
    exec(compile(block, "docs/constraints.md[negations]", "exec"), {})
