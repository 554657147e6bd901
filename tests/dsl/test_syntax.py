"""The full syntax: every declaration, statement, expression and inference form parses to its AST."""

import logging

import pytest
from lark import logger as lark_logger

from genweave.dsl import ast
from genweave.dsl.errors import GenSyntaxError
from genweave.dsl.parser import MAX_DEPTH, _lark, parse, parse_expression

S = ast.String


def body(source: str) -> tuple:
    """The target statements of a one-program module written in short form."""
    return parse("program p():\n" + "".join(f"    {line}\n" for line in source.splitlines())).programs()[0].target


def infer(*lines: str) -> tuple:
    text = "program p():\n  target:\n    return 1\n  infer:\n" + "".join(f"    {line}\n" for line in lines)
    return parse(text).programs()[0].infer


def test_grammar_is_lalr_without_conflicts(caplog):
    _lark.cache_clear()
    lark_logger.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG, logger="lark"):
            _lark()
    finally:
        lark_logger.setLevel(logging.WARNING)
    assert not [r for r in caplog.records if "conflict" in r.getMessage().lower()]


def test_declarations():
    module = parse('use std.patterns\nuse std.json (value, string)\nuse "lib/other.gen" (helper)\n'
                   'model lm = "smollm2-135m" chat\nmodel b = "x" bytes\n'
                   'model e = ensemble(lm, b, weights [0.25, 0.75]) bytes\n'
                   'regex word = r"[a-z]+"\ngrammar g = lark """start: "a"+"""\ngrammar f = lark file "x.lark"\n'
                   'schema P = json """{"type": "object"}"""\nschema Q = json file "q.json"\n'
                   'sampler hot = temperature 1.2 | top_k 40\n'
                   'predicate short = extern "preds:short" prefix\npotential fluent = extern "preds:fluent"\n')
    assert module.decls == (
        ast.UseDecl("std.patterns"), ast.UseDecl("std.json", ("value", "string")),
        ast.UseDecl(S(("lib/other.gen",)), ("helper",)),
        ast.ModelDecl("lm", S(("smollm2-135m",)), chat=True), ast.ModelDecl("b", S(("x",)), bytes=True),
        ast.ModelDecl("e", ast.Ensemble(("lm", "b"), (ast.Number(0.25), ast.Number(0.75))), bytes=True),
        ast.RegexDecl("word", S(("[a-z]+",), raw=True)),
        ast.GrammarDecl("g", S(('start: "a"+',), triple=True)), ast.GrammarDecl("f", S(("x.lark",)), file=True),
        ast.SchemaDecl("P", S(('{"type": "object"}',), triple=True)), ast.SchemaDecl("Q", S(("q.json",)), file=True),
        ast.SamplerDecl("hot", ast.Chain((ast.Stage("temperature", ast.Number(1.2)),
                                          ast.Stage("top_k", ast.Number(40))))),
        ast.ExternDecl("predicate", "short", S(("preds:short",)), prefix=True),
        ast.ExternDecl("potential", "fluent", S(("preds:fluent",))),
    )
    assert [d.name for d in module.uses()] == ["patterns", "json", "other"]


def test_program_header_types():
    program = parse("program p(xs: list[str], who: lib.Person) -> list[int]:\n    return 1\n").programs()[0]
    assert program.params == (ast.Param("xs", ast.TypeRef("list", (ast.TypeRef("str"),))),
                               ast.Param("who", ast.TypeRef("lib.Person")))
    assert program.returns == ast.TypeRef("list", (ast.TypeRef("int"),))


