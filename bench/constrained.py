"""Constrained vs unconstrained decoding on SmolLM2 (one torch thread): JSON schemas of the
JSONSchemaBench sample.

For each schema (file order; those that compile and whose constrained draw completes within the
token cap), a hole ``gen json SCHEMA max CAP tokens`` is drawn once with a fixed seed; it yields
``k`` tokens. The unconstrained run decodes exactly ``k`` tokens from the same prompt (``gen max k
tokens`` with EOS banned). Both sides sample through the same one-stage chain (``logit_bias`` of
one token to -inf: EOS for the unconstrained side, a special token the masks exclude anyway for
the constrained one), so the only difference is the mask work. Times are wall seconds of whole
runs (plan building excluded, prompt prefill included on both sides); "decode only" subtracts a
run of the same prompt with ``max 1 tokens``. Speed ratio = unconstrained time / constrained
time for the same tokens (>= 1: constrained is as fast); the main-thread CPU ratio compares the
CPU time of the thread running the forward passes (robust to other load on the machine). Constrained runs are timed with the masks
overlapped with the forward pass (the default) and without (``_Run.overlap_masks = False``).
"cold" is the first constrained run of each schema: its mask rows are computed as states are
first visited; the medians are over later repeats (rows cached in memory).

    OMP_NUM_THREADS=1 python bench/constrained.py            # 15 schemas, cap 128, 5 repeats
    OMP_NUM_THREADS=1 python bench/constrained.py --quick    # 3 schemas, cap 24, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import LoadMeter  # noqa: E402

from genweave import builders  # noqa: E402
from genweave.compiler.plan import plan  # noqa: E402
from genweave.dsl.errors import GenError  # noqa: E402
from genweave.runtime import execute  # noqa: E402
from genweave.runtime.models.registry import load_model  # noqa: E402
from genweave.runtime.samplers import build_chain, logit_bias  # noqa: E402

DATA = Path("/work/shared/data/jsonschemabench/dev.jsonl")
PROMPT = "Reply with one JSON value for the schema '{name}'.\nJSON: "


@dataclass
class Case:
    name: str
    tokens: int
    constrained: execute.Plan
    unconstrained: execute.Plan
    prefill: execute.Plan
    cold: float  # seconds of the first constrained run (mask rows computed on first visits)


def _bound(model, name: str, hole: builders.Hole, banned: list[int]) -> execute.Plan:
    """The plan of ``PROMPT; value = <hole>`` with a chain banning ``banned``."""
    program = builders.Program("p")
    program.text(PROMPT.format(name=name).replace("{", "{{").replace("}", "}}"))  # braces are literal
    program.ret(program.gen("value", hole.constraint, max_tokens=hole.max_tokens))
    module = builders.compile_module(program)
    bound = plan(module.programs["p"].ir, model.vocab, file=module.file, source=module.syntax.source)
    return replace(bound, chain=build_chain([logit_bias({t: float("-inf") for t in banned})]))


def _run(model, bound: execute.Plan, seed: int, *, overlap: bool = True, cpu: list | None = None):
    """(wall seconds, result) of one draw; appends the main thread's CPU seconds to ``cpu``."""
    execute._Run.overlap_masks = overlap
    try:
        start, start_cpu = time.perf_counter(), time.thread_time()
        result = execute.run_plan(bound, model, {}, draws=1, seed=seed)[0]
        if cpu is not None:
            cpu.append(time.thread_time() - start_cpu)
        return time.perf_counter() - start, result
    finally:
        execute._Run.overlap_masks = True


