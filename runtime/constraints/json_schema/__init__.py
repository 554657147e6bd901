"""JSON Schema (and Pydantic models) as exact regular constraints.

:func:`json_schema` compiles a schema to a byte DFA (:class:`JsonSchema`, a
:class:`~genweave.runtime.constraints.languages.Language`) that ``compile_constraint`` turns into
token masks. What is enforced, bounded and refused is documented in ``docs/constraints.md``
("JSON Schema").
"""

from genweave.runtime.constraints.json_schema.keywords import ANNOTATIONS, ENFORCED, REFUSED, RELAXATIONS
from genweave.runtime.constraints.json_schema.language import CompiledSchema, JsonSchema, json_schema
from genweave.runtime.constraints.json_schema.strings import FORMATS

__all__ = ["ANNOTATIONS", "ENFORCED", "FORMATS", "REFUSED", "RELAXATIONS", "CompiledSchema", "JsonSchema",
           "json_schema"]
