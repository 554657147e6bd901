"""The Python examples of docs/ run as written, and the .gen examples of the docs check."""

import re
from pathlib import Path

import pytest

import genweave

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("block", _blocks(DOCS / "language.md", "gen"))
def test_language_examples_check(block):
    genweave.compile(block)


def test_testing_example_runs():
    (block,) = [b for b in _blocks(DOCS / "python.md", "python") if "assert_matches" in b]
    exec(compile(block, "docs/python.md", "exec"), {})


def test_readme_program_is_the_demo():
    readme = (DOCS.parent / "README.md").read_text()
    (block,) = _blocks(DOCS.parent / "README.md", "gen")
    assert block == (DOCS.parent / "examples" / "hello.gen").read_text()
    assert "make demo" in readme and "make test" in readme
    genweave.compile(block)


@pytest.mark.parametrize("index", range(len(_blocks(DOCS / "testing.md", "python"))))
def test_testing_guide_examples_run(index):
    block = _blocks(DOCS / "testing.md", "python")[index]
    exec(compile(block, f"docs/testing.md[{index}]", "exec"), {"__name__": "docs_example"})


@pytest.mark.parametrize("block", _blocks(DOCS / "bytes.md", "gen"))
def test_bytes_guide_programs_check(block):
    genweave.compile(block)


@pytest.mark.parametrize("block", _blocks(DOCS / "speculative.md", "gen"))
def test_speculative_guide_programs_check(block):
    genweave.compile(block)


@pytest.mark.parametrize("index", range(len(_blocks(DOCS / "speculative.md", "python"))))
def test_speculative_guide_examples_run(index):
    block = _blocks(DOCS / "speculative.md", "python")[index]
    exec(compile(block, f"docs/speculative.md[{index}]", "exec"), {"__name__": "docs_example"})
