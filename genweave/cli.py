"""The ``genweave`` command line: run, check, format and explain ``.gen`` programs.

Every genweave error is printed as one clear message (``file:line:col``, the source line and a
caret for source errors) without a traceback, and the command exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from genweave.dsl.errors import GenArgumentError, GenError

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genweave",
        description="Run, check and inspect .gen programs (constrained and structured decoding).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a program and print its value(s)",
                              description="Run a program of a .gen file and print each draw's value.")
    run.add_argument("file", help="the .gen file")
    run.add_argument("--program", "-p", help="program to run (needed when the file has several)")
    run.add_argument("--arg", "-a", action="append", default=[], metavar="NAME=VALUE",
                     help="a program argument; repeat for several")
    run.add_argument("--model", "-m", help="model to run on instead of the file's first model "
                     "(a registry name such as smollm2-135m, a local folder or a .gguf file)")
    run.add_argument("--seed", type=int, help="random seed (overrides the program's `seed`)")
    run.add_argument("--draws", "-n", type=int, help="number of draws (overrides `draws`)")
    run.add_argument("--allow-python", action="store_true",
                     help="import the Python functions the program's `extern` declarations name "
                     "(module:function, searched first beside FILE); without it externs are an error")
    run.add_argument("--json", action="store_true",
                     help="print the draws as JSON (value, holes, text, logprob, tokens)")

    chk = commands.add_parser("check", help="parse and check a file without running it",
                              description="Parse and check a .gen file; print warnings; exit 2 on errors.")
    chk.add_argument("file", help="the .gen file")

    fmt = commands.add_parser("fmt", help="format .gen files canonically",
                              description="Rewrite .gen files in the canonical layout (comments are kept). "
                              "With --check, change nothing and exit 1 if a file would change.")
    fmt.add_argument("files", nargs="+", metavar="FILE", help="the .gen files")
    fmt.add_argument("--check", action="store_true", help="only report files that are not formatted")

    exp = commands.add_parser("explain", help="show how programs compile (IR after each pass, per hole)",
                              description="Print each program's IR after lowering and after each pass, then "
                              "per hole: constraint class, method, estimated cost and guarantee.")
    exp.add_argument("file", help="the .gen file")
    exp.add_argument("--program", "-p", help="explain only this program")
    exp.add_argument("--holes", action="store_true", help="print only the table of holes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "fmt":
            return _fmt(args)
        if args.command == "explain":
            return _explain(args)
        return _check(args)
    except GenError as err:
        print(err.render(), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parse_args(pairs: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise GenArgumentError(f"--arg {pair!r} is not NAME=VALUE")
        if name in values:
            raise GenArgumentError(f"--arg {name!r} is given twice")
        values[name] = value
    return values


def _run(args: argparse.Namespace) -> int:
    import genweave  # imported here so `genweave --help` stays fast

    module = genweave.compile(_as_path(args.file))
    program = module.program(args.program)
    functions = None
    if args.allow_python:
        from genweave.externs import import_functions

        functions = import_functions(program.ir, _as_path(args.file).resolve().parent)
    result = program.run(_parse_args(args.arg), model=args.model, draws=args.draws, seed=args.seed,
                         functions=functions)
    draws = list(result) if isinstance(result, genweave.Results) else [result]
    particles = result.particles if isinstance(result, genweave.Results) else 1
    if args.json:
        print(json.dumps([_as_json(r) for r in draws], ensure_ascii=False, indent=2))
    elif particles > 1:
        _print_posterior(result)
    else:
        for i, draw in enumerate(draws):
            if len(draws) > 1:
                print(f"--- draw {i + 1}/{len(draws)}")
            print(_display(draw.value))
    return 0


def _check(args: argparse.Namespace) -> int:
    import genweave

    module = genweave.compile(_as_path(args.file))
    for warning in module.warnings:
        print(f"warning: {warning.render()}", file=sys.stderr)
    print(f"{module.file}: ok ({len(module.program_names)} program(s): {', '.join(module.program_names)})")
    return 0


def _fmt(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genweave.dsl.format import format_module
    from genweave.dsl.parser import parse_file

    unformatted = []
    for file in args.files:
        path = Path(file)
        module = parse_file(path)
        formatted = format_module(module)
        if formatted == module.source:
            continue
        unformatted.append(file)
        if args.check:
            print(f"would reformat {file}")
        else:
            path.write_text(formatted, encoding="utf-8")
            print(f"reformatted {file}")
    return 1 if args.check and unformatted else 0


def _explain(args: argparse.Namespace) -> int:
    from genweave.compiler.explain import explain
    from genweave.dsl.parser import parse_file

    module = parse_file(_as_path(args.file))
    if args.program is not None and args.program not in {p.name for p in module.programs()}:
        raise GenArgumentError(f"{args.file} has no program {args.program!r}; programs: "
                               f"{', '.join(p.name for p in module.programs()) or 'none'}")
    print(explain(module, program=args.program, passes=not args.holes), end="")
    return 0


def _as_path(file: str):
    from pathlib import Path

    return Path(file)


def _print_posterior(results) -> None:
    """SMC: the weighted posterior over values, then each draw's log Z-hat and ESS."""
    print(f"posterior over {len(results)} particles ({results.particles} per draw):")
    for value, weight in results.posterior.items():
        print(f"  {weight:8.4f}  {_display(value)}")
    for g, (log_z, ess) in enumerate(zip(results.log_z.tolist(), results.ess.tolist())):
        print(f"draw {g + 1}: log Z-hat {log_z:.4f}, ESS {ess:.1f} of {results.particles}")


def _display(value) -> str:
    """A value as the user would write it: JSON for objects, arrays and booleans."""
    if isinstance(value, dict | list | bool) or value is None:
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _as_json(result) -> dict:
    return {"value": result.value, "holes": result.holes, "text": result.text,
            "logprob": _finite(result.logprob), "weight": _finite(result.weight),
            "tokens": list(result.tokens), "guarantee": result.guarantee}


def _finite(x: float) -> float | str:
    """JSON has no inf/nan: those are written as strings."""
    return x if x == x and abs(x) != float("inf") else str(x)


if __name__ == "__main__":
    sys.exit(main())
