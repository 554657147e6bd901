"""Lowering: names resolved and inlined, program calls inlined with their own scope, inference
options with their defaults, the IR printer's text form."""

from genweave.compiler import ir
from genweave.compiler.check import check
from genweave.compiler.features import LANGUAGE
from genweave.compiler.ir_print import print_program
from genweave.compiler.lower import lower
from genweave.dsl.parser import parse


def lowered(source: str) -> dict[str, ir.Program]:
    module = parse(source)
    check(module, supported=LANGUAGE)
    return lower(module)


def test_named_constraints_are_inlined():
    (program,) = lowered('use std.patterns (uuid)\nregex w = r"[a-z]+"\n'
                         'schema S = json """{"type": "integer", "minimum": 1}"""\n'
                         'program p() -> str:\n    a = gen w | uuid\n    b = gen json S\n    c = gen S\n'
                         '    return a\n').values()
    a, b, c = program.holes()
    assert isinstance(a.constraint, ir.Union) and a.constraint.left == ir.Regex("[a-z]+")
    assert b.constraint == c.constraint == ir.Json('{"type":"integer","minimum":1}')


def test_calls_are_inlined_with_their_own_scope_and_per_hole_inference_stays_local():
    programs = lowered('program intro(topic: str) -> str:\n    "About {topic}: "\n    x = gen max 3 tokens\n'
                       '    return x\n'
                       'program p(t: str) -> str:\n  target:\n    let a = intro(t)\n    intro(topic="b")\n'
                       '    x = gen max 2 tokens\n    return a + x\n  infer:\n    for x:\n        greedy\n')
    first, second, hole = programs["p"].ops[:3]
    assert (first.binding, first.scope, first.args) == ("a", "a", (("topic", ir.Ref("t")),))
    assert (second.binding, second.scope) == (None, "intro")
    assert first.result == ir.Ref("x") and isinstance(first.body[1], ir.Hole)
    assert first.body[1].decoding is None and hole.decoding == ir.HoleDecoding(method="greedy")


def test_inference_options_and_defaults():
    (program,) = lowered('model lm = "a"\nmodel small = "b"\npotential f = extern "m:f" prefix\n'
                         'program p() -> str:\n  target:\n    x = gen max 2 tokens\n    return x\n'
                         '  infer:\n    smc 16:\n        propose awrs\n        twist f\n'
                         '    speculate draft small\n    heal\n    seed 3\n').values()
    d = program.decoding
    assert d.search == ir.Smc(16, 0.5, "systematic", "awrs", (), ((ir.Extern("f", "m:f", "potential", True), 1),))
    assert d.speculate == ir.Speculate("draft", ir.ModelRef("small", "b"), (("k", 4),))
    assert (d.heal, d.seed, d.draws) == (True, 3, 1)
    assert program.model == ir.ModelRef("lm", "a")


def test_ensembles_and_sampler_params_are_normalized():
    (program,) = lowered('model a = "x" bytes\nmodel b = "y" bytes\nmodel e = ensemble(a, b, weights [1, 3]) bytes\n'
                         'program p() -> str:\n  target:\n    return "x"\n  infer:\n'
                         '    sample top_h 0.4 top_n 100 | temperature 2\n').values()
    assert program.decoding.chain == (ir.SamplerStage("top_h", (("alpha", 0.4),)),
                                      ir.SamplerStage("temperature", (("t", 2.0),)))
    models = lowered('model e = ensemble(a, b, weights [1, 3]) bytes\nmodel a = "x" bytes\nmodel b = "y" bytes\n'
                     'program p() -> str:\n    return "x"\n')["p"].model
    assert [(m.name, w) for m, w in models.members] == [("a", 1.0), ("b", 3.0)] and models.bytes


def test_printer_text_form():
    (program,) = lowered('program p(n: int) -> str:\n  target:\n    for i in range(n):\n        "{i * 2}"\n'
                         '    x = gen choice ["a"] where x != "b"\n    condition -1.5 < 0\n    return x\n'
                         '  infer:\n    rejection\n').values()
    assert print_program(program) == (
        "program p(n: int) -> str\n"
        "  for i in range($n):\n"
        "    emit ($i * 2)\n"
        "  hole x in (choice('a') where ($x != 'b'))\n"
        "  condition ((-1.5) < 0)\n"
        "  return $x\n"
        "  decode sample draws=1 rejection(max=1000)")
