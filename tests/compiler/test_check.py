"""The checker: every problem found is reported with its own span, several at once; constructs the
runtime cannot run are named; imports resolve; warnings for unused names."""

from pathlib import Path

import pytest

from genweave.compiler.check import check
from genweave.compiler.features import FEATURES, LANGUAGE, RUNTIME, SupportedFeatures
from genweave.dsl.errors import GenCheckError
from genweave.dsl.parser import parse, parse_file

BASELINE = SupportedFeatures()  # the first runtime: text, roles, plain holes, temperature
P = "program p() -> str:\n"


def errors_of(source: str, supported=LANGUAGE, file: str = "bad.gen"):
    with pytest.raises(GenCheckError) as info:
        check(parse(source, file), supported=supported)
    return info.value.errors


CHECK_ERRORS = [
    # (source, line, col, message fragment)
    (P + '    "{nope}"\n    return "x"\n', 2, 7, "unknown name 'nope'"),
    (P + '    x = gen max 2 tokens\n    return y\n', 3, 12, "unknown name 'y'"),
    ('program p(a: str, a: str) -> str:\n    return a\n', 1, 19, "parameter 'a' is declared twice"),
    ('program p(a: text) -> str:\n    return a\n', 1, 14, "unknown parameter type 'text'"),
    (P + '    x = gen max 2 tokens\n    x = gen max 2 tokens\n    return x\n', 3, 5, "'x' is already defined"),
    (P + '    x = gen max 2 tokens\n', 1, 1, "has no `return`"),
    (P + '    return "a"\n    "b"\n', 3, 5, "never reached"),
    (P + '    user: "hi"\n    return "a"\n', 2, 5, "`user:` needs a chat model"),
    ('model m = "x" chat\n' + P + '    user:\n        assistant: "x"\n    return "a"\n', 4, 9,
     "role blocks do not nest"),
    ('model m = "x" chat\n' + P + '    user:\n        return "a"\n', 4, 9, "`return` inside a role block"),
    (P + '    if true:\n        return "a"\n    return "b"\n', 3, 9, "last statement of the target"),
    (P + '    x = gen max 0 tokens\n    return x\n', 2, 5, "needs N >= 1"),
    (P + '    x = gen stop ""\n    return x\n', 2, 18, "the stop string is empty"),
    (P + '    x = gen keep stop\n    return x\n', 2, 5, "`keep stop` needs a `stop` string"),
    (P + '  target:\n    return "a"\n  infer:\n    sample top_q 0.5\n', 5, 12, "unknown sampler 'top_q'"),
    (P + '  target:\n    return "a"\n  infer:\n    sample temperature -1\n', 5, 24, "parameter t must be"),
    (P + '  target:\n    return "a"\n  infer:\n    sample top_p 0.9 top_k 3\n', 5, 12, "top_p has no parameter"),
    (P + '  target:\n    return "a"\n  infer:\n    greedy\n    sample\n', 6, 5, "conflicts with `greedy`"),
    (P + '  target:\n    return "a"\n  infer:\n    draws 0\n', 5, 5, "needs N >= 1"),
    (P + '  target:\n    return "a"\n  infer:\n    beam 0\n', 5, 10, "width must be an integer >= 1"),
    (P + '  target:\n    return "a"\n  infer:\n    smc particles 4 ess 1.5\n', 5, 25, "ess must be a number in [0, 1]"),
    (P + '  target:\n    return "a"\n  infer:\n    smc particles 4 resample bogus\n', 5, 30, "one of multinomial"),
    (P + '  target:\n    return "a"\n  infer:\n    smc particles 4 partcles 3\n', 5, 30, "did you mean 'particles'"),
    (P + '  target:\n    return "a"\n  infer:\n    speculate warp k 3\n', 5, 5, "unknown speculative method"),
    (P + '  target:\n    return "a"\n  infer:\n    boundary words\n', 5, 5, "unknown boundary 'words'"),
    ('model m = "a"\nmodel m = "b"\n', 2, 1, "'m' is declared twice"),
    ('model a = "x"\nmodel e = ensemble(a, b)\n', 2, 11, "ensemble member 'b'"),
    (P + '    x = gen regex r"a|*"\n    return x\n', 2, 23, "invalid regex: nothing to repeat"),
    (P + '    x = gen regex r"a\\bb"\n    return x\n', 2, 22, "word boundary"),
    (P + '    x = gen choice []\n    return x\n', 2, 13, "at least one option"),
    (P + '    x = gen int | "none"\n    return x\n', 2, 13, "different types (int and str)"),
    (P + '    x = gen int & bool\n    return x\n', 2, 13, "cannot intersect int and bool"),
    (P + '    x = gen json word\n    return x\n', 2, 18, "unknown constraint 'word'"),
    ('regex w = r"a"\n' + P + '    x = gen json w\n    return x\n', 3, 18, "needs a schema"),
    ('program q() -> str:\n    return "q"\n' + P + '    x = gen q\n    return x\n', 4, 13, "is not a constraint"),
    (P + '    let a = [1, "x"]\n    return "a"\n', 2, 17, "list items have different types"),
    (P + '    let a = 3\n    return a.name\n', 3, 12, "a int value has no field 'name'"),
    (P + '    let a = 3\n    return a[0]\n', 3, 12, "cannot be indexed"),
    (P + '    for i in 3:\n        "x"\n    return "a"\n', 2, 14, "`for` needs a list"),
    (P + '    factor "x"\n    return "a"\n', 2, 12, "a factor must be float, not str"),
    (P + '    return len(1)\n', 2, 16, "len() needs a str or a list"),
    (P + '    return range("a")\n', 2, 18, "range() needs int arguments"),
    (P + '    return wat(1)\n', 2, 12, "unknown function 'wat'"),
    ('regex w = r"a"\n' + P + '    return w\n', 3, 12, "'w' is a regex declaration, not a value"),
    ('program q(a: int) -> str:\n    return "q"\n' + P + '    let x = q("s")\n    return x\n', 4, 15,
     "argument 'a' of 'q' must be int"),
    ('program q(a: int) -> str:\n    return "q"\n' + P + '    let x = q()\n    return x\n', 4, 13,
     "needs argument 'a'"),
    ('program q(a: int) -> str:\n    return "q"\n' + P + '    let x = q(b=1, a=2)\n    return x\n', 4, 17,
     "has no parameter 'b'"),
    ('predicate ok = extern "m:f"\n' + P + '    return ok\n', 3, 12, "'ok' is a predicate; call it"),
    ('predicate ok = extern "m:f" prefix\n' + P + '  target:\n    x = gen regex r"a+" where ok(x)\n    return x\n'
     '  infer:\n    smc particles 2:\n        twist ok\n', 8, 9, "needs a declared potential"),
    (P + '    for i in range(2):\n        x = gen max 1 tokens\n    return x\n', 4, 12, "inside the `for` loop"),
    (P + '    if true:\n        x = gen int\n    else:\n        x = gen bool\n    return x\n', 6, 12,
     "different types (int and bool)"),
    ('program a() -> str:\n    let x = b()\n    return x\nprogram b() -> str:\n    let y = a()\n    return y\n',
     2, 5, "calls itself"),
    (P + '  target:\n    x = gen choice ["a", "b"]\n    factor 1.0\n    return x\n  infer:\n    sample\n', 4, 5,
     "ignores `factor`"),
    ('model m = "x"\n' + P + '  target:\n    return "a"\n  infer:\n    boundary bytes\n', 6, 5,
     "needs a byte-level model"),
    (P + '  target:\n    x = gen regex r"[ab]+" where x != "a"\n    return x\n  infer:\n    beam 2\n', 3, 13,
     "`beam` cannot enforce the condition on hole 'x'"),
]


