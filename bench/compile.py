"""Compile time of a 500-line ``.gen`` module: parse, check (names, types, embedded regexes and
schemas, inference legality), lower and the pass pipeline, each stage timed separately.

The module is generated: declarations (regexes, a schema, a sampler, a predicate) and programs
using text, roles-free holes with regex/choice/int/schema constraints, ``let``, ``if``/``else``,
``for``, program calls, ``factor`` and sampler chains. Caches that key on embedded text (regex
and schema checks) are cleared before each repeat, so every repeat compiles from scratch.

    python bench/compile.py              # 20 repeats, median per stage
    python bench/compile.py --quick      # 3 repeats
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import LoadMeter  # noqa: E402

from genweave.compiler import embedded, json_schema  # noqa: E402
from genweave.compiler.check import check  # noqa: E402
from genweave.compiler.features import LANGUAGE  # noqa: E402
from genweave.compiler.lower import lower  # noqa: E402
from genweave.compiler.pipeline import optimize  # noqa: E402
from genweave.dsl.parser import parse  # noqa: E402

TARGET_MS = 300.0

HEADER = '''model lm = "smollm2-135m"
regex word = r"[a-z]+"
regex code = r"[A-Z]{3}-[0-9]{4}"
schema Item = json """{"type": "object", "required": ["name", "qty"],
  "properties": {"name": {"type": "string", "maxLength": 40}, "qty": {"type": "integer", "minimum": 0}}}"""
sampler warm = temperature 0.8 | top_p 0.95
predicate short = extern "preds:short" prefix
'''

PROGRAM = '''
program step{i}(topic: str, n: int) -> str:
  target:
    "Task {i} about {{topic}}:\\n"
    let limit = n * 2 + {i}
    title = gen word & regex r"[a-z]{{2,12}}" max 6 tokens
    if limit > 10 and len(title) > 2:
        label = gen choice ["low", "mid", "high"]
    else:
        label = gen "none"
    for k in range(n):
        "Line {{k + 1}}: "
        line = gen regex r"[^\\n]{{5,60}}" stop "\\n" max 30 tokens
    count = gen int max 4 tokens
    item = gen Item max 80 tokens
    ref = gen code
    note = gen regex r"[a-z ]{{1,40}}" where short(note)
    let head = step0(topic, n)
    factor -0.01 * len(title + head)
    return title + label
  infer:
    sample warm | min_p 0.05 | temperature 1
    smc particles 8 ess 0.5:
        propose sample temperature 0.9
    draws 2
'''


def module_source(lines: int = 500) -> str:
    """A module of about ``lines`` lines (each program calls the first one)."""
    chunks = [HEADER, 'program step0(topic: str, n: int) -> str:\n    "Start {topic}."\n'
                      '    x = gen word max 3 tokens\n    return x\n']
    i = 1
    while sum(c.count("\n") for c in chunks) < lines:
        chunks.append(PROGRAM.format(i=i))
        i += 1
    return "".join(chunks)


def compile_once(source: str) -> dict[str, float]:
    embedded.regex_problems.cache_clear()
    embedded.regex_is_finite.cache_clear()
    embedded.grammar_problems.cache_clear()
    json_schema.schema_problems.cache_clear()
    times = {}
    t0 = time.perf_counter()
    module = parse(source, "bench.gen")
    t1 = time.perf_counter()
    check(module, supported=LANGUAGE)
    t2 = time.perf_counter()
    programs = lower(module)
    t3 = time.perf_counter()
    for program in programs.values():
        optimize(program)
    t4 = time.perf_counter()
    times.update(parse=t1 - t0, check=t2 - t1, lower=t3 - t2, passes=t4 - t3, total=t4 - t0)
    return {k: v * 1000 for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 20")
    parser.add_argument("--lines", type=int, default=500)
    args = parser.parse_args()
    source = module_source(args.lines)
    repeats = 3 if args.quick else 20
    compile_once(source)  # warm up: imports, Lark tables, the runtime's sampler registry
    with LoadMeter() as load:
        runs = [compile_once(source) for _ in range(repeats)]
    print(f"module: {source.count(chr(10))} lines, {source.count('program ')} programs; {repeats} repeats")
    print(f"{'stage':<8} {'median ms':>10} {'min ms':>8}")
    for stage in ("parse", "check", "lower", "passes", "total"):
        values = [r[stage] for r in runs]
        print(f"{stage:<8} {statistics.median(values):>10.1f} {min(values):>8.1f}")
    total = statistics.median(r["total"] for r in runs)
    verdict = "meets" if total < TARGET_MS else "misses"
    print(f"total {total:.1f} ms {verdict} the {TARGET_MS:.0f} ms target; {load.describe()}")


if __name__ == "__main__":
    main()
