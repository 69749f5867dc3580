# The two commands a new user needs: `make demo` and `make test`.
# Everything is installed from the lock file into .venv; nothing is installed by hand.

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast check bench clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on CI machines),
# Python would otherwise compile every module on every start (bench (f): ~0.9 s per command).
setup: $(UV)
	$(UV) sync --frozen --all-groups --quiet --compile-bytecode
	$(BIN)/python -m compileall -q src > /dev/null

demo: setup  ## prepare the flights file drops and run the example project end to end
	$(BIN)/python examples/flights/prepare.py
	$(BIN)/weir run --project examples/flights

test: setup  ## lint, type-check and run the whole test suite
	$(MAKE) --no-print-directory check
	$(BIN)/pytest

test-fast: setup  ## the tests not marked slow (no subprocess kills, dbt or property runs): for quick feedback
	$(BIN)/pytest -m "not slow"

check: setup  ## ruff, ruff-format and mypy --strict, exactly as CI runs them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup  ## the benchmarks of bench/ (minutes; prints a table of figures and ratios)
	$(BIN)/python bench/run.py

clean:
	rm -rf .tools $(VENV) examples/flights/lake examples/flights/.weir examples/flights/data
