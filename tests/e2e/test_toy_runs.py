"""End to end on ToyLM: programs compile, run batched, and sample the distribution they should.

Statistical tests use a G-test at false-alarm rate 1e-4 with fixed seeds.
"""

import itertools
import math

import pytest
import torch

import genweave
from genweave.testing import ToyLM, assert_matches

VOCAB = [b"a", b"b", b"ab", b" ", b"\n", b"ba", b"<|user|>", b"<|assistant|>"]


@pytest.fixture(scope="module")
def toy():
    return ToyLM(VOCAB, seed=3)


def one_hole(max_tokens: int, infer: str = "") -> genweave.Module:
    source = f'program p(x: str) -> str:\n  target:\n    "{{x}}"\n    y = gen max {max_tokens} tokens\n    return y\n'
    if infer:
        source += f"  infer:\n    {infer}\n"
    return genweave.compile(source)


def exact_sequences(toy: ToyLM, prompt: list[int], max_tokens: int, temperature: float) -> dict:
    """Exact law of the hole's token sequence: tempered steps, EOS ends, budget ends."""
    eos = toy.eos_ids[0]
    law = {}

    def walk(context, generated, prob):
        logp = torch.log_softmax(toy.next_token_logprobs(context) / temperature, -1).exp()
        for token, p in enumerate(logp.tolist()):
            if token == eos:
                law[tuple(generated)] = law.get(tuple(generated), 0.0) + prob * p
            elif len(generated) + 1 == max_tokens:
                key = (*generated, token)
                law[key] = law.get(key, 0.0) + prob * p
            else:
                walk([*context, token], [*generated, token], prob * p)

    walk(prompt, [], 1.0)
    return law


def test_sampling_matches_exact_two_token_law(toy):
    module = one_hole(2, "sample temperature 0.8")
    results = module.p(x="ab", model=toy, draws=20_000, seed=11)
    expected = exact_sequences(toy, toy.encode("ab"), 2, 0.8)
    assert math.isclose(sum(expected.values()), 1.0, rel_tol=1e-12)
    assert_matches([r.hole_tokens["y"] for r in results], expected, alpha=1e-4)


def test_logprob_is_the_exact_probability_of_the_draw(toy):
    results = one_hole(2, "sample temperature 0.8").p(x="ab", model=toy, draws=50, seed=2)
    expected = exact_sequences(toy, toy.encode("ab"), 2, 0.8)
    for r in results:
        # the sampler chain computes in float32, so agreement is to float32 precision
        assert r.logprob == pytest.approx(math.log(expected[r.hole_tokens["y"]]), abs=1e-5)


def test_seeded_sampling_is_reproducible_and_seeds_differ(toy):
    module = one_hole(6)
    first = module.p(x="a", model=toy, draws=8, seed=5)
    again = module.p(x="a", model=toy, draws=8, seed=5)
    other = module.p(x="a", model=toy, draws=8, seed=6)
    assert [r.tokens for r in first] == [r.tokens for r in again]
    assert [r.tokens for r in first] != [r.tokens for r in other]


def test_greedy_follows_argmax_and_is_deterministic(toy):
    result = one_hole(5, "greedy").p(x="ab", model=toy)
    context = toy.encode("ab")
    expected = []
    for _ in range(5):
        token = int(toy.next_token_logprobs(context).argmax())
        if token in toy.eos_ids:
            break
        expected.append(token)
        context.append(token)
    assert list(result.hole_tokens["y"]) == expected
    assert result.logprob == 0.0
    assert result.value == toy.decode(expected).decode()


def test_temperature_zero_folds_to_greedy(toy):
    greedy = one_hole(5, "greedy").p(x="ab", model=toy)
    cold = one_hole(5, "sample temperature 0").p(x="ab", model=toy, seed=1)
    assert greedy.tokens == cold.tokens


def test_stop_string_ends_hole_and_is_excluded_from_value(toy):
    source = 'program p() -> str:\n  target:\n    "ab"\n    y = gen stop "b" max 50 tokens\n    return y\n'
    results = genweave.compile(source).p(model=toy, draws=64, seed=0)
    for r in results:
        hole_text = toy.decode(r.hole_tokens["y"]).decode()
        assert "b" not in r.value
        if hole_text.endswith("<eos>") or "b" not in hole_text:
            continue
        assert r.value == hole_text[: hole_text.index("b")]


def test_stop_budget_exhaustion_is_an_error_not_a_truncation():
    toy = ToyLM([b"a", b"b"], seed=0, eos=False)
    source = 'program p() -> str:\n    "a"\n    y = gen stop "zzz" max 3 tokens\n    return y\n'
    with pytest.raises(genweave.GenCheckError, match="can be written with the tokens") as info:
        genweave.compile(source).p(model=toy, seed=0)
    assert (info.value.span.line, info.value.span.col) == (3, 5)


def test_interpolation_and_later_text_use_each_draws_values(toy):
    source = ('program p() -> str:\n    "a"\n    y = gen max 3 tokens\n    " ba {y}\\n"\n'
              '    z = gen max 2 tokens\n    return z\n')
    results = genweave.compile(source).p(model=toy, draws=16, seed=4)
    for r in results:
        assert r.text.startswith("a" + r.holes["y"] + " ba " + r.holes["y"] + "\n")
        z_text = toy.decode(r.hole_tokens["z"]).decode()
        assert r.text.endswith(z_text)
        assert r.tokens[:1] == tuple(toy.encode("a"))


def test_chat_role_blocks_use_the_models_template(toy):
    source = ('model lm = "toy" chat\nprogram p(q: str) -> str:\n    user: "{q}"\n    assistant:\n'
              '        y = gen max 3 tokens\n    return y\n')
    result = genweave.compile(source).p(q="ab", model=toy, seed=0)
    prompt = toy.render_chat([{"role": "user", "content": "ab"}, {"role": "assistant", "content": "\x00"}])
    prompt = prompt[: prompt.index("\x00")]
    assert result.text.startswith(prompt + result.holes["y"])
    assert result.tokens[: len(toy.encode(prompt))] == tuple(toy.encode(prompt))
    closed = toy.render_chat([{"role": "user", "content": "ab"},
                              {"role": "assistant", "content": result.holes["y"]}])
    assert result.text == closed


def test_batched_rows_equal_single_runs(toy):
    """Each draw of a batch has the law of a lone run: compare all 3-token outcomes exactly."""
    module = one_hole(3, "greedy")
    batch = module.p(x="b", model=toy, draws=4)
    single = module.p(x="b", model=toy)
    assert all(r.tokens == single.tokens for r in batch)


def test_arguments_are_checked(toy):
    module = one_hole(2)
    with pytest.raises(genweave.GenArgumentError, match="needs argument 'x'"):
        module.p(model=toy)
    with pytest.raises(genweave.GenArgumentError, match="has no parameter 'q'"):
        module.p(x="a", q="b", model=toy)
    with pytest.raises(genweave.GenArgumentError, match="draws must be >= 1"):
        module.p(x="a", model=toy, draws=0)


def test_every_exact_outcome_is_reachable_in_enumeration(toy):
    # Guard on the oracle itself: it is a distribution over all sequences of length <= 2.
    law = exact_sequences(toy, toy.encode("ab"), 2, 1.0)
    non_eos = [i for i in range(len(toy.vocab)) if i not in toy.eos_ids]
    assert set(law) == {()} | {(t,) for t in non_eos} | set(itertools.product(non_eos, repeat=2))
