"""The options of every inference method: names, kinds, defaults and allowed ranges.

One table serves the checker (ranges, unknown options) and the lowering (defaults). A method's
first option may be written bare: ``beam 4`` is ``beam width 4``, ``speculate draft small k 4``
is ``speculate draft model small k 4``.

>>> values, problems = read_options(METHODS["smc"], None, (("particles", ast.Number(0)),))
>>> problems[0][0]
'smc: particles must be an integer >= 1, got 0'
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from genweave.dsl import ast
from genweave.dsl.errors import Span


@dataclass(frozen=True)
class Option:
    """One option: ``kind`` is ``int``, ``float``, ``choice`` (a word of ``choices``) or ``model``
    (a declared model's name). Bounds are inclusive unless ``low_open``; ``required`` options
    have no default."""

    name: str
    kind: str
    default: object = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    required: bool = False
    doc: str = ""

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "model":
            return "the name of a declared model"
        word = "an integer" if self.kind == "int" else "a number"
        if self.low is not None and self.high is not None:
            left = "(" if self.low_open else "["
            return f"{word} in {left}{_num(self.low)}, {_num(self.high)}]"
        if self.low is not None:
            return f"{word} {'>' if self.low_open else '>='} {_num(self.low)}"
        return word


@dataclass(frozen=True)
class MethodSpec:
    keyword: str
    options: tuple[Option, ...]
    positional: bool = True  # the first option may be written without its name


def _int(name: str, default: object = None, low: float = 1, **kw) -> Option:
    return Option(name, "int", default, low=low, required=default is None, **kw)


METHODS: dict[str, MethodSpec] = {
    "smc": MethodSpec("smc", (
        _int("particles", doc="number of particles"),
        Option("ess", "float", 0.5, low=0.0, high=1.0, doc="resample when ESS / particles falls below this"),
        Option("resample", "choice", "systematic", choices=("multinomial", "stratified", "systematic", "residual"),
               doc="resampling scheme"),
    )),
    "rejection": MethodSpec("rejection", (_int("max", 1000, doc="attempts before giving up"),)),
    "beam": MethodSpec("beam", (
        _int("width", doc="beams kept at each step"),
        Option("length_penalty", "float", 1.0, doc="finished scores are divided by length ** this"),
        Option("early_stopping", "choice", "false", choices=("false", "true", "never"),
               doc="when a draw's search ends (transformers' rule)"),
        Option("kind", "choice", "deterministic", choices=("deterministic", "stochastic"),
               doc="stochastic: Gumbel-top-k, a sample without replacement"),
        _int("returns", 1, doc="hypotheses each draw returns, best first (at most width)"),
    )),
    "best_of": MethodSpec("best_of", (_int("n", doc="traces drawn"),)),
    "cautious": MethodSpec("cautious", (
        _int("candidates", 40, doc="most segments compared at an uncertain step"),
        Option("entropy_low", "float", 0.01, low=0.0, doc="entropy (nats) at and below which one segment is drawn"),
        Option("entropy_high", "float", 1.5, low=0.0, low_open=True,
               doc="entropy (nats) at and above which `candidates` segments are drawn"),
        _int("segment", 64, doc="longest segment (tokens)"),
    ), positional=False),
    "lookahead_tree": MethodSpec("lookahead_tree", (
        _int("width", 2, low=2, doc="candidate tokens per branch and step"),
        _int("depth", 20, doc="tokens after its birth at which a branch is compared with its parent"),
        _int("rollouts", 8, doc="rollouts (branches) per draw"),
        Option("absolute", "float", 0.25, low=0.0, high=1.0, doc="a fork's token needs probability above this"),
        Option("relative", "float", 0.15, low=0.0, high=1.0,
               doc="and a probability within this of the top token's"),
        Option("edit", "float", 0.4, low=0.0, high=1.0,
               doc="a branch closer to its parent than this (edit distance / depth) is pruned"),
    ), positional=False),
}

SPECULATE: dict[str, MethodSpec] = {
    "draft": MethodSpec("speculate draft", (
        Option("model", "model", required=True, doc="the draft model"), _int("k", 4, doc="draft tokens per step"))),
    "ngram": MethodSpec("speculate ngram", (
        _int("n", 2, doc="longest n-gram matched"), _int("k", 10, doc="tokens copied per step"))),
    "recycle": MethodSpec("speculate recycle", (
        _int("k", 8, doc="successors remembered per token"),
        Option("tree", "choice", "static", choices=("static", "dynamic"), doc="draft tree shape"),
    ), positional=False),
    "spectr": MethodSpec("speculate spectr", (
        Option("draft", "model", required=True, doc="the draft model"),
        _int("candidates", 4, doc="draft sequences"), _int("k", 4, doc="draft tokens per sequence"),
    ), positional=False),
    "rsd": MethodSpec("speculate rsd", (
        Option("draft", "model", required=True, doc="the draft model"),
        _int("width", 2, doc="branching of the draft tree"), _int("depth", 4, doc="depth of the draft tree"),
    ), positional=False),
    "self": MethodSpec("speculate self", (
        _int("layers", doc="layers of the model used as its own draft"), _int("k", 4, doc="draft tokens per step"),
    ), positional=False),
}

Problem = tuple[str, Span]


def read_options(spec: MethodSpec, positional: ast.OptionValue | None,
                 options: tuple[tuple[str, ast.OptionValue], ...], span: Span = ast.NO_SPAN,
                 models: frozenset[str] = frozenset()) -> tuple[dict[str, object], list[Problem]]:
    """The option values (defaults filled in) and the problems found, each with its span."""
    problems: list[Problem] = []
    given: list[tuple[str, ast.OptionValue]] = list(options)
    if positional is not None:
        if not spec.positional:
            problems.append((f"{spec.keyword} takes no bare value; write the option's name before it "
                             f"({', '.join(o.name for o in spec.options)})", positional.span))
        elif any(key == spec.options[0].name for key, _ in options):
            problems.append((f"{spec.keyword}: {spec.options[0].name} given twice", positional.span))
        else:
            given.insert(0, (spec.options[0].name, positional))
    known = {o.name: o for o in spec.options}
    values: dict[str, object] = {}
    for key, value in given:
        option = known.get(key)
        if option is None:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append((f"{spec.keyword} has no option '{key}'{hint}; its options are: "
                             f"{', '.join(known)}", value.span))
            continue
        read = _read(option, value, models)
        if isinstance(read, str):
            problems.append((f"{spec.keyword}: {read}", value.span))
        else:
            values[key] = read[0]
    for option in spec.options:
        if option.name not in values and not any(k == option.name for k, _ in given):
            if option.required:
                problems.append((f"{spec.keyword} needs {option.name} ({option.doc})", span))
            values[option.name] = option.default
    return values, problems


def _read(option: Option, value: ast.OptionValue, models: frozenset[str]) -> tuple[object] | str:
    if option.kind in ("choice", "model"):
        if not isinstance(value, ast.Name):
            return f"{option.name} must be {option.describe()}, got {_shown(value)}"
        if option.kind == "choice" and value.id not in option.choices:
            return f"{option.name} must be {option.describe()}, got {value.id}"
        if option.kind == "model" and value.id not in models:
            return f"{option.name}: no model named '{value.id}' is declared"
        return (value.id,)
    if not isinstance(value, ast.Number) or not math.isfinite(value.value):
        return f"{option.name} must be {option.describe()}, got {_shown(value)}"
    number = value.value
    if option.kind == "int" and number != int(number):
        return f"{option.name} must be {option.describe()}, got {number}"
    too_low = option.low is not None and (number < option.low or (option.low_open and number == option.low))
    too_high = option.high is not None and number > option.high
    if too_low or too_high:
        return f"{option.name} must be {option.describe()}, got {number}"
    return (int(number) if option.kind == "int" else float(number),)


def _shown(value: ast.OptionValue) -> str:
    if isinstance(value, ast.Number):
        return repr(value.value)
    if isinstance(value, ast.String):
        return repr(value.constant)
    return value.id


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)
