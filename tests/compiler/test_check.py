"""The checker: every problem found is reported with its own span, several at once."""

import pytest

from genweave.compiler.check import check
from genweave.dsl.errors import GenCheckError
from genweave.dsl.parser import parse

CHECK_ERRORS = [
    # (source, line, col, message fragment)
    ('program p() -> str:\n    "{nope}"\n    return "x"\n', 2, 7, "unknown name 'nope'"),
    ('program p() -> str:\n    x = gen max 2 tokens\n    return y\n', 3, 12, "unknown name 'y'"),
    ('program p(a: str, a: str) -> str:\n    return a\n', 1, 19, "parameter 'a' is declared twice"),
    ('program p(a: text) -> str:\n    return a\n', 1, 14, "unknown parameter type 'text'"),
    ('program p() -> str:\n    x = gen max 2 tokens\n    x = gen max 2 tokens\n    return x\n', 3, 5,
     "'x' is already defined"),
    ('program p() -> str:\n    x = gen max 2 tokens\n', 1, 1, "has no `return`"),
    ('program p() -> str:\n    return "a"\n    "b"\n', 3, 5, "never reached"),
    ('program p() -> str:\n    user: "hi"\n    return "a"\n', 2, 5, "`user:` needs a chat model"),
    ('model m = "x" chat\nprogram p() -> str:\n    "hi"\n    return "a"\n', 3, 5, "outside a role block"),
    ('model m = "x" chat\nprogram p() -> str:\n    user:\n        assistant: "x"\n    return "a"\n', 4, 9,
     "role blocks do not nest"),
    ('model m = "x" chat\nprogram p() -> str:\n    user:\n        return "a"\n', 4, 9, "`return` inside a role block"),
    ('program p() -> str:\n    x = gen max 0 tokens\n    return x\n', 2, 5, "needs N >= 1"),
    ('program p() -> str:\n    x = gen stop ""\n    return x\n', 2, 18, "the stop string is empty"),
    ('program p() -> str:\n  target:\n    return "a"\n  infer:\n    sample top_q 0.5\n', 5, 12,
     "unknown sampler 'top_q'"),
    ('program p() -> str:\n  target:\n    return "a"\n  infer:\n    sample temperature -1\n', 5, 24,
     "temperature: parameter t must be"),
    ('program p() -> str:\n  target:\n    return "a"\n  infer:\n    greedy\n    sample\n', 6, 5, "conflicts with"),
    ('program p() -> str:\n  target:\n    return "a"\n  infer:\n    draws 0\n', 5, 5, "needs N >= 1"),
    ('model m = "a"\nmodel m = "b"\n', 2, 1, "'m' is declared twice"),
    ('model m = "a" bytes\n', 1, 1, "not supported yet"),
    ('program p() -> str:\n    x = gen json """{}"""\n    return x\n', 2, 13, "(`json`) is not supported yet"),
]


@pytest.mark.parametrize(("source", "line", "col", "fragment"), CHECK_ERRORS)
def test_check_errors_name_problem_and_place(source, line, col, fragment):
    with pytest.raises(GenCheckError) as info:
        check(parse(source, "bad.gen"))
    err = info.value.errors[0]
    rendered = err.render()
    assert fragment in err.message, rendered
    assert (err.span.line, err.span.col) == (line, col), rendered
    assert rendered.startswith(f"bad.gen:{line}:{col}: ")
    assert "^" in rendered


def test_several_errors_reported_at_once():
    source = 'program p(a: nope) -> str:\n    "{b}"\n    return c\n'
    with pytest.raises(GenCheckError) as info:
        check(parse(source, "bad.gen"))
    messages = [e.message for e in info.value.errors]
    assert len(messages) == 3
    assert "unknown parameter type 'nope'" in messages[0]
    assert "unknown name 'b'" in messages[1] and "unknown name 'c'" in messages[2]
    rendered = info.value.render()
    assert rendered.count("bad.gen:") == 3


def test_unused_names_are_warnings():
    report = check(parse('program p(a: str) -> str:\n    x = gen max 2 tokens\n    return "done"\n', "w.gen"))
    assert sorted(w.message for w in report.warnings) == ["'a' is never used", "'x' is never used"]
