"""The on-disk cache of compiled constraints: round trip, keys, corrupt files, environment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genweave.runtime.constraints import compile_constraint, disk_cache, regex, stop
from genweave.runtime.constraints.token_trie import TokenTrie, vocabulary_key
from genweave.runtime.vocab import Vocabulary

PATTERN = r"[0-9]{2,3}(-[a-zé]+)?"


def files(root) -> list:
    return sorted((root / "constraints").glob("*.npz"))


def test_full_index_round_trip(tmp_path, sp_vocab, monkeypatch):
    first = compile_constraint(regex(PATTERN), sp_vocab, index="full", cache_dir=tmp_path)
    assert first.is_fully_indexed() and len(files(tmp_path)) == 1
    # a second compile must not rebuild the DFA: loading alone gives the same constraint
    monkeypatch.setattr("genweave.runtime.constraints.compiled.language_dfa", _forbidden)
    second = compile_constraint(regex(PATTERN), sp_vocab, cache_dir=tmp_path)
    assert second.is_fully_indexed()
    assert np.array_equal(first.dfa.transitions, second.dfa.transitions)
    assert np.array_equal(first.dfa.accepting, second.dfa.accepting)
    states = list(range(first.dfa.num_states)) + [-1]
    assert torch.equal(first.mask(states), second.mask(states))
    assert torch.equal(first.complete_mask(states), second.complete_mask(states))


def _forbidden(language):
    raise AssertionError(f"{language} was compiled again instead of loaded")


def test_lazy_entry_is_completed_by_a_full_compile(tmp_path, sp_vocab):
    lazy = compile_constraint(regex(PATTERN), sp_vocab, cache_dir=tmp_path)
    assert not lazy.is_fully_indexed()
    full = compile_constraint(regex(PATTERN), sp_vocab, index="full", cache_dir=tmp_path)
    assert full.is_fully_indexed() and len(files(tmp_path)) == 1
    again = compile_constraint(regex(PATTERN), sp_vocab, cache_dir=tmp_path)
    assert again.is_fully_indexed()


def test_keys_separate_languages_and_vocabularies(tmp_path, sp_vocab):
    other_vocab = Vocabulary.from_bytes([b"1", b"2", b"-", b"</s>"], eos_ids=[3])
    compile_constraint(regex(PATTERN), sp_vocab, cache_dir=tmp_path)
    compile_constraint(regex(PATTERN + "x"), sp_vocab, cache_dir=tmp_path)
    compile_constraint(stop("x"), sp_vocab, cache_dir=tmp_path)
    small = compile_constraint(regex(PATTERN), other_vocab, cache_dir=tmp_path)
    assert len(files(tmp_path)) == 4 and small.vocab_size == 4
    assert vocabulary_key(sp_vocab) == sp_vocab.fingerprint != vocabulary_key(other_vocab)


def test_corrupt_or_mismatched_files_are_misses(tmp_path, toy_vocab):
    trie = TokenTrie.from_vocabulary(toy_vocab)
    language = regex("é+")
    path = disk_cache.path_for(trie.vocab_key, language.key(), tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz file")
    compiled = compile_constraint(language, trie, cache_dir=tmp_path)
    assert compiled.dfa.num_states == 3
    assert disk_cache.load(path, trie.vocab_key, language.key()) is not None  # rewritten
    assert disk_cache.load(path, trie.vocab_key, "regex('other')") is None
    assert disk_cache.load(tmp_path / "absent.npz", trie.vocab_key, language.key()) is None


def test_environment_chooses_the_root(tmp_path, toy_vocab, monkeypatch):
    monkeypatch.setenv("GENWEAVE_CACHE", str(tmp_path / "env"))
    compile_constraint(regex("a+"), toy_vocab)
    assert len(files(tmp_path / "env")) == 1
    compile_constraint(regex("b+"), toy_vocab, cache=False)
    assert len(files(tmp_path / "env")) == 1


def test_unwritable_root_is_not_an_error(tmp_path, toy_vocab):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    compiled = compile_constraint(regex("a+"), toy_vocab, cache_dir=blocker)
    assert compiled.is_complete(compiled.advance(compiled.initial(), 0))


def test_index_argument_is_checked(toy_vocab):
    with pytest.raises(ValueError, match="'lazy' or 'full'"):
        compile_constraint(regex("a"), toy_vocab, index="eager", cache=False)
