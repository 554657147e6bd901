"""Modules and the names they see: ``use std.NAME`` and ``use "path.gen"`` resolution.

``std.NAME`` is ``stdlib/NAME.gen`` of the installed package; a quoted path is relative to the
importing file (or to the working directory for source text without a file). A module's
declarations are reached as ``NAME.x`` (``NAME`` is the module's last part or file stem), or
unqualified when listed: ``use std.patterns (email)``.

>>> scope = build_scope(parse('use std.patterns\\nuse std.patterns (email)\\n'))
>>> scope.lookup("email")[1].name, scope.lookup("patterns.uuid")[1].name
('email', 'uuid')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from genweave.dsl import ast
from genweave.dsl.errors import GenCheckError, GenError, GenSyntaxError, Span
from genweave.dsl.parser import parse

# Declarations a module can export (everything with a name, except its models).
Exported = ast.RegexDecl | ast.GrammarDecl | ast.SchemaDecl | ast.SamplerDecl | ast.ExternDecl | ast.ProgramDecl


@dataclass
class ModuleScope:
    """The names one module sees: its own declarations and those of the modules it uses."""

    module: ast.Module
    path: Path | None
    decls: dict[str, ast.Decl] = field(default_factory=dict)
    imports: dict[str, ModuleScope] = field(default_factory=dict)
    names: dict[str, tuple[ModuleScope, ast.Decl]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return str(self.path) if self.path is not None else self.module.file

    def lookup(self, dotted: str) -> tuple[ModuleScope, ast.Decl] | None:
        """The declaration ``dotted`` names here (``email``, ``patterns.email``), with its module."""
        head, _, rest = dotted.partition(".")
        if rest:
            inner = self.imports.get(head)
            return inner.lookup_local(rest) if inner is not None else None
        return self.lookup_local(head)

    def lookup_local(self, name: str) -> tuple[ModuleScope, ast.Decl] | None:
        if name in self.decls and not isinstance(self.decls[name], ast.UseDecl | ast.ModelDecl):
            return self, self.decls[name]
        return self.names.get(name)

    def default_model(self) -> ast.ModelDecl | None:
        models = self.module.models()
        return models[0] if models else None


def build_scope(module: ast.Module, errors: list[GenError] | None = None) -> ModuleScope:
    """The scope of ``module``, loading what it uses. Problems go to ``errors`` (or are raised)."""
    sink: list[GenError] = [] if errors is None else errors
    scope = _Loader(sink).scope(module, _module_path(module), ())
    if errors is None and sink:
        first = sink[0]
        raise GenCheckError(first.message, span=first.span, source=first.source, hint=first.hint, errors=sink)
    return scope


def _module_path(module: ast.Module) -> Path | None:
    path = Path(module.file)
    return path.resolve() if module.file.endswith(".gen") and path.is_file() else None


class _Loader:
    """Loads each module once per build (diamond imports share a scope) and finds cycles."""

    def __init__(self, errors: list[GenError]):
        self.errors = errors
        self.loaded: dict[Path, ModuleScope] = {}

    def error(self, module: ast.Module, message: str, span: Span, hint: str | None = None) -> None:
        span = Span(span.line, span.col, span.end_line, span.end_col, module.file)
        self.errors.append(GenCheckError(message, span=span, source=module.source, hint=hint))

    def scope(self, module: ast.Module, path: Path | None, stack: tuple[Path, ...]) -> ModuleScope:
        scope = ModuleScope(module, path)
        for decl in module.decls:
            if not isinstance(decl, ast.UseDecl):
                scope.decls.setdefault(decl.name, decl)
        for use in module.uses():
            inner = self._use(module, path, use, stack)
            if inner is not None:
                self._bind(scope, use, inner)
        return scope

    def _use(self, module: ast.Module, importer: Path | None, use: ast.UseDecl,
             stack: tuple[Path, ...]) -> ModuleScope | None:
        target = self._resolve(module, importer, use)
        if target is None:
            return None
        if target in stack or target == importer:
            chain = " -> ".join(p.name for p in (*stack, importer, target) if p is not None)
            self.error(module, f"import cycle: {chain}", use.span, hint="move the shared declarations "
                       "into a third module that both use")
            return None
        if target not in self.loaded:
            loaded = self._parse(module, use, target)
            if loaded is None:
                return None
            self.loaded[target] = self.scope(loaded, target, (*stack, *(p for p in (importer,) if p)))
        return self.loaded[target]

    def _resolve(self, module: ast.Module, importer: Path | None, use: ast.UseDecl) -> Path | None:
        if isinstance(use.path, ast.String):
            if not use.path.is_constant:
                self.error(module, "a module path cannot interpolate values", use.path.span)
                return None
            base = importer.parent if importer is not None else Path.cwd()
            target = (base / use.path.constant).resolve()
            if not target.is_file():
                self.error(module, f"no module file {use.path.constant!r} (looked for {target})", use.path.span)
                return None
            return target
        parts = use.path.split(".")
        if parts[0] != "std" or len(parts) != 2:
            self.error(module, f"unknown module '{use.path}'", use.span,
                       hint='stdlib modules are `std.NAME`; local files are `use "path.gen"`')
            return None
        target = stdlib_path(parts[1])
        if target is None:
            known = ", ".join(f"std.{n}" for n in stdlib_modules()) or "none"
            self.error(module, f"no stdlib module '{use.path}'", use.span, hint=f"stdlib modules: {known}")
        return target

    def _parse(self, module: ast.Module, use: ast.UseDecl, target: Path) -> ast.Module | None:
        try:
            return _parse_cached(target.read_text(encoding="utf-8"), str(target))
        except GenSyntaxError as err:
            self.errors.append(err)
        except (OSError, UnicodeDecodeError) as err:
            self.error(module, f"cannot read module {str(target)!r}: {err}", use.span)
        return None

    def _bind(self, scope: ModuleScope, use: ast.UseDecl, inner: ModuleScope) -> None:
        if not use.names:
            scope.imports[use.name] = inner
            return
        for name in use.names:
            found = inner.lookup_local(name)
            if found is None:
                exported = ", ".join(sorted(n for n, d in inner.decls.items() if isinstance(d, Exported)))
                self.error(scope.module, f"module '{_shown(use)}' has no declaration '{name}'", use.span,
                           hint=f"it declares: {exported or 'nothing'}")
            else:
                scope.names[name] = found


def _shown(use: ast.UseDecl) -> str:
    return use.path if isinstance(use.path, str) else use.path.constant


@lru_cache(maxsize=64)
def _parse_cached(text: str, file: str) -> ast.Module:
    return parse(text, file=file)


def stdlib_path(name: str) -> Path | None:
    """The file of stdlib module ``name`` (``stdlib/NAME.gen``), or None."""
    candidate = resources.files("genweave.stdlib").joinpath(f"{name}.gen")
    return Path(str(candidate)).resolve() if candidate.is_file() else None


def stdlib_modules() -> tuple[str, ...]:
    root = resources.files("genweave.stdlib")
    return tuple(sorted(p.name.removesuffix(".gen") for p in root.iterdir() if p.name.endswith(".gen")))


def read_relative(scope: ModuleScope, relative: str) -> tuple[Path, str]:
    """Read a file named relative to a module (``json file "x.json"``); OSError if unreadable."""
    base = scope.path.parent if scope.path is not None else Path.cwd()
    path = (base / relative).resolve()
    return path, path.read_text(encoding="utf-8")
