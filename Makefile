# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck pytest bench bench-quick venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

## Run the service locally against the Firestore emulator and the Airtable and Twilio stand-ins.
run: venv
	$(BIN)/python -m tools.run_local

## Lint, type-check and run every test (the tests start their own Firestore emulator).
test: venv lint typecheck pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/shellcheck deploy.sh .ci/run

typecheck: venv
	$(BIN)/mypy

pytest: venv
	$(BIN)/pytest

## Benchmark this service against a model of the quickstart (100,000 contacts, 1,000 reps).
bench: venv
	$(BIN)/python -m bench

bench-quick: venv
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
