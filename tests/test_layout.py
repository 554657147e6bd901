"""Guards for the repository layout: packaging lists every package; imports flow one way."""

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = {"genweave": "genweave", "dsl": "genweave.dsl", "compiler": "genweave.compiler",
       "runtime": "genweave.runtime", "stdlib": "genweave.stdlib"}


def _config():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _package_dirs():
    for folder, package in TOP.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / folder)
            yield ".".join([package, *rel.parts]) if rel.parts else package


def test_every_package_directory_is_listed():
    listed = set(_config()["tool"]["setuptools"]["packages"])
    assert set(_package_dirs()) == listed


def test_every_python_folder_is_a_package():
    for folder in TOP:
        for py in (ROOT / folder).rglob("*.py"):
            assert (py.parent / "__init__.py").exists(), f"{py.parent} has modules but no __init__.py"


def test_package_dir_mapping():
    mapping = _config()["tool"]["setuptools"]["package-dir"]
    assert mapping == {package: folder for folder, package in TOP.items()}


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize(("folder", "forbidden", "allowed"), [
    ("dsl", ("genweave.compiler", "genweave.runtime", "genweave.api", "genweave.cli"), ()),
    ("runtime", ("genweave.dsl", "genweave.compiler", "genweave.api", "genweave.cli"), ("genweave.dsl.errors",)),
    ("compiler", ("genweave.api", "genweave.cli"), ()),
])
def test_dependencies_flow_dsl_compiler_runtime(folder, forbidden, allowed):
    for path in (ROOT / folder).rglob("*.py"):
        for name in _imports(path):
            if name in allowed:
                continue
            assert not name.startswith(forbidden), f"{path.relative_to(ROOT)} imports {name}"


def test_no_bare_top_level_imports():
    for folder in ("genweave", *[f for f in TOP if f != "genweave"], "tests", "bench", "examples"):
        for path in (ROOT / folder).rglob("*.py"):
            for name in _imports(path):
                assert name.split(".")[0] not in ("dsl", "compiler", "runtime", "stdlib"), \
                    f"{path.relative_to(ROOT)} imports bare {name}"
