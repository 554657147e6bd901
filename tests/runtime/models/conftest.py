"""Fixtures of the model tests. The embedded SmolLM2 model comes from the session fixture
``smollm2`` of ``tests/conftest.py`` (through the registry: converted from its GGUF on the first run,
~20 s, then about a second from the disk cache)."""

from __future__ import annotations

import pytest

from genweave.runtime.models import ToyLM


@pytest.fixture(scope="session")
def toy():
    return ToyLM([b"a", b"b", b"ab", b"c", b" ", b"abc"], seed=7)
