# TraceTrack Monitor — see README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up test bench lint clean

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

bench: install
	$(BIN)/python -m bench.run

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy app exporter alert_bridge common tooling tracetrack reports

clean:
	rm -rf $(VENV) var