@pytest.mark.parametrize(("source", "line", "col", "fragment"), CHECK_ERRORS)
def test_check_errors_name_problem_and_place(source, line, col, fragment):
    err = errors_of(source)[0]
    rendered = err.render()
    assert fragment in err.message, rendered
    assert (err.span.line, err.span.col) == (line, col), rendered
    assert rendered.startswith(f"bad.gen:{line}:{col}: ")
    assert "^" in rendered


UNSUPPORTED = [
    # (source, construct named in the message)
    (P + '    x = gen regex r"a+"\n    return x\n', "constrained holes"),
    ('model m = "a" bytes\n', "byte-level models"),
    (P + '    let x = "a"\n    return x\n', "`let`"),
    (P + '    if true:\n        "a"\n    return "a"\n', "`if`/`else`"),
    (P + '    for i in range(2):\n        "a"\n    return "a"\n', "`for` loops"),
    (P + '  target:\n    return "a"\n  infer:\n    smc particles 4\n', "`smc` inference"),
    (P + '  target:\n    return "a"\n  infer:\n    awrs\n', "`awrs` inference"),
    (P + '  target:\n    return "a"\n  infer:\n    beam 3\n', "`beam` search"),
    (P + '  target:\n    return "a"\n  infer:\n    sample top_k 3\n', "sampler `top_k`"),
    (P + '  target:\n    x = gen max 3 tokens\n    return x\n  infer:\n    for x:\n        greedy\n',
     "per-hole inference"),
    (P + '    "{1 + 2}"\n    return "a"\n', "computed expressions"),
    ('model m = "x" chat\n' + P + '    "raw"\n    return "a"\n', "outside a role block"),
]


