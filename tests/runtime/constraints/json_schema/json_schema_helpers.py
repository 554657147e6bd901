"""Helpers of the JSON Schema tests (imported as ``json_schema_helpers``): byte-level random
walks of a DFA (samples of its language) and validation with the ``jsonschema`` package."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np

from genweave.runtime.constraints.byte_dfa import DEAD

SHARED = Path(__file__).resolve().parents[4] / ".." / "shared"
DEV_SAMPLE = SHARED / "data" / "jsonschemabench" / "dev.jsonl"


def sample_texts(dfa, seed: int, count: int, max_bytes: int = 2000) -> list[bytes]:
    """``count`` texts of the DFA's language from seeded random walks: at each state stop with
    probability 1/3 when accepting, else draw a next state uniformly among the distinct successors
    and a byte leading to it (so structure advances: one ``"`` among 200 string bytes is as likely
    as staying in the string). Walks longer than ``max_bytes`` are dropped."""
    rng = np.random.default_rng(seed)
    texts = []
    live = dfa.transitions != DEAD
    for _ in range(count * 8):
        state, out = dfa.initial, bytearray()
        while len(out) < max_bytes:
            choices = np.flatnonzero(live[state])
            if dfa.accepting[state] and (choices.size == 0 or rng.random() < 1 / 3):
                texts.append(bytes(out))
                break
            targets = dfa.transitions[state, choices]
            target = rng.choice(np.unique(targets))
            byte = int(rng.choice(choices[targets == target]))
            out.append(byte)
            state = int(target)
        if len(texts) == count:
            break
    return texts


def validator(schema):
    """A ``jsonschema`` validator of the schema's draft that also checks formats."""
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def assert_valid(schema, texts) -> None:
    """Every text parses as JSON and validates against the schema."""
    check = validator(schema)
    for text in texts:
        value = json.loads(text)
        errors = list(check.iter_errors(value))
        assert not errors, (text, [e.message for e in errors][:3])
