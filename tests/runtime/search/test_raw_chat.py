"""Raw text on a chat model: text and holes outside role blocks go to the context verbatim,
outside the template, wherever they appear."""

from __future__ import annotations

import genweave
from genweave.testing import ToyLM

SOURCE = '''model lm = "toy" chat
program p() -> str:
  target:
    "Intro\\n"
    user:
        "hi"
    "Note: "
    n = gen choice ["ab", "ba"]
    "\\n"
    assistant:
        x = gen choice ["a", "b"]
    "End"
    return x
  infer:
    greedy
'''


def test_raw_text_sits_between_the_templated_turns():
    lm = ToyLM([bytes([c]) for c in range(32, 127)] + [b"\n"], seed=1)
    result = genweave.compile(SOURCE).p(model=lm)
    n, x = result.holes["n"], result.holes["x"]
    # ToyLM's template: "<|role|>\n" + content + "\n" per message.
    assert result.text == f"Intro\n<|user|>\nhi\nNote: {n}\n<|assistant|>\n{x}\nEnd"
    assert lm.decode(result.tokens).decode() == f"Intro\n<|user|>\nhi\nNote: {n}\n<|assistant|>\n{x}"
