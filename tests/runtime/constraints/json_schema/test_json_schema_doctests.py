"""The docstring examples of the JSON Schema modules and of the logits-processor export run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["json_schema.automata", "json_schema.document", "json_schema.language", "json_schema.numeric",
           "json_schema.strings", "export"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"genweave.runtime.constraints.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
