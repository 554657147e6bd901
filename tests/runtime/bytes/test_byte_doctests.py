"""The docstring examples of the byte-level modules run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["alphabet", "byte_lm", "ensemble", "heal", "sample", "tokenization", "trie"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"genweave.runtime.bytes.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
