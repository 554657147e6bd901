"""A JSON Schema document: subschema occurrences with JSON pointers, and ``$ref`` resolution.

A :class:`Sub` is one place of the document being compiled: the schema value (a dict or a
boolean), its JSON pointer (for error messages), and the ``$ref`` targets entered on the way to
it (so recursion is detected and bounded). References may point into the document (``#``,
``#/json/pointer``, ``#anchor``, or an ``$id`` of a subschema); remote documents are refused.

>>> doc = Document({"$defs": {"n": {"type": "integer"}}, "items": {"$ref": "#/$defs/n"}})
>>> doc.resolve("#/$defs/n", Sub(doc.root, "")).pointer
'/$defs/n'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urldefrag

from genweave.dsl.errors import GenCheckError

# Drafts in which "$ref" makes its sibling keywords ignored (draft 7 and earlier).
_OLD_DRAFTS = ("draft-03", "draft-04", "draft-06", "draft-07")


@dataclass(frozen=True, slots=True)
class Sub:
    """A subschema occurrence: the schema, its JSON pointer, the ``$ref`` targets on its path."""

    schema: Any
    pointer: str
    refs: tuple[str, ...] = ()

    def child(self, schema: Any, *path: str | int) -> Sub:
        pointer = self.pointer + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
        return Sub(schema, pointer, self.refs)

    def depth_of(self, target: str) -> int:
        """How many times ``target`` was entered on the way here."""
        return self.refs.count(target)


class Document:
    """The root schema, its anchors and ``$id``\\ s, and its draft."""

    def __init__(self, root: Any):
        self.root = root
        url = root.get("$schema", "") if isinstance(root, dict) else ""
        self.ref_overrides_siblings = isinstance(url, str) and any(d in url for d in _OLD_DRAFTS)
        self.anchors: dict[str, tuple[Any, str]] = {}
        self._index(root, "")

    def _index(self, node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            for key in ("$id", "id", "$anchor"):
                name = node.get(key)
                if isinstance(name, str) and name and not (key == "id" and "type" not in node and
                                                           "properties" not in node and "$ref" not in node):
                    self.anchors.setdefault(name.rstrip("#"), (node, pointer))
                    if key == "$anchor" or name.startswith("#"):
                        self.anchors.setdefault("#" + name.lstrip("#"), (node, pointer))
            for key, value in node.items():
                if key in ("enum", "const", "default", "examples", "example"):
                    continue
                self._index(value, f"{pointer}/{_escape(key)}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                self._index(value, f"{pointer}/{i}")

    def resolve(self, ref: Any, at: Sub) -> Sub:
        """The subschema ``ref`` names (relative to the document), entered from ``at``."""
        if not isinstance(ref, str):
            raise GenCheckError(f"$ref at {at.pointer or '/'} must be a string, not {ref!r}")
        base, fragment = urldefrag(ref)
        if base:
            found = self.anchors.get(base) or self.anchors.get(base.rstrip("/"))
            if found is None:
                raise GenCheckError(f"$ref {ref!r} at {at.pointer or '/'} points outside the schema",
                                    hint="inline the referenced schema under $defs and use '#/$defs/...'")
            node, pointer = found
        else:
            node, pointer = self.root, ""
        if fragment and not fragment.startswith("/"):
            found = self.anchors.get("#" + fragment)
            if found is None:
                raise GenCheckError(f"$ref {ref!r} at {at.pointer or '/'}: no anchor {fragment!r}")
            node, pointer = found
        elif fragment:
            node, pointer = _walk(node, pointer, fragment, ref, at.pointer)
        return Sub(node, pointer, at.refs + (pointer,))


def _walk(node: Any, pointer: str, fragment: str, ref: str, origin: str) -> tuple[Any, str]:
    for raw in fragment.split("/")[1:]:
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise GenCheckError(f"$ref {ref!r} at {origin or '/'} points to nothing (no {part!r})")
        pointer += "/" + _escape(part)
    return node, pointer


def _escape(part: str) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def schema_of(value: Any) -> Any:
    """A JSON Schema from a dict, a boolean, a JSON string or a Pydantic model (class)."""
    if isinstance(value, dict | bool):
        return value
    if isinstance(value, str):
        import json

        try:
            return json.loads(value)
        except ValueError as error:
            raise GenCheckError(f"the JSON schema is not valid JSON: {error}") from None
    to_schema = getattr(value, "model_json_schema", None)
    if callable(to_schema):
        return to_schema()
    raise GenCheckError(f"json_schema() takes a dict, a JSON string or a Pydantic model, not {type(value).__name__}",
                        hint="pass the schema as a dict or a pydantic.BaseModel subclass")
