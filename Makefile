# Two commands do all the set-up on a fresh machine (Python 3.11, pip, apt):
#   make demo   - the curriculum with scripted policies: result table + out/report.html
#   make test   - lint, type check and the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint bench selftest clean

$(BIN)/subterfuge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# Linting, type checking and the tests cover the optional backends too (ray, hf),
# against their real libraries; torch is pinned to the CPU wheel (a range would
# pull a multi-GB CUDA build).
$(VENV)/.test-extras: $(BIN)/subterfuge
	$(BIN)/pip install --quiet -e '.[dev,ray,hf]' 'torch==2.13.0'
	@touch $@

venv: $(BIN)/subterfuge

demo: venv
	@sh scripts/ensure-bwrap.sh
	$(BIN)/subterfuge demo --out out

selftest: venv
	@sh scripts/ensure-bwrap.sh
	$(BIN)/subterfuge selftest

lint: $(VENV)/.test-extras
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: lint
	@sh scripts/ensure-bwrap.sh
	@sh scripts/ensure-chromium.sh
	$(BIN)/pytest -q -n 2

bench: venv
	@sh scripts/ensure-bwrap.sh
	$(BIN)/python bench/bench_harness.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