def test_statements():
    stmts = body('let k = n * 2\nif k > 3:\n    x = gen int\nelif k == 1:\n    x = gen bool\nelse:\n'
                 '    x = gen float\nfor i in range(k):\n    "{i}"\nintro(topic, tone="dry")\n'
                 'factor -0.5 * len(x)\ncondition x != 0\nreturn [x, k]')
    let, branch, loop, call, factor, condition, ret = stmts
    assert let == ast.LetStmt("k", ast.Binary("*", ast.Name("n"), ast.Number(2)))
    inner = ast.IfStmt(ast.Binary("==", ast.Name("k"), ast.Number(1)),
                       (ast.GenStmt("x", ast.NamedC("bool"), None, None),),
                       (ast.GenStmt("x", ast.NamedC("float"), None, None),))
    assert branch == ast.IfStmt(ast.Binary(">", ast.Name("k"), ast.Number(3)),
                                (ast.GenStmt("x", ast.NamedC("int"), None, None),), (inner,))
    assert loop.var == "i" and loop.iterable == ast.Call(ast.Name("range"), (ast.Name("k"),))
    assert call == ast.CallStmt(ast.Call(ast.Name("intro"), (ast.Name("topic"),), (("tone", S(("dry",))),)))
    assert factor.weight == ast.Binary("*", ast.Unary("-", ast.Number(0.5)), ast.Call(ast.Name("len"), (ast.Name("x"),)))
    assert condition.condition == ast.Binary("!=", ast.Name("x"), ast.Number(0))
    assert ret.value == ast.ListExpr((ast.Name("x"), ast.Name("k")))


def test_gen_options_in_any_order():
    (gen,) = body('x = gen max 5 tokens keep stop stop "\\n"')
    assert gen == ast.GenStmt("x", None, S(("\n",)), 5, keep_stop=True)


def test_constraints_precedence_and_forms():
    (gen,) = body('x = gen json """{"type": "string"}""" | json Person & lark """start: "a" """ where ok(x)')
    inter = ast.BinaryC("&", ast.JsonC(ast.NamedC("Person")), ast.LarkC(S(('start: "a" ',), triple=True)))
    union = ast.BinaryC("|", ast.JsonC(S(('{"type": "string"}',), triple=True)), inter)
    assert gen.constraint == ast.WhereC(union, ast.Call(ast.Name("ok"), (ast.Name("x"),)))


def test_where_binds_loosest_and_parentheses_group():
    (gen,) = body('x = gen (regex r"a+" where p(x)) | "b"')
    assert gen.constraint == ast.BinaryC("|", ast.WhereC(ast.RegexC(S(("a+",), raw=True)),
                                                         ast.Call(ast.Name("p"), (ast.Name("x"),))),
                                         ast.LiteralC(S(("b",))))


@pytest.mark.parametrize(("text", "tree"), [
    ("a or b and not c", ast.Binary("or", ast.Name("a"), ast.Binary("and", ast.Name("b"),
                                                                     ast.Unary("not", ast.Name("c"))))),
    ("1 + 2 * 3 - 4", ast.Binary("-", ast.Binary("+", ast.Number(1), ast.Binary("*", ast.Number(2), ast.Number(3))),
                                 ast.Number(4))),
    ("-x.y[0](1)", ast.Unary("-", ast.Call(ast.Index(ast.Attribute(ast.Name("x"), "y"), ast.Number(0)),
                                           (ast.Number(1),)))),
    ("a // b % c / d", ast.Binary("/", ast.Binary("%", ast.Binary("//", ast.Name("a"), ast.Name("b")), ast.Name("c")),
                                  ast.Name("d"))),
    ("x in [1, 2.5, true, false]", ast.Binary("in", ast.Name("x"), ast.ListExpr(
        (ast.Number(1), ast.Number(2.5), ast.Bool(True), ast.Bool(False))))),
    ("(a + b) * c", ast.Binary("*", ast.Binary("+", ast.Name("a"), ast.Name("b")), ast.Name("c"))),
    ('"n={n}" + s', ast.Binary("+", S(("n=", ast.Interpolation(ast.Name("n")))), ast.Name("s"))),
    ("1e-3 <= .5", ast.Binary("<=", ast.Number(0.001), ast.Number(0.5))),
])
def test_expressions(text, tree):
    assert parse_expression(text) == tree


def test_comparisons_do_not_chain():
    with pytest.raises(GenSyntaxError, match="comparisons do not chain"):
        parse_expression("a < b < c")


def test_interpolated_expressions_have_source_spans():
    (text,) = body('"total: {len(items) + 1}!"')
    interp = text.text.parts[1]
    call = interp.expr.left
    assert (interp.span.line, interp.span.col) == (2, 13)
    assert (call.span.line, call.span.col, call.span.end_col) == (2, 14, 24)


def test_embedded_languages_are_verbatim():
    # JSON braces are not interpolations and backslashes stay for the regex/JSON to read.
    module = parse('regex d = "\\d+{2}"\nschema S = json """{"pattern": "\\\\d"}"""\n')
    assert module.decls[0].pattern.parts == ("\\d+{2}",)
    assert module.decls[1].source.parts == ('{"pattern": "\\\\d"}',)


