"""Check JSON Schemas embedded in ``.gen`` source, pointing into the JSON text.

:func:`parse_json` is a small JSON reader that remembers where every value and key starts, so a
problem found in the parsed schema maps back to its place. :func:`schema_problems` reports
invalid JSON, invalid schemas (JSON Schema meta-validation) and keywords genweave does not
enforce (the classes of ``genweave.runtime.constraints.json_schema.keywords``): an unsupported
keyword is an error, never silently dropped.

>>> schema_problems('{"type": "object", "properties": {"a": {"type": "strin"}}}')[0][0][:50]
"unknown JSON Schema type 'strin' at properties.a.t"
>>> schema_problems('{"type": "array", "contains": {"type": "null"}}')
[("JSON Schema keyword 'contains' is not supported", 18, 28)]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache

import jsonschema

from genweave.runtime.constraints.json_schema.keywords import ANNOTATIONS, ENFORCED, REFUSED, STRUCTURAL
from genweave.runtime.constraints.json_schema.strings import DEFINED_FORMATS, FORMATS

Problem = tuple[str, int, int]
Path = tuple[str | int, ...]

# Keywords whose value is a schema, a list of schemas, or a mapping name -> schema.
_SCHEMA_VALUED = {"items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else",
                  "additionalItems", "unevaluatedItems", "unevaluatedProperties"}
_SCHEMA_LISTS = {"anyOf", "allOf", "oneOf", "prefixItems"}
_SCHEMA_MAPS = {"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"}

# The keyword and format classes are the runtime compiler's (one list): enforced keywords,
# annotations and structural ones are fine, refused ones are errors; keys that are no JSON Schema
# keyword are ignored, as validators ignore them.
SUPPORTED_KEYWORDS = ENFORCED | ANNOTATIONS | STRUCTURAL
SUPPORTED_FORMATS = frozenset(FORMATS)
_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")


@dataclass
class Positions:
    """Where each value (by path) starts and ends, and where each object key is written."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def of(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        table = self.keys if key else self.values
        while path and path not in table:
            path = path[:-1]
            table = self.values
        return table.get(path, (0, 1))


class JsonSyntaxError(ValueError):
    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.message, self.offset = message, offset


def parse_json(text: str) -> tuple[object, Positions]:
    """The value of ``text`` and the positions of its parts; :class:`JsonSyntaxError` if invalid."""
    reader = _Reader(text)
    value = reader.value(())
    reader.space()
    if reader.i != len(text):
        raise JsonSyntaxError("extra data after the JSON value", reader.i)
    return value, reader.positions


_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_WS = re.compile(r"[ \t\n\r]*")


class _Reader:
    def __init__(self, text: str):
        self.text, self.i, self.positions = text, 0, Positions()
        self.depth = 0

    def space(self) -> None:
        self.i = _WS.match(self.text, self.i).end()

    def value(self, path: Path) -> object:
        self.space()
        start = self.i
        self.depth += 1
        if self.depth > 200:
            raise JsonSyntaxError("JSON nested too deeply", start)
        value = self._value(path)
        self.depth -= 1
        self.positions.values[path] = (start, self.i)
        return value

    def _value(self, path: Path) -> object:
        char = self.text[self.i:self.i + 1]
        if char == "{":
            return self.object(path)
        if char == "[":
            return self.array(path)
        if char == '"':
            return self.string()
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.i):
                self.i += len(word)
                return value
        match = _NUMBER.match(self.text, self.i)
        if match is None or match.end() == self.i:
            raise JsonSyntaxError("expected a JSON value" if char else "unexpected end of JSON", self.i)
        self.i = match.end()
        return json.loads(match.group(0))

    def object(self, path: Path) -> dict:
        result: dict = {}
        self.i += 1
        self.space()
        if self.text.startswith("}", self.i):
            self.i += 1
            return result
        while True:
            self.space()
            key_start = self.i
            if not self.text.startswith('"', self.i):
                raise JsonSyntaxError("expected a quoted property name", self.i)
            key = self.string()
            self.positions.keys[(*path, key)] = (key_start, self.i)
            self.expect(":")
            result[key] = self.value((*path, key))
            if self.separator("}"):
                return result

    def array(self, path: Path) -> list:
        result: list = []
        self.i += 1
        self.space()
        if self.text.startswith("]", self.i):
            self.i += 1
            return result
        while True:
            result.append(self.value((*path, len(result))))
            if self.separator("]"):
                return result

    def separator(self, close: str) -> bool:
        self.space()
        char = self.text[self.i:self.i + 1]
        if char == close:
            self.i += 1
            return True
        if char != ",":
            raise JsonSyntaxError(f"expected ',' or '{close}'", self.i)
        self.i += 1
        return False

    def expect(self, char: str) -> None:
        self.space()
        if not self.text.startswith(char, self.i):
            raise JsonSyntaxError(f"expected '{char}'", self.i)
        self.i += 1

    def string(self) -> str:
        try:
            value, end = json.decoder.scanstring(self.text, self.i + 1)
        except json.JSONDecodeError as err:
            raise JsonSyntaxError(err.msg.lower(), err.pos) from None
        self.i = end
        return value


