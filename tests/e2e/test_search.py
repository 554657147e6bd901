"""End to end: ``.gen`` programs with every search and selection statement, on a ToyLM and on
SmolLM2, and their options checked at compile time with a clear error at the right place."""

from __future__ import annotations

import pytest

import genweave
from genweave.testing import ToyLM

STORY = '''
program story(topic: str) -> str:
  target:
    "{topic}: "
    first = gen regex r"[ab]+" max 3 tokens
    ". "
    second = gen max 3 tokens
    factor 0.0 - len(second)
    return first + "|" + second
  infer:
    {infer}
'''

LM = ToyLM([b"a", b"b", b" ", b".", b":"], seed=8)


def run(infer: str, **kw):
    return genweave.compile(STORY.replace("{infer}", infer)).story(model=LM, topic="ab", **kw)


@pytest.mark.parametrize("infer", [
    "beam 3", "beam 3 length_penalty 0 early_stopping never returns 3", "best_of 4 by len(first)\n    draws 2",
    "cautious candidates 3 entropy_low 0.1", "lookahead_tree rollouts 3 absolute 0.1 relative 0.5",
    "sample temperature 0.9\n    beam 2 kind stochastic returns 2",
])
def test_each_search_runs_a_program_with_two_holes(infer):
    weighing = infer.startswith("beam") and "stochastic" not in infer  # the others would ignore factors
    source = STORY if weighing else STORY.replace("    factor 0.0 - len(second)\n", "")
    results = genweave.compile(source.replace("{infer}", infer)).story(model=LM, topic="ab", seed=3)
    results = results if isinstance(results, genweave.Results) else genweave.Results((results,))
    for r in results:
        first, second = r.value.split("|")
        assert set(first) <= {"a", "b"} and 1 <= len(first)
        assert r.text.startswith(f"ab: {first}. {second}")
        assert r.guarantee == "selection"


def test_factors_steer_a_deterministic_beam():
    # `factor -len(second)` prefers a short second hole among the beam's finished hypotheses.
    without = genweave.compile(STORY.replace("    factor 0.0 - len(second)\n", "").replace(
        "{infer}", "beam 4 length_penalty 0 returns 4")).story(model=LM, topic="ab")
    scored = run("beam 4 length_penalty 0 returns 4")
    assert min(len(r.holes["second"]) for r in scored) <= min(len(r.holes["second"]) for r in without)
    assert all(r.weight == -len(r.holes["second"]) for r in scored)


def test_enumerate_runs_from_gen_source():
    source = ('program pick() -> str:\n  target:\n    "ab: "\n    x = gen choice ["a", "b", "ab"]\n    return x\n'
              '  infer:\n    enumerate x\n')
    results = genweave.compile(source).pick(model=LM)
    assert set(results.posterior) == {"a", "b", "ab"}
    assert sum(results.posterior.values()) == pytest.approx(1.0)


def test_enumerate_of_a_single_outcome_is_still_a_law():
    source = ('program pick() -> str:\n  target:\n    "ab: "\n    x = gen choice ["ab"]\n    return x\n'
              '  infer:\n    enumerate x\n')
    results = genweave.compile(source).pick(model=LM)
    assert results.posterior == pytest.approx({"ab": 1.0})


