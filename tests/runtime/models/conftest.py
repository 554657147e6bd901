"""Fixtures of the model tests: the embedded SmolLM2 model, loaded once per session through the
registry (converted from its GGUF on the first run, ~20 s; about a second from the disk cache)."""

from __future__ import annotations

import pytest

from genweave.runtime.models import ToyLM, load_model


@pytest.fixture(scope="session")
def smollm2():
    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def toy():
    return ToyLM([b"a", b"b", b"ab", b"c", b" ", b"abc"], seed=7)