@lru_cache(maxsize=256)
def schema_problems(text: str) -> list[Problem]:
    """What keeps ``text`` from being a JSON Schema genweave enforces (empty when nothing)."""
    try:
        schema, positions = parse_json(text)
    except JsonSyntaxError as err:
        return [(f"invalid JSON: {err.message}", err.offset, err.offset + 1)]
    if not isinstance(schema, dict | bool):
        return [("a JSON Schema must be an object (or true/false)", *positions.of(()))]
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as err:
        path = tuple(err.path)
        where = ".".join(str(p) for p in path) or "the top level"
        if path and path[-1] == "type":
            return [(f"unknown JSON Schema type {err.instance!r} at {where}; types are: {', '.join(_TYPES)}",
                     *positions.of(path))]
        return [(f"invalid JSON Schema at {where}: {err.message}", *positions.of(path))]
    problems: list[Problem] = []
    _walk(schema, (), positions, problems, schema)
    return problems


def _walk(schema: object, path: Path, positions: Positions, problems: list[Problem], root: object) -> None:
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        where = (*path, key)
        if key in REFUSED:
            problems.append((f"JSON Schema keyword {key!r} is not supported", *positions.of(where, key=True)))
            continue
        if key not in SUPPORTED_KEYWORDS:
            continue  # not a JSON Schema keyword: validators (and the runtime compiler) ignore it
        if key == "format" and value in DEFINED_FORMATS and value not in SUPPORTED_FORMATS:
            shown = ", ".join(sorted(SUPPORTED_FORMATS))
            problems.append((f"JSON Schema format {value!r} is not supported (supported: {shown})",
                             *positions.of(where)))
        elif key == "$ref" and _resolve(root, value) is None:
            problems.append((f"JSON Schema reference {value!r} cannot be resolved (only local references "
                             "such as '#/$defs/name' are supported)", *positions.of(where)))
        elif key in _SCHEMA_VALUED:
            _walk(value, where, positions, problems, root)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            for i, item in enumerate(value):
                _walk(item, (*where, i), positions, problems, root)
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            for name, item in value.items():
                _walk(item, (*where, name), positions, problems, root)


def _resolve(root: object, ref: object) -> object | None:
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def is_recursive(schema: object) -> bool:
    """True when a ``$ref`` reaches back to a schema it is inside (the language is context-free)."""
    return _recursive(schema, schema, ())


def _recursive(node: object, root: object, active: tuple[str, ...]) -> bool:
    if isinstance(node, list):
        return any(_recursive(item, root, active) for item in node)
    if not isinstance(node, dict):
        return False
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref in active:
            return True
        target = _resolve(root, ref)
        if target is not None and _recursive(target, root, (*active, ref)):
            return True
    return any(_recursive(v, root, active) for k, v in node.items() if k not in ("$defs", "definitions", "$ref"))


def canonical(text: str) -> str:
    """The schema as compact JSON. Key order is kept: the order of ``properties`` is the order in
    which generated objects write their fields, which the user chose."""
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


_SUBSET = {
    "uniqueItems": "is enforced on a subset of its instances (at most one item where the items can take "
                   "more than a few values)",
    "not": "is enforced on a subset of its instances (the ways to break it that are not written as cases)",
}


@lru_cache(maxsize=256)
def schema_notes(text: str) -> list[Problem]:
    """Warnings for a schema genweave enforces on a subset of its instances, or whose annotations
    it does not enforce (formats no draft defines): every generated value validates, but not every
    valid value can be generated. Empty when the schema has problems (those are errors) or does not
    compile (the compile error is reported where the hole is bound)."""
    from genweave.dsl.errors import GenError
    from genweave.runtime.constraints.json_schema import json_schema

    if schema_problems(text):
        return []
    schema, positions = parse_json(text)
    try:
        compiled = json_schema(schema).compiled()
    except GenError:
        return []
    notes = []
    for keyword, pointer in compiled.approximated:
        what = _SUBSET.get(keyword, "is enforced on a subset of its instances")
        notes.append((f"JSON Schema {keyword!r} at {pointer or '/'} {what}; generated values are valid, but "
                      "not every valid value can be generated", *_keyword_place(positions, pointer, keyword)))
    for keyword, pointer in compiled.ignored:
        notes.append((f"the JSON Schema format at {pointer or '/'} is defined by no draft and is not enforced "
                      "(validators treat it as an annotation)", *_keyword_place(positions, pointer, keyword)))
    return notes


def _keyword_place(positions: Positions, pointer: str, keyword: str) -> tuple[int, int]:
    """Where ``keyword`` of the subschema at JSON pointer ``pointer`` is written (its nearest
    enclosing value when it is not written there)."""
    path = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
    return positions.of((*(int(p) if p.isdigit() else p for p in path), keyword), key=True)
