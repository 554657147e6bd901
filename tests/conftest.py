"""Shared fixtures: the embedded model, loaded once per test session."""

import pytest


@pytest.fixture(scope="session")
def smollm2():
    from genweave.runtime.models.registry import load_model

    return load_model("smollm2-135m")
