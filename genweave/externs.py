"""Host functions for ``extern`` predicates and potentials, imported only when the user opts in.

A ``.gen`` file never runs Python by itself: the host passes ``functions={"module:function": fn}``,
or the command line's ``--allow-python`` imports each ``module:function`` the program names (the
``.gen`` file's folder is searched first).
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from genweave.compiler import ir
from genweave.dsl.errors import GenArgumentError


def externs_of(program: ir.Program) -> list[ir.Extern]:
    """Every extern a program refers to (in its body, constraints and inference), once each."""
    seen: dict[str, ir.Extern] = {}
    for node in _walk(program):
        if isinstance(node, ir.Extern):
            seen.setdefault(node.ref, node)
    return list(seen.values())


def import_functions(program: ir.Program, folder: str | Path | None = None) -> dict[str, Callable[..., Any]]:
    """Import the host functions of ``program``'s externs (``--allow-python``)."""
    functions = {}
    for extern in externs_of(program):
        module_name, _, attr = extern.ref.partition(":")
        if not module_name or not attr:
            raise GenArgumentError(f"extern '{extern.name}' names {extern.ref!r}, not 'module:function'")
        functions[extern.ref] = _load(module_name, attr, extern, folder)
    return functions


def _load(module_name: str, attr: str, extern: ir.Extern, folder: str | Path | None) -> Callable[..., Any]:
    path = [str(folder)] if folder is not None else []
    sys.path[:0] = path
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise GenArgumentError(f"cannot import {module_name!r} for {extern.kind} '{extern.name}': {err}") from None
    finally:
        del sys.path[:len(path)]
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise GenArgumentError(f"{module_name!r} has no function {attr!r} for {extern.kind} '{extern.name}'")
    return fn


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            yield from _walk(getattr(node, f.name))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)
