"""Per-step cost of genweave's fused sampler pipeline vs the equivalent transformers
``LogitsProcessorList`` followed by ``softmax`` + ``multinomial``, in the same run.

One step = process a ``[B, V]`` batch of logits and draw one token per row (genweave: ``sample``,
which also advances the penalty state; transformers: the processors, then the draw). Logits are
``N(0, 3^2)``, penalties see a 512-token history. The table reports the median over repeats of
one step's wall time and the ratio transformers / genweave (> 1: genweave is faster).

With ``--mask``, each step also applies a constraint mask allowing a random half of the tokens:
genweave gets it packed (int32, 32 tokens a word) and applies it in the same pass; transformers
gets a bool ``[B, V]`` mask applied with ``masked_fill`` before its processors.

    python bench/samplers.py                    # V = 49,152 and 262,144, B = 1 and 64, 20 repeats
    python bench/samplers.py --quick            # V = 49,152 only, 3 repeats
    python bench/samplers.py --vocab 262144 --batch 64 --chain temperature|top_p --repeats 5
    python bench/samplers.py --device cuda --mask
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers.generation import logits_process as hf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import LoadMeter  # noqa: E402

from genweave.runtime.samplers import (  # noqa: E402
    compile_batch,
    min_p,
    pack_mask,
    repetition_penalty,
    temperature,
    top_k,
    top_p,
    typical,
)

HISTORY = 512

CHAINS = {
    "temperature|top_p": (
        temperature(0.7) | top_p(0.9),
        lambda: [hf.TemperatureLogitsWarper(0.7), hf.TopPLogitsWarper(0.9)],
    ),
    "temperature|top_k|top_p|min_p": (
        temperature(0.7) | top_k(50) | top_p(0.9) | min_p(0.05),
        lambda: [hf.TemperatureLogitsWarper(0.7), hf.TopKLogitsWarper(50), hf.TopPLogitsWarper(0.9),
                 hf.MinPLogitsWarper(0.05)],
    ),
    "penalties|temperature|typical": (
        repetition_penalty(1.1) | temperature(0.7) | typical(0.9),
        lambda: [hf.RepetitionPenaltyLogitsProcessor(1.1), hf.TemperatureLogitsWarper(0.7),
                 hf.TypicalLogitsWarper(0.9)],
    ),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_step(step, device: torch.device, repeats: int) -> float:
    """Median wall seconds of one call of ``step`` (after two warm-up calls)."""
    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, vocab: int, batch: int, device: torch.device, repeats: int,
            masked: bool = False) -> tuple[float, float]:
    chain, processors = CHAINS[name]
    generator = torch.Generator(device=device).manual_seed(0)
    logits = 3.0 * torch.randn(batch, vocab, generator=generator, device=device)
    history = torch.randint(0, vocab, (batch, HISTORY), generator=generator, device=device)
    allowed = torch.rand(batch, vocab, generator=generator, device=device) < 0.5 if masked else None
    packed = pack_mask(allowed) if masked else None

    compiled = compile_batch([chain], vocab, device=device, batch=batch)
    state = compiled.new_state(batch, prompts=history.tolist()) if compiled.stateful else None

    def ours() -> None:
        tokens = compiled.sample(logits, generator, mask=packed, state=state)
        if state is not None:
            state.rollback(1)  # keep the history length fixed across repeats
        return tokens

    processor_list = hf.LogitsProcessorList(processors())

    def theirs() -> None:
        scores = logits.masked_fill(~allowed, float("-inf")) if masked else logits.clone()
        scores = processor_list(history, scores)
        return torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)

    return median_step(ours, device, repeats), median_step(theirs, device, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="V = 49,152 only, 3 repeats")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per configuration")
    parser.add_argument("--vocab", type=int, action="append", help="vocabulary size (repeatable)")
    parser.add_argument("--batch", type=int, action="append", help="batch size (repeatable)")
    parser.add_argument("--chain", action="append", choices=list(CHAINS), help="one chain (repeatable)")
    parser.add_argument("--mask", action="store_true", help="also apply a constraint mask each step")
    args = parser.parse_args()
    device = torch.device(args.device)
    vocabs = args.vocab or ([49_152] if args.quick else [49_152, 262_144])
    batches = args.batch or [1, 64]
    chains = args.chain or list(CHAINS)
    repeats = args.repeats or (3 if args.quick else 20)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {repeats} repeats, one step = process [B, V] logits + draw one token per row"
          + (", with a packed constraint mask" if args.mask else ""))
    print(f"{'V':>8} {'B':>3}  {'chain':<32} {'genweave ms':>12} {'transformers ms':>16} {'ratio':>7}")
    with LoadMeter() as load:
        for vocab in vocabs:
            for batch in batches:
                for name in chains:
                    ours, theirs = measure(name, vocab, batch, device, repeats, args.mask)
                    print(f"{vocab:>8} {batch:>3}  {name:<32} {1e3 * ours:>12.3f} {1e3 * theirs:>16.3f} "
                          f"{theirs / ours:>6.2f}x", flush=True)
    print(f"machine load during the run: {load.describe()}")


if __name__ == "__main__":
    main()
