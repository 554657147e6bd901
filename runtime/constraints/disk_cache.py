"""On-disk cache of compiled constraints: one ``.npz`` file per (vocabulary, language).

Files live in ``<root>/constraints/`` where ``root`` is the ``cache_dir`` argument, else
``$GENWEAVE_CACHE``, else ``~/.cache/genweave``. The file name is a sha256 of the format version,
vocabulary key and language key; the full keys are stored inside and checked on load, so a
collision or a stale format reads as a miss. Writes go to a temporary file that is renamed into
place, so concurrent runs never see half a file. An unreadable file is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "genweave-constraint-v1"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache root: ``cache_dir``, else ``$GENWEAVE_CACHE``, else ``~/.cache/genweave``."""
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("GENWEAVE_CACHE") or Path.home() / ".cache" / "genweave")


def path_for(vocab_key: str, language_key: str, cache_dir: str | os.PathLike | None = None) -> Path:
    digest = hashlib.sha256("\0".join((FORMAT, vocab_key, language_key)).encode()).hexdigest()
    return cache_root(cache_dir) / "constraints" / f"{digest}.npz"


def load(path: Path, vocab_key: str, language_key: str) -> dict[str, np.ndarray] | None:
    """The stored arrays, or None when absent, unreadable or stored under other keys."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if arrays.pop("key", np.array([])).tolist() != [FORMAT, vocab_key, language_key]:
        return None
    return arrays


def save(path: Path, vocab_key: str, language_key: str, arrays: dict[str, np.ndarray]) -> bool:
    """Write ``arrays`` atomically; returns False (and leaves no file) if the disk refuses."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError:
        return False
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, key=np.array([FORMAT, vocab_key, language_key]), **arrays)
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
        return False
    return True
