"""Robustness: mutated programs (token insertions, deletions, swaps on the examples) and random
bytes raise only genweave's own errors, never another exception, a hang or a RecursionError.
Whatever parses and checks also lowers, optimizes (IR verified), formats and explains."""

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genweave.compiler.check import check
from genweave.compiler.explain import explain_program
from genweave.compiler.features import LANGUAGE
from genweave.compiler.lower import lower
from genweave.dsl.errors import GenError
from genweave.dsl.format import format_module
from genweave.dsl.parser import parse, parse_bytes

ROOT = Path(__file__).resolve().parents[2]
_TOKEN = re.compile(r'[rR]?"""[\s\S]*?"""|[rR]?"(?:[^"\\\n]|\\.)*"|#[^\n]*|\n[ \t]*|[ \t]+|\w+|\S')


def _seeds() -> list[str]:
    files = [*ROOT.glob("examples/*.gen"), *ROOT.glob("stdlib/*.gen"), *ROOT.glob("tests/dsl/errors/*.gen")]
    seeds = [p.read_text() for p in sorted(files)]
    for doc in ("docs/language.md",):
        seeds += re.findall(r"^```gen(?: design)?\n(.*?)^```", (ROOT / doc).read_text(), flags=re.S | re.M)
    for fixture in sorted(ROOT.glob("tests/compiler/fixtures/*.txt")):
        seeds += [b.split("--- input")[0].split("\n", 1)[1] for b in fixture.read_text().split("=== ")[1:]]
    return seeds


SEEDS = _seeds()
VOCABULARY = sorted({t for s in SEEDS for t in _TOKEN.findall(s) if t.strip()} | {
    "(", ")", "[", "]", ":", "\n    ", "\n", "    ", '"', '"""', "{", "}", "-", "|", "&", "where", "for", "if",
    "else", "let", "gen", "smc", "0", "-1", "1e999", "\\", "\t", "é"})


def run_everything(module) -> None:
    check(module, supported=LANGUAGE)
    text = format_module(module)
    try:
        reparsed = parse(text)
    except GenError as err:  # the formatter wrote something the parser rejects: a bug
        raise AssertionError(f"formatted source does not parse:\n{text}") from err
    assert reparsed == module
    for program in lower(module).values():
        explain_program(program)


def exercise(source: str) -> None:
    try:
        module = parse(source, "mutant.gen")
        run_everything(module)
    except GenError:
        pass


@st.composite
def mutants(draw) -> str:
    tokens = _TOKEN.findall(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["insert", "delete", "swap", "duplicate"]))
        i = draw(st.integers(0, max(len(tokens) - 1, 0)))
        if kind == "insert" or not tokens:
            tokens.insert(i, draw(st.sampled_from(VOCABULARY)))
        elif kind == "delete":
            del tokens[i]
        elif kind == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        else:
            tokens.insert(i, tokens[i])
    return "".join(tokens)


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_settings(5000)
@given(mutants())
def test_mutated_programs_raise_only_genweave_errors(source):
    exercise(source)


@_settings(1000)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_genweave_errors(data):
    try:
        parse_bytes(data, "random.gen")
    except GenError:
        pass


def test_the_seeds_themselves():
    for source in SEEDS:
        exercise(source)
    assert len(SEEDS) >= 60
