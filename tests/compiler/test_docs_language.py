"""Every example of docs/language.md and of the design's LANGUAGE.md parses and checks at the
language level; the examples of docs/language.md also compile for today's runtime; the Python
builder example runs; `genweave fmt` and `genweave explain` work as documented."""

import re
from pathlib import Path

import pytest

import genweave
from genweave.cli import main
from genweave.compiler.check import check
from genweave.compiler.features import LANGUAGE
from genweave.dsl.parser import parse

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "language.md"
DESIGN = ROOT.parent / "shared" / "design" / "LANGUAGE.md"


def blocks(path: Path, info: str) -> list[str]:
    return re.findall(rf"^```{info}\n(.*?)^```", path.read_text(), flags=re.S | re.M)


LANGUAGE_BLOCKS = blocks(DOC, "gen")


def test_the_reference_has_examples():
    assert len(blocks(DOC, "gen")) >= 9
    assert DESIGN.is_file(), "the design notes sit beside the project, in ../shared/design"


@pytest.mark.parametrize("block", LANGUAGE_BLOCKS + blocks(DESIGN, "gen"))
def test_examples_parse_and_check(block):
    check(parse(block), supported=LANGUAGE)


@pytest.mark.parametrize("block", blocks(DOC, "gen"))
def test_runnable_examples_compile_for_the_runtime(block):
    genweave.compile(block)


def test_python_builder_example_runs(capsys):
    (block,) = blocks(DOC, "python")
    exec(compile(block, "docs/language.md", "exec"), {})
    assert "program haiku(topic: str) -> str:" in capsys.readouterr().out


def test_error_example_is_the_corpus_message():
    (example,) = [b for b in blocks(DOC, "text") if "lookahead" in b]
    golden = (ROOT / "tests" / "dsl" / "errors" / "20_regex_lookahead.expected").read_text()
    assert example == golden


def test_explain_and_fmt_commands(tmp_path: Path, capsys):
    path = tmp_path / "p.gen"
    path.write_text('program p( ) -> str :\n    "Pick: "\n    x = gen choice ["a","b"]\n    return x\n')
    assert main(["fmt", "--check", str(path)]) == 1
    assert main(["fmt", str(path)]) == 0
    assert path.read_text() == 'program p() -> str:\n    "Pick: "\n    x = gen choice ["a", "b"]\n    return x\n'
    assert main(["fmt", "--check", str(path)]) == 0
    capsys.readouterr()
    assert main(["explain", str(path)]) == 0
    out = capsys.readouterr().out
    assert "-- after fold_sampler_chains" in out and "-- after mark_heal_boundaries" in out
    (documented,) = [b for b in blocks(DOC, "text") if "cost/step" in b]
    assert documented in out
    assert main(["explain", str(path), "--program", "q"]) == 2
