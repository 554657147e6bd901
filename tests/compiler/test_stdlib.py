"""The standard library: `use std.NAME` loads stdlib/NAME.gen; std.patterns' regexes are regular
languages that accept and reject what they should (the runtime's DFA agrees with Python's re)."""

import json
import re

import pytest
from lark import Lark

from genweave.compiler.check import check
from genweave.compiler.features import LANGUAGE
from genweave.compiler.lower import lower
from genweave.compiler.modules import build_scope, stdlib_modules, stdlib_path
from genweave.dsl.parser import parse, parse_file
from genweave.runtime.constraints.regex import regex_dfa

PATTERNS = {d.name: d.pattern.constant for d in parse_file(stdlib_path("patterns")).decls}

EXAMPLES = {
    "email": (["ann@example.com", "a.b+c@mail.co.uk", "x_y%z@d-1.io"],
              ["ann@", "@example.com", "ann@example", "ann@@example.com", "ann@example.c"]),
    "iso_date": (["2024-02-29", "1999-12-31", "0001-01-01"], ["2024-13-01", "2024-00-10", "24-01-01", "2024-1-1"]),
    "iso_time": (["00:00", "23:59:59", "12:30"], ["24:00", "12:60", "1:30"]),
    "date_time": (["2024-05-01T12:30:00Z", "2024-05-01T12:30:00.123+02:00"],
                  ["2024-05-01 12:30:00Z", "2024-05-01T12:30Z", "2024-05-01T12:30:00"]),
    "uuid": (["123e4567-e89b-12d3-a456-426614174000", "ABCDEF01-2345-6789-abcd-ef0123456789"],
             ["123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400g"]),
    "ipv4": (["0.0.0.0", "192.168.1.10", "255.255.255.255"], ["256.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4."]),
    "url": (["https://example.com", "http://a.b.c:8080/x/y?q=1&r=2#top", "https://x.org/path_(1)"],
            ["ftp://example.com", "https//example.com", "https://", "https://exa mple.com"]),
    "integer": (["0", "-7", "1234567890"], ["007", "-", "1.0", "+3"]),
    "decimal": (["0", "-0.5", "3.14159", "42"], ["3.", ".5", "01.2", "1e5"]),
}


def test_stdlib_modules():
    assert set(stdlib_modules()) >= {"patterns", "json"}
    assert stdlib_path("nope") is None
    for name in stdlib_modules():
        check(parse_file(stdlib_path(name)), supported=LANGUAGE)


def test_patterns_has_the_promised_formats():
    assert set(PATTERNS) == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_patterns_accept_and_reject(name):
    dfa = regex_dfa(PATTERNS[name])
    good, bad = EXAMPLES[name]
    for text in good:
        assert re.fullmatch(PATTERNS[name], text) and dfa.accepts(text.encode()), text
    for text in bad:
        assert not re.fullmatch(PATTERNS[name], text) and not dfa.accepts(text.encode()), text


def test_use_std_resolves_qualified_and_unqualified_names():
    module = parse('use std.patterns\nuse std.json (number)\nprogram p() -> str:\n'
                   '    a = gen patterns.uuid\n    b = gen number\n    c = gen json.string\n    return a\n')
    with pytest.raises(Exception, match="unknown constraint 'json.string'"):
        check(module, supported=LANGUAGE)
    module = parse('use std.patterns\nuse std.json (number)\nprogram p() -> str:\n'
                   '    a = gen patterns.uuid\n    b = gen number\n    return a\n')
    check(module, supported=LANGUAGE)
    hole_a, hole_b = lower(module)["p"].holes()
    assert hole_a.constraint.pattern == PATTERNS["uuid"]
    assert re.fullmatch(hole_b.constraint.pattern, "-1.5e3")
    assert build_scope(module).lookup("patterns.email")[1].name == "email"


def test_std_json_value_grammar_and_regexes():
    module = parse('use std.json\nprogram p() -> str:\n    v = gen json.value\n    s = gen json.string\n'
                   '    a = gen json.any\n    return v\n')
    check(module, supported=LANGUAGE)
    value, string, anything = lower(module)["p"].holes()
    parser = Lark(value.constraint.text, start="start", parser="lalr")
    for doc in ['{"a": [1, 2.5e3, true, null], "b": {"c": "d\\n"}}', " [ ] ", '"x"', "-0.5"]:
        parser.parse(doc)
        json.loads(doc)
    for text, ok in (('"a\\"b"', True), ('"a\nb"', False), ('"\\u00e9"', True), ("'a'", False)):
        assert bool(re.fullmatch(string.constraint.pattern, text)) == ok, text
    assert anything.constraint.schema == "{}"