@pytest.mark.parametrize(("source", "construct"), UNSUPPORTED)
def test_constructs_the_runtime_cannot_run_are_named(source, construct):
    messages = [e.message for e in errors_of(source, BASELINE)]
    assert any(construct in m and "not supported yet" in m for m in messages), messages
    check(parse(source), supported=LANGUAGE)  # the language itself accepts it


def test_feature_sets():
    assert LANGUAGE.features == frozenset(FEATURES)
    assert RUNTIME.features <= LANGUAGE.features
    with pytest.raises(KeyError):
        RUNTIME.allows("teleport")


def test_several_errors_reported_at_once():
    errors = errors_of('program p(a: nope) -> str:\n    "{b}"\n    return c\n')
    assert [e.message for e in errors] == ["unknown parameter type 'nope'", "unknown name 'b'", "unknown name 'c'"]
    rendered = GenCheckError("x", errors=errors).render()
    assert rendered.count("bad.gen:") == 3


def test_unused_names_are_warnings():
    report = check(parse('program p(a: str) -> str:\n    x = gen max 2 tokens\n    return "done"\n', "w.gen"))
    assert sorted(w.message for w in report.warnings) == ["'a' is never used", "'x' is never used"]
    report = check(parse('use std.patterns\nregex w = r"a"\n' + P + '    return "x"\n'), supported=LANGUAGE)
    assert sorted(w.message for w in report.warnings) == ["module 'patterns' is imported but never used",
                                                         "regex 'w' is declared but never used"]


WELL_TYPED = '''
use std.patterns
use std.json (string)
model lm = "smollm2-135m"
model small = "tiny"
regex word = r"[a-z]+"
schema Person = json """{"type": "object", "properties": {"name": {"type": "string"}}}"""
sampler creative = temperature 0.9 | top_p 0.95
predicate short = extern "preds:short" prefix
potential fluent = extern "preds:fluent" prefix

program intro(topic: str) -> str:
    "About {topic}: "
    line = gen word max 5 tokens
    return line

program p(a: str, n: int, tags: list[str]) -> str:
  target:
    "Hello {a} {n + 1} {tags[0]}\\n"
    let k = n * 2 - 1
    let head = intro(a)
    if k > 3 and not a == "x":
        x = gen word & regex r"[a-c]+" max 5 tokens
    elif "a" in tags:
        x = gen "lit"
    else:
        x = gen choice ["a", "b"] where short(x)
    for i in range(n):
        "Item {i}: "
        y = gen patterns.email stop "\\n"
        factor fluent(y)
    z = gen string
    who = gen Person
    condition len(x) < 10 or who.name == "Ann"
    return x + head + who.name
  infer:
    sample creative | min_p 0.05
    smc particles 8 ess 0.5 resample systematic:
        propose sample temperature 0.8
        twist fluent every 4 tokens
    speculate draft small k 4
    heal
    draws 2
    seed 1
    for z:
        greedy
'''


def test_a_program_using_every_construct_checks():
    report = check(parse(WELL_TYPED, "full.gen"), supported=LANGUAGE)
    assert [w.message for w in report.warnings] == []


