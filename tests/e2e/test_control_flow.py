"""Programs with let/if/for/calls, conditions, `where` predicates and host functions, end to end.

Each law is checked against ``genweave.testing.exact_distribution`` with a G-test (false-alarm
rate 1e-4, fixed seeds): masked sampling against the local law, rejection against the global target.
"""

import pytest

import genweave
from genweave.testing import ToyLM, assert_matches, exact_distribution

VOCAB = [b"a", b"b", b"ab", b" ", b"1", b"2", b"x", b"."]

BRANCHY = '''
program tail(t: str) -> str:
    " {t}"
    w = gen regex r"[ab]" max 1 tokens
    return w + t

program p(n: int) -> str:
  target:
    "x"
    let k = n + 1
    first = gen regex r"[ab]+" max 2 tokens
    if first == "a":
        " 1"
    else:
        " 2"
    for i in range(k):
        " ."
        d = gen regex r"[12]" max 1 tokens
    let r = tail(first)
    return r
  infer:
    {infer}
'''


@pytest.fixture(scope="module")
def toy():
    return ToyLM(VOCAB, seed=5)


def test_control_flow_text_follows_the_branches_and_loops(toy):
    module = genweave.compile(BRANCHY.replace("{infer}", "sample"))
    for r in module.p(n=2, model=toy, draws=50, seed=1):
        first = r.holes["first"]
        marker = " 1" if first == "a" else " 2"
        assert r.text.startswith("x" + first + marker + " .")
        assert r.text.count(" .") == 3  # range(n + 1) iterations
        assert r.value == r.holes["r.w"] + first
        assert r.text.endswith(" " + first + r.holes["r.w"])


def test_control_flow_sampling_matches_the_exact_local_law(toy):
    module = genweave.compile(BRANCHY.replace("{infer}", "sample temperature 0.8"))
    law = exact_distribution(module.p, toy, {"n": 1}).value_law()
    values = [r.value for r in module.p(n=1, model=toy, draws=20_000, seed=2)]
    assert_matches(values, law, alpha=1e-4)


REJECT = '''
predicate short = extern "tests:short"
program p() -> str:
  target:
    "x"
    a = gen max 2 tokens
    " "
    b = gen regex r"[ab12]+" where short(b) max 2 tokens
    condition a != b
    return a + "|" + b
  infer:
    rejection max 200
'''


def short(text: str) -> bool:
    return len(text) <= 2


def test_rejection_samples_the_global_target(toy):
    module = genweave.compile(REJECT)
    functions = {"tests:short": short}
    results = module.p(model=toy, draws=3000, seed=3, functions=functions)
    for r in results:
        assert r.weight == 0.0
        assert len(r.holes["b"]) <= 2 and r.holes["a"] != r.holes["b"]
    module_law = _global_law(module, toy, functions)
    assert_matches([r.value for r in results], module_law, alpha=1e-4)


def _global_law(module, toy, functions):
    from genweave.compiler.plan import plan
    from genweave.testing.exact import plan_distribution

    bound = plan(module.p.ir, toy.vocab, functions=functions)
    return plan_distribution(bound, toy, {}, target="global").value_law()


def test_missing_host_function_is_a_clear_error(toy):
    with pytest.raises(genweave.GenArgumentError, match="needs the host function 'tests:short'"):
        genweave.compile(REJECT).p(model=toy, seed=0)


def test_rejection_that_never_accepts_says_so():
    toy = ToyLM([b"a", b"b"], seed=0)
    source = 'program p():\n  target:\n    "a"\n    x = gen max 1 tokens\n    condition x == "zzz"\n    return x\n' \
             '  infer:\n    rejection max 3\n'
    with pytest.raises(genweave.GenRuntimeError, match="accepted 0 of 2 draws in 6 tries"):
        genweave.compile(source).p(model=toy, draws=2, seed=0)