BAD = [
    ("beam 0", "width must be an integer >= 1", 10),
    ("beam 2 length_penalty fast", "length_penalty must be a number", 27),
    ("beam 2 early_stopping soon", "early_stopping must be one of false, true, never, got soon", 27),
    ("beam 2 kind random", "kind must be one of deterministic, stochastic, got random", 17),
    ("beam 2 returns 0", "returns must be an integer >= 1", 20),
    ("beam 2 returns 3", "`beam` returns 3 hypotheses but keeps only 2", 5),
    ("beam 2 widht 3", "beam has no option 'widht' (did you mean 'width'?)", 18),
    ("beam", "beam needs width", 5),
    ("greedy\n    beam 2", "`greedy` has none", 5),
    ("best_of 0 by 1.0", "n must be an integer >= 1", 13),
    ("best_of 2 by first", "the score of `best_of` must be float", 18),
    ("cautious 3", "cautious takes no bare value", 14),
    ("cautious candidates 0", "candidates must be an integer >= 1", 25),
    ("cautious entropy_low -1", "entropy_low must be a number >= 0", 26),
    ("cautious entropy_high 0", "entropy_high must be a number > 0", 27),
    ("cautious entropy_low 2 entropy_high 1", "needs entropy_low < entropy_high", 5),
    ("cautious segment 0", "segment must be an integer >= 1", 22),
    ("cautious entropy 1.0", "cautious has no option 'entropy'", 22),
    ("lookahead_tree width 1", "width must be an integer >= 2", 26),
    ("lookahead_tree depth 0", "depth must be an integer >= 1", 26),
    ("lookahead_tree rollouts 0", "rollouts must be an integer >= 1", 29),
    ("lookahead_tree absolute 2", "absolute must be a number in [0, 1]", 29),
    ("lookahead_tree relative -0.5", "relative must be a number in [0, 1]", 29),
    ("lookahead_tree edit 1.5", "edit must be a number in [0, 1]", 25),
    ("enumerate second", "`enumerate second` needs a finite hole", 5),
    ("enumerate nothing", "unknown hole 'nothing'", 5),
]


@pytest.mark.parametrize(("infer", "message", "col"), BAD)
def test_search_options_are_checked_with_their_place(infer, message, col):
    source = STORY.replace("    second = gen max 3 tokens\n", "    second = gen regex r\"a+\"\n")
    source = source.replace("    factor 0.0 - len(second)\n", "")
    with pytest.raises(genweave.GenCheckError) as caught:
        genweave.compile(source.replace("{infer}", infer))
    err = caught.value
    assert any(message in e.message for e in err.errors), [e.message for e in err.errors]
    found = next(e for e in err.errors if message in e.message)
    line = source.replace("{infer}", infer).splitlines().index("  infer:") + 1 + 1 + infer.count("\n")
    assert (found.span.line, found.span.col) == (line, col)
    assert "^" in str(err)


@pytest.mark.parametrize(("infer", "message"), [
    ("best_of 3 by len(first)", "`best_of` (which selects by its `by` score) ignores `factor`"),
    ("beam 2 kind stochastic", "stochastic `beam` (which samples the model's law) ignores `factor`"),
    ("cautious", "ignores `factor`"),
])
def test_searches_that_would_ignore_factors_are_errors(infer, message):
    with pytest.raises(genweave.GenCheckError, match=message.replace("(", r"\(").replace(")", r"\)")):
        genweave.compile(STORY.replace("{infer}", infer))


@pytest.mark.model
def test_beam_on_smollm2_with_raw_text_around_a_chat(smollm2):
    source = '''
model lm = "smollm2-135m" chat
program answer() -> str:
  target:
    user: "Name one primary color, in one word."
    "\\n"
    assistant:
        x = gen max 4 tokens
    return x
  infer:
    beam 2
'''
    result = genweave.compile(source).answer(model=smollm2)
    assert result.guarantee == "selection" and result.value.strip()
    assert "\n<|im_start|>assistant\n" in result.text


def _section_blocks(lang: str) -> list[str]:
    """The ``lang`` code blocks of docs/inference.md from its search section on."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "inference.md").read_text()
    text = text[text.index("## Search and selection"):]
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("block", _section_blocks("gen"))
def test_docs_search_programs_check(block):
    genweave.compile(block)


@pytest.mark.parametrize("index", range(len(_section_blocks("python"))))
def test_docs_search_examples_run(index):
    exec(compile(_section_blocks("python")[index], "docs/inference.md", "exec"), {"__name__": "docs_example"})


@pytest.mark.parametrize(("infer", "message"), [
    ("beam 2\n    heal", "`heal` does not combine with `beam`"),
    ("enumerate first\n    heal", "`heal` does not combine with `enumerate`"),
    ("cautious\n    for first:\n        greedy", "per-hole inference (`for first:`) does not combine with `cautious`"),
])
def test_what_search_engines_would_ignore_is_an_error(infer, message):
    source = STORY.replace("    factor 0.0 - len(second)\n", "").replace("{infer}", infer)
    with pytest.raises(genweave.GenCheckError) as caught:
        genweave.compile(source)
    assert any(message in e.message for e in caught.value.errors), [e.message for e in caught.value.errors]
