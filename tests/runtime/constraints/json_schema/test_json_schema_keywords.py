"""JSON Schema keywords: accepted and rejected texts per keyword, and samples of every language of
a registry that ``jsonschema`` validates."""

from __future__ import annotations

import json

import pytest
from json_schema_helpers import assert_valid, sample_texts

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.json_schema import json_schema

TREE = {
    "$defs": {"node": {"type": "object", "properties": {
        "value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "required": ["value"], "additionalProperties": False}},
    "$ref": "#/$defs/node",
}

# name -> (schema, texts in the language, texts not in it)
CASES = {
    "types": ({"type": ["null", "boolean"]}, ["null", "true", "false"], ["0", '""', "nul"]),
    "integer_range": ({"type": "integer", "minimum": -5, "exclusiveMaximum": 120},
                      ["-5", "0", "119", "7"], ["-6", "120", "1.0", "-0", "007", "1e2"]),
    "number_range": ({"type": "number", "minimum": 0.5, "maximum": 2},
                     ["0.5", "1", "1.999", "2", "2.000"], ["0.49", "2.01", "-1", "1e0", "-0.0"]),
    "number_free": ({"type": "number"}, ["-1.5e-3", "0", "12", "3.25E+2"], ["01", ".5", "1.", "+1"]),
    "exclusive_float": ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                        ["0.5", "0.000001"], ["0", "1", "1.0", "0.0"]),
    "multiple_of": ({"type": "integer", "multipleOf": 7, "maximum": 30}, ["0", "-14", "28"], ["29", "35", "3"]),
    "dyadic_multiple": ({"type": "number", "multipleOf": 1.5}, ["3", "-6", "0"], ["1.5", "4"]),
    "string_lengths": ({"type": "string", "minLength": 2, "maxLength": 3},
                       ['"ab"', '"é🙂"', '"a\\n"', '"abc"'], ['"a"', '"abcd"', '""']),
    "pattern_search": ({"type": "string", "pattern": "[0-9]{3}"}, ['"x123y"', '"999"'], ['"12"', '"a1b2"']),
    "pattern_anchored": ({"type": "string", "pattern": "^[a-z]+$"}, ['"abc"'], ['"ab1"', '""', '"Ab"']),
    "date": ({"type": "string", "format": "date"}, ['"2024-02-29"', '"1999-12-31"'],
             ['"2023-02-29"', '"2024-13-01"', '"2024-04-31"', '"0000-01-01"']),
    "date_time": ({"format": "date-time", "type": "string"}, ['"2024-01-02T03:04:05Z"', '"2024-01-02T03:04:05.1+01:00"'],
                  ['"2024-01-02 03:04:05"', '"2024-01-02T24:00:00Z"']),
    "email": ({"type": "string", "format": "email"}, ['"a.b@c.io"'], ['"a@b"', '"@b.c"', '"a..b@c.io"']),
    "uuid": ({"type": "string", "format": "uuid"}, ['"123e4567-e89b-12d3-a456-426614174000"'], ['"123e4567"']),
    "ipv4": ({"type": "string", "format": "ipv4"}, ['"192.168.0.1"'], ['"256.1.1.1"', '"01.1.1.1"']),
    "ipv6": ({"type": "string", "format": "ipv6"}, ['"::1"', '"2001:db8::8a2e:370:7334"', '"::ffff:1.2.3.4"'],
             ['"1::2::3"', '"12345::"']),
    "uri": ({"type": "string", "format": "uri"}, ['"https://x.org/a?b=c#d"', '"urn:isbn:123"'], ['"x y"', '"/rel"']),
    "enum_const": ({"enum": ["a", 1, None, [1, 2], {"k": True}]}, ['"a"', "1", "null", "[1,2]", '{"k":true}'],
                   ['"b"', "2", "[2,1]"]),
    "object": ({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
                "required": ["b"], "additionalProperties": False},
               ['{"b":"x"}', '{"a":1,"b":"x"}'], ['{}', '{"a":1}', '{"b":"x","a":1}', '{"b":"x","c":1}']),
    "additional_schema": ({"type": "object", "properties": {"a": {"const": 1}}, "additionalProperties": {"type": "boolean"}},
                          ['{}', '{"a":1,"x":true,"y":false}', '{"z":true}'], ['{"x":1}', '{"a":1,"a":1}']),
    "pattern_properties": ({"type": "object", "patternProperties": {"^x_": {"type": "integer"}, "y": {"type": "string"}},
                            "additionalProperties": False},
                           ['{"x_1":1}', '{"ay":"s"}', '{}'], ['{"x_1":"s"}', '{"z":1}', '{"x_y":1}', '{"x_y":"s"}']),
    "property_names": ({"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}, "maxProperties": 2},
                       ['{"ab":1}', '{"a":1,"b":[]}'], ['{"A":1}', '{"a":1,"b":2,"c":3}']),
    "min_properties": ({"type": "object", "properties": {"a": {}, "b": {}}, "additionalProperties": False,
                        "minProperties": 1}, ['{"a":1}', '{"b":2}', '{"a":1,"b":2}'], ['{}']),
    "array": ({"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "integer"},
               "minItems": 2, "maxItems": 3}, ['["a",1]', '["a",1,2]'], ['["a"]', '[1,1]', '["a",1,2,3]', '["a","b"]']),
    "tuple_draft7": ({"$schema": "http://json-schema.org/draft-07/schema#", "type": "array",
                      "items": [{"type": "integer"}], "additionalItems": False}, ["[]", "[1]"], ["[1,2]", '["a"]']),
    "any_of": ({"anyOf": [{"type": "integer", "maximum": 3}, {"type": "string", "maxLength": 1}]},
               ["3", '"a"'], ["4", '"ab"']),
    "one_of_disjoint": ({"oneOf": [{"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}},
                                    "required": ["kind"], "additionalProperties": False},
                                   {"type": "object", "properties": {"kind": {"const": "b"}}, "required": ["kind"]}]},
                        ['{"kind":"a","x":1}', '{"kind":"b","y":2}'], ['{"kind":"c"}', '{"kind":"a","y":1}']),
    "one_of_negated": ({"type": "object", "properties": {"a": {}, "b": {}}, "additionalProperties": False,
                        "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
                       ['{"a":1}', '{"b":1}'], ['{"a":1,"b":2}', '{}']),
    "one_of_numbers": ({"oneOf": [{"type": "integer", "multipleOf": 2}, {"type": "integer", "multipleOf": 3}]},
                       ["2", "3", "4", "9"], ["6", "12", "0"]),
    "all_of": ({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                          {"properties": {"a": {"minimum": 5}, "b": {"type": "string"}}, "additionalProperties": False}]},
               ['{"a":5}', '{"a":9,"b":"x"}'], ['{"a":4}', '{"b":"x"}', '{"a":5,"c":1}']),
    "not_type": ({"not": {"type": ["array", "object", "null"]}}, ["1", '"s"', "true"], ["[]", "{}", "null"]),
    "not_required": ({"type": "object", "properties": {"a": {}, "b": {}}, "additionalProperties": False,
                      "not": {"required": ["a", "b"]}}, ['{}', '{"a":1}', '{"b":1}'], ['{"a":1,"b":1}']),
    "not_pattern": ({"type": "string", "maxLength": 3, "not": {"pattern": "^a"}}, ['"ba"', '""'], ['"ab"', '"a"']),
    "not_integer": ({"type": "number", "not": {"type": "integer"}, "maximum": 2}, ["1.5", "-0.25"], ["1", "2.0", "1e0"]),
    "not_enum": ({"type": "integer", "minimum": 0, "maximum": 3, "not": {"enum": [1, 2]}}, ["0", "3"], ["1", "2"]),
    "dependencies": ({"type": "object", "properties": {"a": {}, "b": {}, "c": {}}, "additionalProperties": False,
                      "dependentRequired": {"a": ["b"]}}, ['{}', '{"b":1}', '{"a":1,"b":2}'], ['{"a":1}', '{"a":1,"c":1}']),
    "recursion": (TREE, ['{"value":1}', '{"value":1,"children":[{"value":2,"children":[{"value":3}]}]}'],
                  ['{"children":[]}', '{"value":1,"children":[{}]}']),
    "free": ({}, ["1", '{"a":[1,{"b":null}]}', '"x"'], ["[1,]", "{a:1}"]),
    "boolean_schemas": ({"type": "object", "properties": {"a": True, "b": False}}, ['{"a":[]}', '{}'], ['{"b":1}']),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_keyword_languages(name):
    schema, good, bad = CASES[name]
    dfa = json_schema(schema, max_depth=4).to_dfa()
    assert [t for t in good if not dfa.accepts(t.encode())] == []
    assert [t for t in bad if dfa.accepts(t.encode())] == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_samples_validate(name):
    schema = CASES[name][0]
    texts = sample_texts(json_schema(schema).to_dfa(), seed=len(name), count=25)
    assert len(texts) >= 10
    assert_valid(schema, texts)


def test_whitespace_options():
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}}
    spaces = json_schema(schema, whitespace="spaces").to_dfa()
    assert spaces.accepts(json.dumps({"a": [1, 2]}).encode()) and not spaces.accepts(b'{"a":[1,2]}')
    pretty = json_schema(schema, whitespace="pretty").to_dfa()
    assert pretty.accepts(json.dumps({"a": [1, 2]}, indent=2).encode())
    assert not pretty.accepts(b'{"a":   [1]}')  # at most one space, or a newline and indentation
    custom = json_schema(schema, whitespace=r"[ ]?").to_dfa()
    assert custom.accepts(b'{ "a" : [ 1 ] }') and not custom.accepts(b'{"a":\n[1]}')


def test_recursion_is_unrolled_to_max_depth():
    deep = {"value": 1, "children": [{"value": 2, "children": [{"value": 3, "children": [{"value": 4}]}]}]}
    text = json.dumps(deep, separators=(",", ":")).encode()
    assert json_schema(TREE, max_depth=4).to_dfa().accepts(text)
    shallow = json_schema(TREE, max_depth=2)
    assert not shallow.to_dfa().accepts(text)
    assert shallow.depth_bounded  # the places where the recursion was cut are reported


def test_pydantic_model():
    pydantic = pytest.importorskip("pydantic")

    class Point(pydantic.BaseModel):
        x: int
        label: str | None = None

    dfa = json_schema(Point).to_dfa()
    assert dfa.accepts(b'{"x":1}') and dfa.accepts(b'{"x":1,"label":null}') and not dfa.accepts(b'{"label":"a"}')


@pytest.mark.parametrize(("schema", "keyword", "pointer"), [
    ({"properties": {"a": {"type": "string", "format": "idn-hostname"}}}, "format", "/properties/a"),
    ({"items": {"contains": {"type": "string"}, "maxContains": 40}}, "contains", "/items"),
    ({"items": {"unevaluatedProperties": False}}, "unevaluatedProperties", "/items"),
])
def test_refused_keywords_name_keyword_and_pointer(schema, keyword, pointer):
    with pytest.raises(GenCheckError) as caught:
        json_schema(schema)
    assert f"'{keyword}'" in caught.value.message and f"at {pointer}" in caught.value.message
    relaxed = json_schema(schema, relax=True)  # over-approximated on request, and listed
    assert relaxed.relaxed and relaxed.relaxed[0][0] in (keyword, "then")


@pytest.mark.parametrize("schema", [
    {"type": "string", "pattern": "(?=a)b"},  # lookahead
    {"$ref": "other.json#/x"},  # remote reference
    {"type": "number", "multipleOf": 0.01},  # float division disagrees with decimals
    {"type": "integer", "minimum": 3, "maximum": 1},  # empty
    {"type": "object", "required": ["a"], "properties": {"a": False}},  # empty
])
def test_unsupported_or_empty_schemas_raise(schema):
    with pytest.raises(GenCheckError):
        json_schema(schema)


def test_annotations_and_unknown_keywords_are_ignored():
    schema = {"type": "integer", "title": "t", "description": "d", "examples": [1], "$comment": "c",
              "default": 2, "x-vendor": {"type": "string"}}
    assert json_schema(schema).to_dfa().accepts(b"12")


def test_string_length_cap_is_reported():
    language = json_schema({"type": "string", "maxLength": 1000}, max_string_length=8)
    assert language.compiled().capped and language.to_dfa().accepts(b'"12345678"')
    assert not language.to_dfa().accepts(b'"123456789"')


def test_canonical_text_reorders_members():
    schema = {"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "string"}}}
    language = json_schema(schema)
    assert language.canonical_text({"a": "x", "b": 1, "z": [1]}) == '{"b":1,"a":"x","z":[1]}'
    assert language.canonical_text({"b": "not an integer"}) is None
