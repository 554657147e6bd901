"""``genweave.compile``: source -> a module whose programs are callable."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
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
from genweave.runtime.bytes import ByteEnsemble, ByteLM
from genweave.runtime.bytes.program import byte_view
from genweave.runtime.execute import run_plan
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.models.registry import DEFAULT_MODEL, load_model
from genweave.runtime.result import Result, Results

_CONVERTERS = {"str": str, "int": int, "float": float, "bool": None}

# What ``model=`` accepts: a spec, a token model, a byte-level model, or the program's declared
# models by name (e.g. the members of an ensemble: ``model={"a": ByteLM(lm_a), "b": lm_b}``).
ModelArg = str | LanguageModel | ByteLM | ByteEnsemble | Mapping[str, Any] | None


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

    def __call__(self, *, model: ModelArg = None, draws: int | None = None,
                 seed: int | None = None, functions: Mapping[str, Callable[..., Any]] | None = None,
                 **args: Any) -> Result | Results:
        """Run the program; one draw returns a :class:`Result`, several (or an ``enumerate`` law) a
        :class:`Results`."""
        return self.run(args, model=model, draws=draws, seed=seed, functions=functions)

    def run(self, args: Mapping[str, Any] | None = None, *, model: ModelArg = None,
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
        if isinstance(lm, ByteLM | ByteEnsemble):  # a byte model passed for a token-level program
            bound = replace(bound, level="bytes")
        results = run_plan(bound, lm, values, draws=draws, seed=seed)
        # an exact law (`enumerate`) stays a collection, even of one outcome
        return results[0] if len(results) == 1 and not bound.enumerate else results

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

    def resolve_model(self, model: ModelArg) -> LanguageModel | ByteLM | ByteEnsemble:
        """The model to run on: ``model`` (a mapping gives the declared models by name), else the
        program's declared model; byte-level programs (``bytes``, ensembles) get byte-level views."""
        declared = self.ir.model
        byte_level = declared is not None and (declared.bytes or bool(declared.members))
        if isinstance(model, ByteLM | ByteEnsemble):
            return model
        if isinstance(model, str | LanguageModel):
            lm = model if isinstance(model, LanguageModel) else load_model(model)
            return byte_view(lm) if byte_level else lm
        named = dict(model or {})
        if declared is None:
            return load_model(DEFAULT_MODEL)
        if declared.members:
            return _ensemble(declared, named)
        lm = named.get(declared.name, declared.spec)
        lm = load_model(lm) if isinstance(lm, str) else lm
        return byte_view(lm) if byte_level else lm


def _ensemble(declared: ir.ModelRef, named: Mapping[str, Any]) -> ByteEnsemble:
    """The byte-level mixture of an ``ensemble(...)`` declaration's members (models from ``named``
    by member name, else loaded from their specs)."""
    members = []
    for member, _ in declared.members:
        if member.members:
            raise GenArgumentError(f"ensemble '{declared.name}' has the ensemble '{member.name}' as a member",
                                   hint="list the models of both in one ensemble")
        found = named.get(member.name, member.spec)
        members.append(byte_view(load_model(found) if isinstance(found, str) else found))
    if any(isinstance(m, ByteEnsemble) for m in members):
        raise GenArgumentError(f"a member of ensemble '{declared.name}' is itself an ensemble",
                               hint="pass a ByteLM or a token model for each member")
    return ByteEnsemble(members, [weight for _, weight in declared.members], kind="mixture")


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
