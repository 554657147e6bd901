"""The docstring examples of the inference modules run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["awrs", "enumeration", "exact", "hole", "laws", "particles", "potentials", "rejection",
           "resampling", "results", "smc"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(f"genweave.runtime.inference.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
