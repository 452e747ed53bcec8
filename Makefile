# TraceTrack Monitor — see README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

FUZZ_TESTS := tests/test_fuzz_api.py tests/test_fuzz_bridge.py

.PHONY: install up test bench fuzz lint clean

install: $(STAMP)
	@./scripts/install-system-deps.sh

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

up: install
	$(BIN)/tracetrack up

test: install
	$(BIN)/python -m pytest -q tests

# The schemathesis runs of `make test` with a new seed and more examples (docs/api.md).
fuzz: install
	FUZZ_SEED=$${FUZZ_SEED:-$$(date +%s)} FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} \
		$(BIN)/python -m pytest -q -s -p no:cacheprovider $(FUZZ_TESTS)

bench: install
	$(BIN)/python -m bench.run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var