def cases(model, count: int, cap: int, seed: int) -> list[Case]:
    """The first ``count`` schemas that compile and complete within ``cap`` tokens."""
    vocab = model.vocab
    eos = list(vocab.eos_ids)
    other = min(i for i in vocab.special if i not in vocab.eos_ids)  # masked anyway when constrained
    found = []
    for line in DATA.read_text().splitlines():
        item = json.loads(line)
        try:
            constrained = _bound(model, item["id"], builders.gen(builders.json_schema(item["schema"]),
                                                                 max_tokens=cap), [other])
            cold, result = _run(model, constrained, seed)
        except GenError:
            continue  # refused schemas, dead ends within the cap
        k = len(result.hole_tokens["value"])
        if k < 4:
            continue
        unconstrained = _bound(model, item["id"], builders.gen(max_tokens=k), eos)
        prefill = _bound(model, item["id"], builders.gen(max_tokens=1), eos)
        found.append(Case(item["id"], k, constrained, unconstrained, prefill, cold))
        if len(found) == count:
            break
    return found


def measure(model, case: Case, repeats: int, seed: int) -> dict:
    times = {"unconstrained": [], "overlapped": [], "sequential": [], "prefill": [],
             "cpu unconstrained": [], "cpu overlapped": []}
    for _ in range(repeats):
        t, result = _run(model, case.unconstrained, seed, cpu=times["cpu unconstrained"])
        assert len(result.hole_tokens["value"]) == case.tokens, "the unconstrained run must match k"
        times["unconstrained"].append(t)
        t, result = _run(model, case.constrained, seed, cpu=times["cpu overlapped"])
        assert len(result.hole_tokens["value"]) == case.tokens
        times["overlapped"].append(t)
        times["sequential"].append(_run(model, case.constrained, seed, overlap=False)[0])
        times["prefill"].append(_run(model, case.prefill, seed)[0])
    median = {key: statistics.median(values) for key, values in times.items()}
    median["cold"] = case.cold
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schemas", type=int, default=15)
    parser.add_argument("--cap", type=int, default=128, help="max tokens of a constrained draw")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="3 schemas, cap 24, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.schemas, args.cap, args.repeats = 3, 24, 1
    torch.set_num_threads(1)
    model = load_model("smollm2-135m")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); model {model.name}; "
          f"{args.schemas} schemas, cap {args.cap} tokens, {args.repeats} repeats, seed {args.seed}")
    _run(model, _bound(model, "warm-up", builders.gen(max_tokens=8), list(model.vocab.eos_ids)), 0)
    with LoadMeter() as load:
        chosen = cases(model, args.schemas, args.cap, args.seed)
        rows = [(case, measure(model, case, args.repeats, args.seed)) for case in chosen]
    print("| schema | tokens | unconstrained s | constrained s (overlapped / sequential / cold) "
          "| speed ratio overlapped | sequential | decode only, overlapped | main-thread CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for case, m in rows:
        decode = (m["unconstrained"] - m["prefill"]) / max(m["overlapped"] - m["prefill"], 1e-9)
        print(f"| {case.name} | {case.tokens} | {m['unconstrained']:.3f} | {m['overlapped']:.3f} / "
              f"{m['sequential']:.3f} / {m['cold']:.3f} | {m['unconstrained'] / m['overlapped']:.3f} | "
              f"{m['unconstrained'] / m['sequential']:.3f} | {decode:.3f} | "
              f"{m['cpu unconstrained'] / m['cpu overlapped']:.3f} |")
    total = {key: sum(m[key] for _, m in rows) for key in rows[0][1]}
    tokens = sum(case.tokens for case, _ in rows)
    decode = (total["unconstrained"] - total["prefill"]) / (total["overlapped"] - total["prefill"])
    print(f"\nall {len(rows)} schemas, {tokens} tokens: speed ratio constrained/unconstrained "
          f"**{total['unconstrained'] / total['overlapped']:.3f}** overlapped, "
          f"{total['unconstrained'] / total['sequential']:.3f} sequential, "
          f"{total['unconstrained'] / total['cold']:.3f} cold (first run); decode only {decode:.3f}; "
          f"main-thread CPU {total['cpu unconstrained'] / total['cpu overlapped']:.3f} (the mask work left "
          "on the forward's thread; wall ratios need a second idle core to hide the rest)")
    print(f"load: {load.describe()}")


if __name__ == "__main__":
    main()
