"""``genweave.compile``: source -> a module whose programs are callable."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genweave.compiler import ir
from genweave.compiler.check import CheckReport, check
from genweave.compiler.lower import lower
from genweave.compiler.pipeline import optimize
from genweave.compiler.plan import plan
from genweave.dsl import ast
from genweave.dsl.errors import GenArgumentError, GenError
from genweave.dsl.parser import parse, parse_file
from genweave.runtime.execute import run_plan
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.models.registry import DEFAULT_MODEL, load_model
from genweave.runtime.result import Result, Results

_CONVERTERS = {"str": str, "int": int, "float": float, "bool": None}


def compile(source_or_path: str | Path) -> Module:  # noqa: A001 - the public verb
    """Parse, check, lower and optimize a ``.gen`` module given as source text or a file path.

    >>> m = compile('program echo(x: str) -> str:\\n    "{x}"\\n    y = gen max 1 tokens\\n    return x\\n')
    >>> m.program_names
    ('echo',)
    """
    if isinstance(source_or_path, Path) or _looks_like_path(source_or_path):
        module = parse_file(source_or_path)
    else:
        module = parse(source_or_path)
    report = check(module)  # against what the runtime executes (compiler/features.py)
    programs = {name: optimize(p) for name, p in lower(module).items()}
    return Module(module, programs, report)


def _looks_like_path(text: str) -> bool:
    return "\n" not in text and (text.endswith(".gen") or Path(text).is_file())


class Module:
    """A compiled ``.gen`` module. Each program is an attribute: ``module.hello(topic="x")``."""

    def __init__(self, syntax: ast.Module, programs: dict[str, ir.Program], report: CheckReport):
        self.syntax = syntax
        self.programs = {name: Program(self, p) for name, p in programs.items()}
        self.warnings = report.warnings

    @property
    def program_names(self) -> tuple[str, ...]:
        return tuple(self.programs)

    @property
    def file(self) -> str:
        return self.syntax.file

    def __getattr__(self, name: str) -> Program:
        programs = self.__dict__.get("programs", {})
        if name in programs:
            return programs[name]
        raise AttributeError(f"module {self.file!r} has no program {name!r}; "
                             f"programs: {', '.join(programs) or 'none'}")

    def program(self, name: str | None = None) -> Program:
        """The named program, or the only one (a :class:`GenArgumentError` if ambiguous)."""
        if name is None:
            if len(self.programs) != 1:
                names = ", ".join(self.programs) or "none"
                raise GenArgumentError(f"{self.file} has {len(self.programs)} programs ({names}); "
                                       "name the one to run")
            return next(iter(self.programs.values()))
        if name not in self.programs:
            raise GenArgumentError(f"{self.file} has no program {name!r}; programs: "
                                   f"{', '.join(self.programs) or 'none'}")
        return self.programs[name]


@dataclass(frozen=True)
class Program:
    """A callable program of a compiled module."""

    module: Module
    ir: ir.Program

    @property
    def name(self) -> str:
        return self.ir.name

    def __call__(self, *, model: str | LanguageModel | None = None, draws: int | None = None,
                 seed: int | None = None, functions: Mapping[str, Callable[..., Any]] | None = None,
                 **args: Any) -> Result | Results:
        """Run the program; one draw returns a :class:`Result`, several a :class:`Results`."""
        return self.run(args, model=model, draws=draws, seed=seed, functions=functions)

    def run(self, args: Mapping[str, Any] | None = None, *, model: str | LanguageModel | None = None,
            draws: int | None = None, seed: int | None = None,
            functions: Mapping[str, Callable[..., Any]] | None = None) -> Result | Results:
        """Run with ``args``; ``functions`` maps each extern's ``"module:function"`` to the host's
        callable (externs never import code on their own)."""
        values = self.bind(args or {})
        lm = self.resolve_model(model)
        decoding = self.ir.decoding
        draws = decoding.draws if draws is None else draws
        if draws < 1:
            raise GenArgumentError(f"draws must be >= 1, got {draws}")
        seed = decoding.seed if seed is None else seed
        bound = plan(self.ir, lm.vocab, file=self.module.file, source=self.module.syntax.source,
                     functions=functions)
        results = run_plan(bound, lm, values, draws=draws, seed=seed)
        return results[0] if len(results) == 1 else results

    def bind(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Check and convert the arguments (strings from the command line are parsed)."""
        params = {p.name: p for p in self.ir.params}
        unknown = sorted(set(args) - set(params))
        if unknown:
            raise GenArgumentError(f"program {self.name!r} has no parameter {unknown[0]!r}; "
                                   f"parameters: {', '.join(params) or 'none'}")
        missing = [name for name in params if name not in args]
        if missing:
            raise GenArgumentError(f"program {self.name!r} needs argument {missing[0]!r} "
                                   f"({params[missing[0]].type})")
        return {name: _convert(name, params[name].type, value) for name, value in args.items()}

    def resolve_model(self, model: str | LanguageModel | None) -> LanguageModel:
        if isinstance(model, LanguageModel):
            return model
        if model is None:
            model = self.ir.model.spec if self.ir.model else DEFAULT_MODEL
        return load_model(model)


def _convert(name: str, type_name: str, value: Any) -> Any:
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise GenArgumentError(f"argument {name!r} must be a bool (true/false), got {value!r}")
    try:
        return _CONVERTERS[type_name](value)
    except (TypeError, ValueError):
        raise GenArgumentError(f"argument {name!r} must be {type_name}, got {value!r}") from None


__all__ = ["GenError", "Module", "Program", "compile"]
