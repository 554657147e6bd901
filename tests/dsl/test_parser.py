"""Parsing: the AST of the first language slice, spans, and syntax errors with carets."""

import pytest

from genweave.dsl import ast
from genweave.dsl.errors import GenSyntaxError
from genweave.dsl.parser import parse, parse_file

HELLO = '''\
# a comment
model lm = "smollm2-135m" chat   # trailing comment

program hello(topic: str, tone: str) -> str:
  target:
    system: "You are {tone}."
    user: "Write about {topic}.\\n"
    assistant:
        story = gen stop "\\n\\n" max 60 tokens
    return story
  infer:
    sample temperature 0.7
    draws 2
    seed 7
'''


def test_parses_declarations_and_sections():
    module = parse(HELLO, "hello.gen")
    (model,) = module.models()
    assert model == ast.ModelDecl("lm", ast.String(("smollm2-135m",)), chat=True)
    (program,) = module.programs()
    assert program.name == "hello"
    assert [p.name for p in program.params] == ["topic", "tone"]
    assert program.returns == ast.TypeRef("str")
    system, user, assistant, ret = program.target
    assert system.role == "system" and system.inline
    assert user.body[0].text.parts == ("Write about ", ast.Interpolation(ast.Name("topic")), ".\n")
    gen = assistant.body[0]
    assert gen == ast.GenStmt("story", None, ast.String(("\n\n",)), 60)
    assert ret == ast.ReturnStmt(ast.Name("story"))
    assert program.infer == (
        ast.Sample(ast.Chain((ast.Stage("temperature", ast.Number(0.7)),))),
        ast.Draws(2),
        ast.Seed(7),
    )


def test_spans_point_at_source():
    module = parse(HELLO, "hello.gen")
    program = module.programs()[0]
    gen = program.target[2].body[0]
    assert (gen.span.line, gen.span.col) == (9, 9)
    interp = program.target[1].body[0].text.parts[1]
    assert (interp.expr.span.line, interp.expr.span.col) == (7, 25)


def test_short_form_body_and_raw_and_triple_strings():
    source = 'program p() -> str:\n    r"a{b}\\n"\n    """line1\n"quoted"\nline3"""\n    x = gen max 3 tokens\n    return x\n'
    program = parse(source).programs()[0]
    assert program.short_form
    raw, triple = program.target[0].text, program.target[1].text
    assert raw.raw and raw.parts == ("a{b}\\n",)
    assert triple.triple and triple.parts == ('line1\n"quoted"\nline3',)
    assert program.infer == ()


def test_escapes_and_braces():
    program = parse('program p() -> str:\n    "tab\\tbrace{{}} \\u00e9\\x41"\n    return "x"\n').programs()[0]
    assert program.target[0].text.parts == ("tab\tbrace{} éA",)


def test_sampler_chain_with_options():
    source = "program p() -> str:\n  target:\n    return \"x\"\n  infer:\n    sample top_h alpha 0.4 top_n 100 | temperature 0.5\n"
    (sample,) = parse(source).programs()[0].infer
    first, second = sample.chain.stages
    assert first == ast.Stage("top_h", None, (("alpha", ast.Number(0.4)), ("top_n", ast.Number(100))))
    assert second == ast.Stage("temperature", ast.Number(0.5))


def test_constraint_expressions_parse():
    source = 'program p() -> str:\n    x = gen (regex r"[a-z]+" & choice ["ab", "cd"]) | "ef" | int\n    return x\n'
    gen = parse(source).programs()[0].target[0]
    assert gen.constraint == ast.BinaryC(
        "|",
        ast.BinaryC("|", ast.BinaryC("&", ast.RegexC(ast.String(("[a-z]+",), raw=True)),
                                     ast.ChoiceC((ast.String(("ab",)), ast.String(("cd",))))),
                    ast.LiteralC(ast.String(("ef",)))),
        ast.NamedC("int"))


SYNTAX_ERRORS = [
    # (source, line, col, message fragment)
    ("program x(:\n", 1, 11, "unexpected ':'"),
    ('program p() -> str:\n  x = gen max 5 tokens\n     return x\n', 3, 6, "unexpected indentation"),
    ('program p() -> str:\n  x = gen\n return x\n', 3, 1, "indentation matches no enclosing block"),
    ('program p():\n  "abc {"\n', 2, 8, "unclosed '{'"),
    ('program p():\n  "abc }"\n', 2, 8, "single '}'"),
    ('program p():\n  "a\\q"\n', 2, 5, "invalid escape sequence '\\q'"),
    ('program p():\n  "a\n', 2, 3, "unterminated string literal"),
    ('program p():\n  x = gen stop "a" stop "b"\n', 2, 20, "'stop' given twice"),
    ('program p():\n  x = gen max tokens\n', 2, 15, "unexpected 'tokens'; expected an integer"),
    ('model = "x"\n', 1, 7, "unexpected '='; expected a name"),
    ('program p():\n  return x)\n', 2, 11, "unexpected ')'; expected an operator, end of line"),
    ('program p():\n  "x {a b}"\n', 2, 9, "invalid expression inside '{...}': unexpected 'b'"),
    ("program p()\n", 1, 12, "unexpected end of line"),
    ("@\n", 1, 1, "unexpected character '@'"),
]


@pytest.mark.parametrize(("source", "line", "col", "fragment"), SYNTAX_ERRORS)
def test_syntax_errors_have_location_line_and_caret(source, line, col, fragment):
    with pytest.raises(GenSyntaxError) as info:
        parse(source, "bad.gen")
    err = info.value
    rendered = err.render()
    assert fragment in err.message, rendered
    assert (err.span.line, err.span.col) == (line, col), rendered
    head, code, caret = rendered.splitlines()[:3]
    assert head.startswith(f"bad.gen:{line}:{col}: ")
    assert code.strip() == source.splitlines()[line - 1].strip()
    assert caret.strip().startswith("^") and caret.index("^") == 4 + col - 1


def test_unreadable_files(tmp_path):
    with pytest.raises(GenSyntaxError, match="no such file"):
        parse_file(tmp_path / "missing.gen")
    with pytest.raises(GenSyntaxError, match="is a directory"):
        parse_file(tmp_path)
    bad = tmp_path / "latin1.gen"
    bad.write_bytes(b'program p():\n  "caf\xe9"\n')
    with pytest.raises(GenSyntaxError, match="not UTF-8"):
        parse_file(bad)
