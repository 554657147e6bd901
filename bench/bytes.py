"""Byte-level decoding cost on SmolLM2: exact vs beams, and a healed vs an unhealed boundary.

Three tables, all on the CPU (or ``--device``), one thread recommended (``OMP_NUM_THREADS=1``):

1. **Prompt ending mid-token** (``...https://github.com/guid``): prefill + ``next_byte_logprobs``
   with the exact beam and with K = 4, 8 (and K = 8 with a 1e-4 prune threshold): wall time, LM
   calls, hypotheses, and the total variation distance of the next-byte distribution to the exact one.
2. **Generation**: ``sample_bytes`` of ``--bytes`` bytes after a prompt: bytes/s, LM calls per byte
   and model rows per byte, against plain token sampling of about as many bytes. The exact
   all-tokenizations beam doubles with every byte (every split of the text is a hypothesis), so it
   runs for ``--exact-bytes`` bytes only; exact canonical mode stays small but pays the bigram rows
   of new left tokens (one batched encode of the vocabulary each, cached).
3. **Healing**: ``heal`` + ``--tokens`` decoded tokens against tokenizing the prompt + the same
   decoding, for a prompt ending mid-token and one ending at a token boundary.
4. **`.gen` programs**: the byte executor (``model ... bytes``, the default view K = 8, prune 1e-4,
   and K = 4) against the token executor on the same program (``--draws`` draws of a hole of at most
   ``--bytes`` bytes / tokens): bytes/s over all draws and LM calls per byte.

    python bench/bytes.py              # 48 bytes, 3 repeats
    python bench/bytes.py --quick      # 16 bytes, 1 repeat
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import LoadMeter  # noqa: E402

import genweave  # noqa: E402
from genweave.runtime.bytes import ByteLM, HFTokenization, heal  # noqa: E402
from genweave.runtime.models.base import LanguageModel  # noqa: E402
from genweave.runtime.models.registry import load_model  # noqa: E402

MID_TOKEN = b"The source code is on GitHub: https://github.com/guid"
AT_BOUNDARY = b"The capital of France is"
GENERATE_PROMPT = b"Once upon a time, in a small village by the sea,"


class Counted(LanguageModel):
    """A model that counts its forward calls (prefill/extend) and the rows x positions they compute."""

    def __init__(self, inner: LanguageModel):
        self.inner, self.calls, self.rows = inner, 0, 0
        self.name, self.vocab, self.device = inner.name, inner.vocab, inner.device
        self.bos_ids, self.context_window = inner.bos_ids, inner.context_window
        self.tokenizer = inner.tokenizer

    def prefill(self, token_lists):
        self.calls += 1
        self.rows += sum(len(t) for t in token_lists)
        return self.inner.prefill(token_lists)

    def extend(self, state, tokens, lengths=None):
        self.calls += 1
        self.rows += int(tokens.numel())
        return self.inner.extend(state, tokens, lengths)

    def logits(self, state):
        return self.inner.logits(state)

    def select(self, state, rows):
        return self.inner.select(state, rows)

    def encode(self, text: str) -> list[int]:
        return self.inner.encode(text)

    def reset(self) -> None:
        self.calls = self.rows = 0


def timed(run: Callable[[], Any], counted: Counted, repeats: int) -> tuple[float, int, int, Any]:
    """Median wall time, and the calls, rows and result of the last run."""
    times = []
    for _ in range(repeats):
        counted.reset()
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), counted.calls, counted.rows, result


def configs(model: Counted, tok: HFTokenization) -> dict[str, ByteLM]:
    return {"exact": ByteLM(model, tokenization=tok), "K=4": ByteLM(model, beam=4, tokenization=tok),
            "K=8": ByteLM(model, beam=8, tokenization=tok),
            "K=8, prune 1e-4": ByteLM(model, beam=8, prune=1e-4, tokenization=tok)}


def prompt_table(model: Counted, tok: HFTokenization, repeats: int) -> None:
    print(f"\n1. prompt ending mid-token: {MID_TOKEN!r}")
    print(f"{'beam':<18}{'ms':>9}{'LM calls':>10}{'rows':>7}{'hyps':>6}{'TV to exact':>13}")
    exact = None
    for label, byte_lm in configs(model, tok).items():
        seconds, calls, rows, (state, logprobs) = timed(
            lambda b=byte_lm: (s := b.prefill(MID_TOKEN), b.next_byte_logprobs(s)), model, repeats)
        exact = logprobs if exact is None else exact
        tv = float((logprobs.exp() - exact.exp()).abs().sum()) / 2
        print(f"{label:<18}{seconds * 1e3:>9.0f}{calls:>10}{rows:>7}{state.size:>6}{tv:>13.2e}")


def generation_table(model: Counted, tok: HFTokenization, count: int, exact_count: int, repeats: int) -> None:
    print(f"\n2. generation after {GENERATE_PROMPT!r} (one draw, prompt prefill excluded)")
    print(f"{'decoder':<26}{'bytes':>6}{'bytes/s':>9}{'LM calls/byte':>15}{'rows/byte':>11}{'max hyps':>9}")
    rows = dict(configs(model, tok))
    rows["exact canonical"] = ByteLM(model, mode="canonical", tokenization=tok)
    for label, byte_lm in rows.items():
        limit = exact_count if label.startswith("exact") else count
        state = byte_lm.prefill(GENERATE_PROMPT)
        seconds, calls, computed, (data, peak) = timed(lambda b=byte_lm, s=state, n=limit: _walk(b, s, n),
                                                        model, repeats)
        name = f"{label} ({'all' if byte_lm.mode == 'all' else 'canonical'})"
        print(f"{name:<26}{len(data):>6}{len(data) / seconds:>9.1f}{calls / len(data):>15.2f}"
              f"{computed / len(data):>11.2f}{peak:>9}")
    seconds, calls, computed, data = timed(lambda: _tokens(model, GENERATE_PROMPT, count), model, repeats)
    print(f"{'token sampling (baseline)':<26}{len(data):>6}{len(data) / seconds:>9.1f}{calls / len(data):>15.2f}"
          f"{computed / len(data):>11.2f}{'-':>9}")


def _walk(byte_lm: ByteLM, state, count: int) -> tuple[bytes, int]:
    """Draw ``count`` bytes one at a time (greedy-free: a fixed-seed sample), tracking the beam size."""
    generator = torch.Generator().manual_seed(0)
    data, peak = b"", state.size
    for _ in range(count):
        logprobs = byte_lm.next_byte_logprobs(state)[:256]
        byte = int(torch.multinomial(logprobs.exp(), 1, generator=generator))
        state = byte_lm.advance(state, byte)
        data += bytes([byte])
        peak = max(peak, state.size)
    return data, peak


def _tokens(model: Counted, prompt: bytes, count: int) -> bytes:
    """Plain token sampling (text tokens only) until ``count`` bytes; prefill included in calls."""
    generator = torch.Generator().manual_seed(0)
    state = model.prefill([model.encode(prompt.decode())])
    model.reset()
    text = b""
    text_mask = ~torch.from_numpy(model.vocab.special_mask.copy())
    while len(text) < count:
        logprobs = model.logits(state)[0].masked_fill(~text_mask, float("-inf"))
        token = torch.multinomial(logprobs.exp(), 1, generator=generator)
        text += model.vocab.token_bytes[int(token)]
        state, _ = model.extend(state, token[None, :])
    return text


def heal_table(model: Counted, tok: HFTokenization, tokens: int, repeats: int) -> None:
    print(f"\n3. boundary cost: heal + {tokens} tokens vs tokenize + {tokens} tokens (one draw)")
    print(f"{'prompt':<44}{'unhealed ms':>12}{'healed ms':>11}{'extra LM calls':>16}{'healed hole':>14}")
    byte_lm = ByteLM(model, tokenization=tok)
    for prompt in (MID_TOKEN, AT_BOUNDARY):
        plain_s, plain_calls, _, _ = timed(lambda p=prompt: _decode(model, model.prefill(
            [model.encode(p.decode())]), tokens), model, repeats)
        healed_s, healed_calls, _, hole = timed(lambda p=prompt: _healed(model, byte_lm, p, tokens), model, repeats)
        print(f"{prompt.decode()[-42:]!r:<44}{plain_s * 1e3:>12.0f}{healed_s * 1e3:>11.0f}"
              f"{healed_calls - plain_calls:>16}{hole!r:>14}")


def _healed(model: Counted, byte_lm: ByteLM, prompt: bytes, tokens: int) -> bytes:
    [healed] = heal(byte_lm, prompt, generator=torch.Generator().manual_seed(0))
    _decode(model, healed.model_state(model), tokens)
    return healed.hole


def _decode(model: Counted, state, tokens: int) -> None:
    generator = torch.Generator().manual_seed(0)
    for _ in range(tokens):
        token = torch.multinomial(model.logits(state)[0].exp(), 1, generator=generator)
        state, _ = model.extend(state, token[None, :])


PROGRAM = '''model lm = "smollm2-135m"{flag}

program story() -> str:
  target:
    "{prompt}"
    text = gen regex r"[^\\n]{{1,{size}}}" max {size} tokens
    return text
  infer:
    sample
'''


def program_table(model: Counted, tok: HFTokenization, size: int, draws: int, repeats: int) -> None:
    print(f"\n4. .gen program, {draws} draws of a hole of at most {size} bytes (bytes) / tokens (tokens)")
    print(f"{'executor':<28}{'bytes':>7}{'bytes/s':>9}{'LM calls/byte':>15}")
    prompt = GENERATE_PROMPT.decode()
    runs = {"tokens": ("", model)}
    for label, beam in (("bytes, K=8, prune 1e-4", 8), ("bytes, K=4, prune 1e-4", 4)):
        runs[label] = (" bytes", ByteLM(model, beam=beam, prune=1e-4, keep_boundary=True, tokenization=tok))
    for label, (flag, runner) in runs.items():
        program = genweave.compile(PROGRAM.format(flag=flag, prompt=prompt, size=size)).story
        seconds, calls, _, results = timed(lambda p=program, m=runner: p(model=m, draws=draws, seed=0),
                                           model, repeats)
        written = sum(len(r.value.encode()) for r in results)
        print(f"{label:<28}{written:>7}{written / seconds:>9.1f}{calls / max(written, 1):>15.2f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 bytes, 6 exact bytes, 1 repeat")
    parser.add_argument("--bytes", type=int, default=48, help="bytes generated per decoder")
    parser.add_argument("--exact-bytes", type=int, default=8, help="bytes generated by the exact beams")
    parser.add_argument("--tokens", type=int, default=16, help="tokens decoded after a boundary")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--draws", type=int, default=4, help="draws of the .gen program (table 4)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.bytes, args.exact_bytes, args.tokens, args.repeats, args.draws = 16, 6, 8, 1, 2
    model = Counted(load_model("smollm2-135m", device=args.device))
    tok = HFTokenization(model)
    ByteLM(model, tokenization=tok).next_byte_logprobs(AT_BOUNDARY)  # warm-up: trie, first forward
    with LoadMeter() as load:
        prompt_table(model, tok, args.repeats)
        generation_table(model, tok, args.bytes, args.exact_bytes, args.repeats)
        heal_table(model, tok, args.tokens, args.repeats)
        program_table(model, tok, args.bytes, args.draws, args.repeats)
    print(f"\nmachine: {load.describe()}; torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
