"""SMC with AWRS proposals on SmolLM2, the setting of genlm-control's benchmark (issue 6).

A chat prompt, one hole of at most 32 tokens constrained by the regex ``(?:[a-z]+ ){5,}[a-z]+\\.``
and by a Python predicate "every word has at most 6 letters" (passed with ``functions=``, declared
``prefix`` so AWRS checks it token by token), 16 particles, resampling (multinomial) when
ESS < 0.5 N. Reported: token draws/s (tokens proposed over wall time), constraint calls per AWRS
draw (mean, p50, max), wall time, ESS, log Z-hat, the heaviest particle, and the machine's load.
A first run compiles the regex against the vocabulary (cached) and warms the model up; it is
not timed.

    python bench/smc.py                     # 32 tokens, 16 particles, 3 timed runs
    python bench/smc.py --quick             # 8 tokens, 4 particles, 1 timed run
    python bench/smc.py --propose sample    # masked proposals instead of AWRS
    python bench/smc.py --heads packed,plain  # also the transformers output head, interleaved

For reference (issue 6): genlm-control 0.4.1 measured about 11 draws/s and a median of 2 calls
per draw on the machine the issue was written on.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import LoadMeter  # noqa: E402

import genweave  # noqa: E402
from genweave.runtime.models.hf import HFModel  # noqa: E402
from genweave.runtime.models.registry import load_model  # noqa: E402

PROMPT = "Write a short, simple story about a cat who finds a hat."

SOURCE = '''\
model lm = "smollm2-135m" chat
predicate short_words = extern "bench:short_words" prefix
program story() -> str:
  target:
    user: "{prompt}"
    assistant:
        text = gen regex r"(?:[a-z]+ ){{5,}}[a-z]+\\." where short_words(text) max {tokens} tokens
    return text
  infer:
    smc particles {particles} ess 0.5 resample multinomial:
        propose {propose}
'''


def short_words(text: str) -> bool:
    """Every word has at most 6 letters (prefix-monotone: a longer word stays longer)."""
    return all(len(word) <= 6 for word in re.findall(r"[A-Za-z]+", text))


def run_once(program, model, seed: int) -> dict:
    start = time.perf_counter()
    results = program(model=model, seed=seed, functions={"bench:short_words": short_words})
    wall = time.perf_counter() - start
    stats = results.stats
    calls = stats.calls
    best = max(results, key=lambda r: r.weight)
    return {"wall": wall, "draws": stats.draws, "rate": stats.draws / wall,
            "calls": (float(calls.mean()), float(np.median(calls)), int(calls.max())) if calls.size else None,
            "ess": float(results.ess[0]), "log_z": float(results.log_z[0]), "resamplings": stats.resamplings,
            "best": best.value, "alive": sum(r.weight > -float("inf") for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--particles", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--propose", choices=("awrs", "sample"), default="awrs")
    parser.add_argument("--device", default=None, help="torch device of the model (default: CPU)")
    parser.add_argument("--quick", action="store_true", help="8 tokens, 4 particles, 1 timed run")
    parser.add_argument("--heads", default="packed",
                        help="comma-separated output heads to run in turn: packed (the default, oneDNN "
                             "prepacked weight on CPU) and/or plain (the transformers Linear), e.g. packed,plain")
    args = parser.parse_args()
    if args.quick:
        args.tokens, args.particles, args.repeats = 8, 4, 1
    loaded = load_model("smollm2-135m", device=args.device)
    models = {"packed": loaded, "plain": HFModel(loaded.model, loaded.tokenizer, loaded.name, pack_head=False)}
    heads = [h for h in args.heads.split(",") if h]
    if not heads or set(heads) - set(models):
        parser.error(f"--heads takes packed and/or plain, not {args.heads!r}")
    program = genweave.compile(SOURCE.format(prompt=PROMPT, tokens=args.tokens, particles=args.particles,
                                             propose=args.propose)).story
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {loaded.device}; {loaded.name}; "
          f"{args.particles} particles x {args.tokens} tokens, propose {args.propose}, multinomial, ESS 0.5")
    for head in heads:
        run_once(program, models[head], seed=12345)  # warm-up: compiles the regex (cached), first forwards
    print("| head | run | wall s | token draws | draws/s | calls/draw mean, p50, max | resamplings | ESS | log Z | "
          "alive | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = {head: [] for head in heads}
    for repeat in range(args.repeats):
        for head in heads:  # interleaved: the heads see the same machine state
            with LoadMeter() as load:
                row = run_once(program, models[head], seed=repeat)
            rows[head].append(row)
            calls = "-" if row["calls"] is None else "{:.2f}, {:g}, {}".format(*row["calls"])
            print(f"| {head} | {repeat} | {row['wall']:.2f} | {row['draws']} | {row['rate']:.1f} | {calls} | "
                  f"{row['resamplings']} | {row['ess']:.2f} | {row['log_z']:.2f} | "
                  f"{row['alive']}/{args.particles} | {load.describe()} |", flush=True)
    for head in heads:
        print(f"{head} head: median draws/s {statistics.median(r['rate'] for r in rows[head]):.1f}, median wall "
              f"{statistics.median(r['wall'] for r in rows[head]):.2f} s; heaviest particle of the last run: "
              f"{rows[head][-1]['best']!r}")


if __name__ == "__main__":
    main()
