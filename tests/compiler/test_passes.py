"""Each pass against its fixture file (source, IR before the pass, IR after), the IR verified
after every pass, passes idempotent, and optimized programs sampling exactly like unoptimized
ones on a seeded ToyLM.

Fixture format (tests/compiler/fixtures/<pass>.txt): ``=== title``, the ``.gen`` source,
``--- input`` and the IR the pass receives, ``--- expected`` and the IR it returns. Set
GENWEAVE_UPDATE_GOLDEN=1 to rewrite the IR sections after a deliberate change, then review.
"""

import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

import genweave
from genweave.api import Program as ApiProgram
from genweave.compiler import ir
from genweave.compiler.check import check
from genweave.compiler.features import LANGUAGE
from genweave.compiler.ir_print import print_program
from genweave.compiler.lower import lower
from genweave.compiler.pipeline import PASSES, optimize
from genweave.compiler.verify import IRError, verify
from genweave.dsl.parser import parse
from genweave.testing import ToyLM

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_cases():
    for run_pass in PASSES:
        text = (FIXTURES / f"{run_pass.__name__}.txt").read_text()
        for block in re.split(r"^=== ", text, flags=re.M)[1:]:
            title, rest = block.split("\n", 1)
            source = rest.split("--- input\n")[0]
            yield pytest.param(run_pass, title, source, id=f"{run_pass.__name__}: {title}")


def before_and_after(run_pass, source: str) -> tuple[str, str]:
    module = parse(source)
    check(module, supported=LANGUAGE)
    before, after = [], []
    for program in lower(module).values():
        verify(program)
        for earlier in PASSES[:PASSES.index(run_pass)]:
            program = earlier(program)
            verify(program, after=earlier.__name__)
        before.append(print_program(program))
        program = run_pass(program)
        verify(program, after=run_pass.__name__)
        after.append(print_program(program))
    return "\n".join(before), "\n".join(after)


@pytest.mark.parametrize(("run_pass", "title", "source"), list(fixture_cases()))
def test_pass_fixture(run_pass, title, source):
    before, after = before_and_after(run_pass, source)
    path = FIXTURES / f"{run_pass.__name__}.txt"
    text = path.read_text()
    block = f"=== {title}\n{source}--- input\n{before}\n--- expected\n{after}\n"
    if os.environ.get("GENWEAVE_UPDATE_GOLDEN") == "1":
        pattern = re.compile(rf"^=== {re.escape(title)}\n.*?(?=^=== |\Z)", re.S | re.M)
        path.write_text(pattern.sub(lambda _: block, text, count=1))
        text = path.read_text()
    assert block in text


@pytest.mark.parametrize(("run_pass", "title", "source"), list(fixture_cases()))
def test_passes_are_idempotent(run_pass, title, source):
    module = parse(source)
    for program in lower(module).values():
        once = optimize(program, verify_each=True)
        assert run_pass(once) == once


def test_pipeline_order():
    assert [p.__name__ for p in PASSES] == ["fold_sampler_chains", "classify_constraints", "choose_enforcement",
                                            "annotate_guarantees", "mark_heal_boundaries"]


def test_verify_rejects_broken_ir():
    program = lower(parse('program p(a: str) -> str:\n    x = gen max 2 tokens\n    return x\n'))["p"]
    hole = program.ops[0]
    broken = [
        replace(program, ops=(ir.Emit((ir.Ref("nope"),)), *program.ops)),
        replace(program, ops=program.ops[:-1]),
        replace(program, ops=(replace(hole, max_tokens=0), program.ops[1])),
        replace(program, ops=(replace(hole, constraint=ir.Choice(())), program.ops[1])),
        replace(program, ops=(ir.OpenRole("user"), *program.ops)),
        replace(program, ops=(replace(hole, method="magic"), program.ops[1])),
        replace(program, decoding=replace(program.decoding, method="greedy",
                                          chain=(ir.SamplerStage("top_k", (("k", 3),)),))),
        replace(program, decoding=replace(program.decoding, enumerate=("y",))),
    ]
    for bad in broken:
        with pytest.raises(IRError):
            verify(bad)


VOCAB = [b"a", b"b", b"ab", b"ba", b"1", b"2", b" ", b".", b"\n"]

RUNNABLE = [
    'program p() -> str:\n  target:\n    "a"\n    x = gen max 4 tokens\n    return x\n'
    '  infer:\n    sample temperature 1 | top_p 1 | top_k 0\n',
    'program p() -> str:\n  target:\n    "a"\n    x = gen max 4 tokens\n    return x\n'
    '  infer:\n    sample temperature 0\n',
    'program p() -> str:\n  target:\n    "a"\n    x = gen max 4 tokens\n    return x\n'
    '  infer:\n    sample temperature 0.5 | temperature 1.6 | min_p 0\n',
    'program p() -> str:\n  target:\n    "b "\n    x = gen regex r"(ab|b)+1?" max 5 tokens\n    "."\n'
    '    y = gen choice ["1", "12", "2"]\n    z = gen stop "." max 6 tokens\n    return y\n'
    '  infer:\n    sample top_p 1 | temperature 0.7\n',
]


@pytest.mark.parametrize("source", RUNNABLE)
def test_optimized_and_unoptimized_programs_sample_identically(source):
    toy = ToyLM(VOCAB, seed=11)
    module = genweave.compile(source)
    optimized = module.programs["p"]
    unoptimized = ApiProgram(module, lower(module.syntax)["p"])
    assert optimized.ir != unoptimized.ir
    fast = optimized(model=toy, draws=40, seed=5)
    slow = unoptimized(model=toy, draws=40, seed=5)
    assert [r.tokens for r in fast] == [r.tokens for r in slow]
    assert [r.value for r in fast] == [r.value for r in slow]
