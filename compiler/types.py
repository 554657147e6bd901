"""Types of ``.gen`` values, written as strings: ``str``, ``int``, ``float``, ``bool``,
``list[T]``, a schema name (a parsed JSON value of that schema), and ``any`` (a JSON value whose
shape the checker does not track).

>>> unify("int", "float"), element("list[str]"), compatible("float", "int")
('float', 'str', True)
"""

from __future__ import annotations

from genweave.dsl import ast

SCALARS = ("str", "int", "float", "bool")
ANY = "any"


def list_of(element_type: str) -> str:
    return f"list[{element_type}]"


def is_list(t: str) -> bool:
    return t.startswith("list[")


def element(t: str) -> str:
    return t[5:-1] if is_list(t) else ANY


def is_numeric(t: str) -> bool:
    return t in ("int", "float", ANY)


def is_schema(t: str) -> bool:
    return t not in SCALARS and t != ANY and not is_list(t)


def dynamic(t: str) -> bool:
    """Values whose fields and items the checker cannot see (JSON values)."""
    return t == ANY or is_schema(t)


def compatible(expected: str, actual: str) -> bool:
    """Can a value of type ``actual`` be used where ``expected`` is declared?"""
    if expected == actual or ANY in (expected, actual):
        return True
    if expected == "float" and actual == "int":
        return True
    if is_list(expected) and is_list(actual):
        return compatible(element(expected), element(actual))
    return is_schema(expected) and dynamic(actual)


def unify(a: str, b: str) -> str | None:
    """The type of a value that is either ``a`` or ``b`` (None when they do not mix)."""
    if a == b:
        return a
    if ANY in (a, b):
        return b if a == ANY else a
    if {a, b} == {"int", "float"}:
        return "float"
    if is_list(a) and is_list(b):
        inner = unify(element(a), element(b))
        return list_of(inner) if inner is not None else None
    return None


def type_name(ref: ast.TypeRef) -> str:
    """The type a written type annotation denotes (``list[int]`` -> ``"list[int]"``)."""
    if ref.args:
        return f"{ref.name}[{', '.join(type_name(a) for a in ref.args)}]"
    return ref.name
