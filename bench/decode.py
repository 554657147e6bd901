"""genweave decoding vs transformers' ``model.generate`` on SmolLM2, measured in the same run.

For each prompt genweave runs a chat program with ``gen max N tokens``; ``generate`` then produces
exactly as many new tokens as genweave did (min = max = that count), so both sides do the same
work. tokens/s = new tokens over all prompts / wall time of all calls, per repeat; the table
reports the median over repeats and the ratio genweave / generate. Prompt prefill is included.

    python bench/decode.py                  # 128 tokens, 5 prompts, 3 repeats
    python bench/decode.py --quick          # 16 tokens, 2 prompts, 1 repeat
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import LoadMeter  # noqa: E402

import genweave  # noqa: E402
from genweave.runtime.models.registry import load_model  # noqa: E402

PROMPTS = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how photosynthesis works, step by step, for a high-school student.",
    "Give me a detailed plan for learning to play the guitar in three months.",
    "Describe the main causes of the French Revolution and their consequences.",
    "Write a friendly email inviting my colleagues to a team picnic next Saturday.",
]

SOURCE = '''\
model lm = "smollm2-135m" chat
program answer(prompt: str) -> str:
  target:
    user: "{{prompt}}"
    assistant:
        text = gen max {tokens} tokens
    return text
  infer:
    {infer}
'''

MODES = {
    "greedy": ("greedy", dict(do_sample=False)),
    "sample T=0.7": ("sample temperature 0.7", dict(do_sample=True, temperature=0.7, top_k=0, top_p=1.0)),
    "T=0.7+top_p 0.9+min_p 0.05": ("sample temperature 0.7 | top_p 0.9 | min_p 0.05",
                                       dict(do_sample=True, temperature=0.7, top_k=0, top_p=0.9, min_p=0.05)),
}


def run_mode(model, infer: str, hf_kwargs: dict, tokens: int, prompts: list[str], repeats: int):
    program = genweave.compile(SOURCE.format(tokens=tokens, infer=infer)).answer
    tok = model.tokenizer
    rows = []
    for repeat in range(repeats):
        gw_time = hf_time = 0.0
        count = 0
        with LoadMeter() as load:
            for i, prompt in enumerate(prompts):
                start = time.perf_counter()
                result = program(prompt=prompt, model=model, seed=1000 * repeat + i)
                gw_time += time.perf_counter() - start
                n = len(result.hole_tokens["text"])
                text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                               add_generation_prompt=True)
                ids = torch.tensor([model.encode(text)])
                start = time.perf_counter()
                model.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max(n, 1),
                                     min_new_tokens=max(n, 1), pad_token_id=0, **hf_kwargs)
                hf_time += time.perf_counter() - start
                count += n
        rows.append((count / gw_time, count / hf_time, count, load.describe()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="16 tokens, 2 prompts, 1 repeat")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes to run")
    args = parser.parse_args()
    tokens, repeats, prompts = args.tokens, args.repeats, PROMPTS
    if args.quick:
        tokens, repeats, prompts = 16, 1, PROMPTS[:2]
    model = load_model("smollm2-135m")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; model {model.name}; "
          f"{len(prompts)} prompts x {tokens} max new tokens, {repeats} repeats")
    # Warm-up: the first calls of a process are several times slower on both sides.
    run_mode(model, "greedy", dict(do_sample=False), 8, prompts[:1], 1)
    print("| mode | genweave tok/s | generate tok/s | ratio | tokens | load (last repeat) |")
    print("|---|---|---|---|---|---|")
    for mode in args.modes.split(","):
        infer, hf_kwargs = MODES[mode]
        rows = run_mode(model, infer, hf_kwargs, tokens, prompts, repeats)
        gw = statistics.median(r[0] for r in rows)
        hf = statistics.median(r[1] for r in rows)
        ratios = [f"{r[0] / r[1]:.3f}" for r in rows]
        print(f"| {mode} | {gw:.2f} | {hf:.2f} | **{gw / hf:.3f}** (per repeat {', '.join(ratios)}) "
              f"| {rows[-1][2]} | {rows[-1][3]} |", flush=True)


if __name__ == "__main__":
    main()
