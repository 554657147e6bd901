"""The docstring examples of the constraint modules run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["budget", "byte_dfa", "compiled", "languages", "matcher", "regex", "utf8"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"genweave.runtime.constraints.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
