# Two commands matter on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(PY) -m uv
export UV_LINK_MODE := copy

.PHONY: demo test lint typecheck unit bench clean venv dev-venv

$(BIN)/python:
	$(PY) -m uv --version >/dev/null 2>&1 || $(PY) -m pip install -q uv
	$(UV) venv -q $(VENV)

# A stamp per install flavour so edits to pyproject.toml re-install. Bytecode is
# compiled at install time: with PYTHONDONTWRITEBYTECODE set (as on CI machines here)
# every process would otherwise recompile SQLAlchemy from source (~1 s each).
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(UV) pip install -q --compile-bytecode --python $(BIN)/python -e ".[demo]"
	touch $@

# The torch-based integrations (tests marked `torch`) need PyTorch's CPU build, which
# lies in /opt/wheels on machines of this kind; uv does not look there by itself, and
# PyPI's torch is a CUDA build of several GB.
TORCH_WHEELS ?= /opt/wheels
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	@ls $(TORCH_WHEELS)/torch-2.13.0+cpu-*.whl >/dev/null 2>&1 || { echo "no CPU torch wheel in $(TORCH_WHEELS): set TORCH_WHEELS to a folder holding torch-2.13.0+cpu" >&2; exit 1; }
	$(UV) pip install -q --compile-bytecode --python $(BIN)/python --find-links $(TORCH_WHEELS) \
		"torch==2.13.0+cpu" -e ".[dev,torch-tests]"
	touch $@ $(VENV)/.demo-installed

venv: $(VENV)/.demo-installed
dev-venv: $(VENV)/.dev-installed

demo: $(VENV)/.demo-installed
	cd examples && ../$(BIN)/python train_digits.py
	cd examples && ../$(BIN)/mltrail runs ls --project digits
	cd examples && ../$(BIN)/mltrail models ls
	@echo
	@echo "Look further (from examples/):"
	@echo "  ../$(BIN)/mltrail runs show <RUN_ID>        # params, summary, metrics of one run"
	@echo "  ../$(BIN)/mltrail runs diff <RUN_A> <RUN_B> # what differs between two runs"
	@echo "  ../$(BIN)/mltrail runs ls --json           # machine-readable"
	@echo "  ../$(BIN)/mltrail models history digits-mlp # the registry's audit trail"
	@echo "  ../$(BIN)/mltrail models card digits-mlp@production"

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

# Our own sources are installed editable, so their bytecode is not compiled at install;
# with PYTHONDONTWRITEBYTECODE every subprocess a test starts (servers, CLIs, agents)
# would compile them again (~0.4 s each). compileall skips what is up to date.
unit: $(VENV)/.dev-installed
	bash .ci/services.sh
	$(BIN)/python -m compileall -q -j 0 src tests
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=25 $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(VENV)/.dev-installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mltrail examples/.mltrail .pytest_cache .mypy_cache .ruff_cache