def test_local_modules_and_qualified_names(tmp_path: Path):
    (tmp_path / "lib.gen").write_text('regex word = r"[a-z]+"\nprogram greet(who: str) -> str:\n'
                                      '    "Hi {who}. "\n    w = gen word\n    return w\n')
    main = tmp_path / "main.gen"
    main.write_text('use "lib.gen"\nuse "lib.gen" (word)\nprogram p() -> str:\n    a = gen lib.word\n'
                    '    b = gen word\n    let c = lib.greet("x")\n    return a + b + c\n')
    check(parse_file(main), supported=LANGUAGE)
    main.write_text('use "lib.gen"\nprogram p() -> str:\n    a = gen lib.wrd\n    return a\n')
    with pytest.raises(GenCheckError, match="unknown constraint 'lib.wrd'"):
        check(parse_file(main), supported=LANGUAGE)


def test_errors_in_imported_modules_name_their_file(tmp_path: Path):
    (tmp_path / "lib.gen").write_text('regex bad = r"(a"\n')
    main = tmp_path / "main.gen"
    main.write_text('use "lib.gen"\nprogram p() -> str:\n    a = gen lib.bad\n    return a\n')
    errors = errors_of(main.read_text(), file=str(main))
    assert errors[0].span.file.endswith("lib.gen") and "invalid regex" in errors[0].message


def test_import_cycles_and_missing_files(tmp_path: Path):
    (tmp_path / "a.gen").write_text('use "b.gen"\n')
    (tmp_path / "b.gen").write_text('use "a.gen"\n')
    with pytest.raises(GenCheckError, match="import cycle"):
        check(parse_file(tmp_path / "a.gen"), supported=LANGUAGE)
    (tmp_path / "c.gen").write_text('use "missing.gen"\n')
    with pytest.raises(GenCheckError, match="no module file 'missing.gen'"):
        check(parse_file(tmp_path / "c.gen"), supported=LANGUAGE)


def test_schema_and_grammar_files(tmp_path: Path):
    (tmp_path / "p.json").write_text('{"type": "object", "required": ["a"], "unevaluatedProperties": {}}')
    (tmp_path / "g.lark").write_text('start: "a"+\n')
    main = tmp_path / "main.gen"
    main.write_text('schema P = json file "p.json"\ngrammar G = lark file "g.lark"\nprogram p() -> str:\n'
                    '    x = gen G\n    y = gen P\n    return x\n')
    errors = errors_of(main.read_text(), file=str(main))
    assert [e.message for e in errors] == ["p.json:1:39: JSON Schema keyword 'unevaluatedProperties' is not supported"]


def test_schemas_enforced_on_a_subset_are_warnings_that_point_at_the_keyword(tmp_path: Path):
    source = ('schema Tags = json """{"type": "array", "items": {"type": "string"}, "uniqueItems": true}"""\n'
              'program p() -> Tags:\n    x = gen Tags\n    return x\n')
    (warning,) = check(parse(source)).warnings
    assert "'uniqueItems'" in warning.message and "subset" in warning.message
    assert (warning.span.line, warning.span.col) == (1, 70)  # the key "uniqueItems"
    (tmp_path / "f.json").write_text('{"type": "string", "format": "path"}')
    main = tmp_path / "main.gen"
    main.write_text('schema F = json file "f.json"\nprogram p() -> F:\n    x = gen F\n    return x\n')
    (warning,) = check(parse(main.read_text(), str(main))).warnings
    assert warning.message.startswith("f.json:1:20: the JSON Schema format at / is defined by no draft")


def test_regex_anchors_inside_a_pattern_check_and_run():
    """``$`` inside an alternative is an end-of-text test (the runtime compiles it exactly)."""
    import genweave
    from genweave.testing import ToyLM

    source = (P + '  target:\n    "q"\n    x = gen regex r"a(b|$)" max 3 tokens\n    return x\n'
              '  infer:\n    enumerate x\n')
    law = genweave.compile(source).p(model=ToyLM([b"a", b"b", b"ab", b"q"], seed=3)).posterior
    assert set(law) == {"a", "ab"}
