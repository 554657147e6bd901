"""The formatter: parse(format(ast)) == ast for generated trees, idempotence on every example,
and comments kept."""

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from syntax_strategies import modules

from genweave.dsl.format import format_module
from genweave.dsl.parser import parse, parse_file

ROOT = Path(__file__).resolve().parents[2]
LANGUAGE_MD = ROOT.parent / "shared" / "design" / "LANGUAGE.md"


def gen_blocks(path: Path) -> list[str]:
    return re.findall(r"^```gen(?: design)?\n(.*?)^```", path.read_text(), flags=re.S | re.M)


def example_sources() -> list[tuple[str, str]]:
    files = [*sorted((ROOT / "examples").glob("*.gen")), *sorted((ROOT / "stdlib").glob("*.gen"))]
    sources = [(str(p.relative_to(ROOT)), p.read_text()) for p in files]
    for doc in (ROOT / "docs" / "language.md", LANGUAGE_MD):
        sources += [(f"{doc.name}#{i}", block) for i, block in enumerate(gen_blocks(doc))]
    return sources


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(modules)
def test_parse_of_format_is_identity(module):
    text = format_module(module, comments=False)
    assert parse(text) == module, text
    assert format_module(parse(text), comments=False) == text


@pytest.mark.parametrize(("name", "source"), example_sources(), ids=lambda x: x if len(x) < 40 else None)
def test_format_is_idempotent_and_keeps_meaning(name, source):
    once = format_module(parse(source, name))
    assert parse(once) == parse(source)
    assert format_module(parse(once)) == once


def test_examples_and_stdlib_are_formatted():
    for path in [*(ROOT / "examples").glob("*.gen"), *(ROOT / "stdlib").glob("*.gen")]:
        module = parse_file(path)
        assert format_module(module) == module.source, f"run `genweave fmt {path.relative_to(ROOT)}`"


def test_canonical_layout_and_comments():
    source = ('# header\nregex w = r"a"   # trailing\n\n\n# about p\nprogram p( a:str )->str :  # p\n'
              '  target:\n    x = gen w  # gen\n\n    """one\n# not a comment\n"""\n'
              '    let y = [1,   # inside\n       2]\n    if (x == "a"):\n        return x\n    # before else\n'
              '    else:   # e\n        return "b"\n# end\n')
    assert format_module(parse(source)) == (
        '# header\nregex w = r"a"  # trailing\n\n# about p\nprogram p(a: str) -> str:  # p\n  target:\n'
        '    x = gen w  # gen\n\n    """one\n# not a comment\n"""\n    # inside\n    let y = [1, 2]\n'
        '    if x == "a":\n        return x\n    # before else\n    else:  # e\n        return "b"\n# end\n')


@pytest.mark.parametrize(("source", "expected"), [
    ("return (a + b) * -(c - d)", "return (a + b) * -(c - d)"),
    ("return not (a and b) or c", "return not (a and b) or c"),
    ("return (a < b) == c", "return (a < b) == c"),
    ("return a - (b - c)", "return a - (b - c)"),
    ("return (1).x", "return (1).x"),
    ('x = gen (regex r"a" | "b") & int where ok(x)', 'x = gen (regex r"a" | "b") & int where ok(x)'),
    ('x = gen "a" | ("b" where c)', 'x = gen "a" | ("b" where c)'),
    ("if a:\n        return 1\n    else:\n        if b:\n            return 2",
     "if a:\n        return 1\n    elif b:\n        return 2"),
])
def test_parentheses_only_where_needed(source, expected):
    module = parse(f"program p():\n    {source}\n")
    assert format_module(module) == f"program p():\n    {expected}\n"
