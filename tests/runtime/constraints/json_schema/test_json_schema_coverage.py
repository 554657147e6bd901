"""Coverage on the JSONSchemaBench development sample (``../shared/data/jsonschemabench``).

Every 8th schema of the sample (46 of 366, across the subsets) is compiled (strict, the default).
The compile count, the valid test instances accepted (as written, or re-serialised in the
schema's member order) and the invalid ones rejected must not fall below what was measured, and
every invalid instance is rejected. The whole sample, strict and relaxed, is measured by
``python bench/masks.py --coverage [--relax]`` (figures in docs/constraints.md).
"""

from __future__ import annotations

import json

import pytest
from json_schema_helpers import DEV_SAMPLE, SHARED

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.json_schema import json_schema

if not SHARED.is_dir():
    pytest.skip(f"the shared data folder {SHARED} is missing (it sits beside the clone in CI)",
                allow_module_level=True)

# Measured on this sample: floors, not targets.
FLOORS = {"compiled": 44, "valid_accepted": 52, "invalid_rejected": 87}


def test_dev_sample_coverage():
    rows = [json.loads(line) for line in DEV_SAMPLE.read_text().splitlines()][::8]
    counts = dict.fromkeys(("compiled", "valid_accepted", "invalid_rejected", "invalid"), 0)
    for row in rows:
        try:
            language = json_schema(row["schema"])
        except GenCheckError:
            continue
        counts["compiled"] += 1
        for test in row["tests"]:  # grammar-routed schemas answer through their grammar
            text = json.dumps(test["data"], ensure_ascii=False, separators=(",", ":")).encode()
            hit = language.accepts(text) or language.canonical_text(test["data"]) is not None
            if test["valid"]:
                counts["valid_accepted"] += hit
            else:
                counts["invalid"] += 1
                counts["invalid_rejected"] += not hit
    assert all(counts[k] >= v for k, v in FLOORS.items()), counts
    assert counts["invalid_rejected"] == counts["invalid"], counts