def test_inference_statements():
    stmts = infer("sample hot | top_h alpha 0.4 variant hf", "awrs",
                  "smc particles 8 ess 0.5 resample systematic:", "    propose sample temperature 0.8",
                  "    twist fluent every 4 tokens", "rejection max 100", "enumerate x", "speculate draft small k 4",
                  "speculate recycle k 8 tree dynamic", "beam 4", "best_of 3 by score(x)", "cautious candidates 4",
                  "lookahead_tree width 2 depth 3", "heal", "boundary bytes", "draws 2", "seed 1",
                  "for x:", "    greedy", "    speculate ngram 3 k 5")
    assert stmts[0] == ast.Sample(ast.Chain((ast.Stage("hot", None), ast.Stage(
        "top_h", None, (("alpha", ast.Number(0.4)), ("variant", ast.Name("hf")))))))
    assert stmts[2] == ast.Smc(None, (("particles", ast.Number(8)), ("ess", ast.Number(0.5)),
                                      ("resample", ast.Name("systematic"))),
                               (ast.Propose("sample", ast.Chain((ast.Stage("temperature", ast.Number(0.8)),))),
                                ast.Twist("fluent", 4)))
    assert stmts[3] == ast.Method("rejection", None, (("max", ast.Number(100)),))
    assert stmts[5] == ast.Speculate("draft", ast.Name("small"), (("k", ast.Number(4)),))
    assert stmts[7] == ast.Method("beam", ast.Number(4))
    assert stmts[8] == ast.BestOf(ast.Number(3), (), ast.Call(ast.Name("score"), (ast.Name("x"),)))
    assert stmts[-1] == ast.ForHole("x", (ast.Greedy(), ast.Speculate("ngram", ast.Number(3), (("k", ast.Number(5)),))))
    assert [type(s).__name__ for s in stmts] == [
        "Sample", "Awrs", "Smc", "Method", "Enumerate", "Speculate", "Speculate", "Method", "BestOf", "Method",
        "Method", "Heal", "Boundary", "Draws", "Seed", "ForHole"]


def test_smc_without_block_and_negative_stage_values():
    smc, sample = infer("smc 16", "sample repetition_penalty 1.1 | xtc probability 0.5 threshold -0.1")
    assert smc == ast.Smc(ast.Number(16), ())
    assert sample.chain.stages[1].options[1] == ("threshold", ast.Number(-0.1))


def test_keywords_are_contextual():
    stmts = body("text = gen\nmax = gen max 3 tokens\nfile = gen\nreturn text")
    assert [s.target for s in stmts[:3]] == ["text", "max", "file"]


@pytest.mark.parametrize(("source", "fragment"), [
    ("program p():\n  target:\n    return 1\n  infer:\n    smc particles 8 ess\n", "expected a parameter name"),
    ("program p():\n  target:\n    return 1\n  infer:\n    beam width 2 width 3\n", "'width' of 'beam' given twice"),
    ("program p():\n    f(a=1, 2)\n", "positional argument follows"),
    ("program p():\n    f(a=1, a=2)\n", "argument 'a' given twice"),
    ("program p():\n    x = gen keep stop keep stop\n", "'keep' given twice"),
    ('model m = "x" chat chat\n', "'chat' given twice"),
])
def test_malformed_forms(source, fragment):
    with pytest.raises(GenSyntaxError, match=fragment):
        parse(source)


def test_nesting_is_bounded_without_recursion_errors():
    parens = "(" * 5000 + "1" + ")" * 5000  # parentheses leave no node
    assert parse(f"program p():\n    return {parens}\n").programs()[0].target[0].value == ast.Number(1)
    negations = "not " * 3000 + "x"
    with pytest.raises(GenSyntaxError, match="nests too deeply"):
        parse(f"program p():\n    return {negations}\n")
    chain = " + ".join(["x"] * 3000)
    with pytest.raises(GenSyntaxError, match="nests too deeply"):
        parse(f"program p():\n    return {chain}\n")
    ok = " + ".join(["x"] * (MAX_DEPTH // 4))
    parse(f"program p():\n    return {ok}\n")
