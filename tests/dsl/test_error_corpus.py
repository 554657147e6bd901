"""The error corpus: each wrong program in tests/dsl/errors/ yields exactly its golden message
(file:line:col, the source line, a caret, the hint). Set GENWEAVE_UPDATE_GOLDEN=1 to rewrite the
golden files after a deliberate change, then review the diff."""

import os
import re
from pathlib import Path

import pytest

from genweave.compiler.check import check
from genweave.compiler.features import LANGUAGE, SupportedFeatures
from genweave.dsl.errors import GenCheckError, GenError, GenSyntaxError
from genweave.dsl.parser import parse

CORPUS = Path(__file__).parent / "errors"
# "unsupported" cases run against the first runtime (text, roles, plain holes, temperature):
# their messages stay the same while the runtime grows.
BASELINE = SupportedFeatures()
CASES = sorted(p.stem for p in CORPUS.glob("*.gen"))


def render(name: str) -> str:
    source = (CORPUS / f"{name}.gen").read_text()
    supported = BASELINE if "unsupported" in name else LANGUAGE
    try:
        check(parse(source, f"errors/{name}.gen"), supported=supported)
    except GenError as err:
        return err.render() + "\n"
    return "(no error)\n"


def test_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", CASES)
def test_error_message_is_golden(name):
    actual = render(name)
    golden = CORPUS / f"{name}.expected"
    if os.environ.get("GENWEAVE_UPDATE_GOLDEN") == "1":
        golden.write_text(actual)
    assert actual == golden.read_text()
    source_lines = (CORPUS / f"{name}.gen").read_text().splitlines()
    for head, code, caret in re.findall(r"^(errors/\S+:\d+:\d+: .*)\n    (.*)\n    ( *\^+)$", actual, re.M):
        line, col = map(int, head.split(":")[1:3])
        assert code == source_lines[line - 1]
        assert caret.index("^") == col - 1
    assert actual.startswith(f"errors/{name}.gen:")


@pytest.mark.parametrize("name", CASES)
def test_errors_are_genweave_errors_with_spans(name):
    source = (CORPUS / f"{name}.gen").read_text()
    with pytest.raises((GenSyntaxError, GenCheckError)) as info:
        check(parse(source, f"errors/{name}.gen"), supported=BASELINE if "unsupported" in name else LANGUAGE)
    errors = getattr(info.value, "errors", [info.value])
    assert all(e.span is not None and e.span.line >= 1 for e in errors)
