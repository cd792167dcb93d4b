# Nudge — `make help` lists the targets. Every target sets up .venv itself.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: help system-packages demo worker ui test test-fast test-slow test-kafka kafka lint bench bench-scaleout clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

system-packages:  ## the Debian packages the full test suite needs (installed when root)
	@deploy/system-packages.sh

demo: $(STAMP)  ## set up, then run the whole stack on the bundled sample day
	$(BIN)/nudge demo

worker: $(STAMP)  ## set up, then run a long-lived worker (embedded broker unless KAFKA_URL)
	$(BIN)/nudge worker

ui: $(STAMP)  ## set up, then serve the manager's cockpit on http://127.0.0.1:6070/
	$(BIN)/nudge ui

test: $(STAMP) system-packages  ## set up, then run every test (unit and end-to-end)
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## unit tests only (no broker)
	$(BIN)/python -m pytest -m "not slow"

test-slow: $(STAMP) system-packages  ## the end-to-end tests alone (real broker, real workers)
	$(BIN)/python -m pytest -m slow

test-kafka: $(STAMP) system-packages  ## the end-to-end tests on a local 3-node Apache Kafka cluster (needs Java 17, Maven)
	$(BIN)/python -m pytest -m kafka

kafka: $(STAMP)  ## run a local 3-node Apache Kafka cluster until Ctrl-C (prints its KAFKA_URL)
	$(BIN)/python deploy/kafka/cluster.py up

lint: $(STAMP)  ## ruff and mypy, as the project configures them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

QUIX := bench/.venv-quix/.installed

$(QUIX):  # quix-streams, the bench's yardstick: its own venv, never a dependency of Nudge
	$(PY) -m venv bench/.venv-quix
	bench/.venv-quix/bin/pip install --quiet 'quixstreams>=3.28,<4'
	touch $(QUIX)

bench: $(STAMP) $(QUIX) system-packages  ## benchmarks; figures to compare run to run
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

bench-scaleout: $(STAMP) system-packages  ## events/s and latency with 1, 2, 3 workers on a local 3-node Kafka cluster and PostgreSQL
	$(BIN)/python bench/bench_scaleout.py

clean:  ## remove the venv and local state
	rm -rf $(VENV) bench/.venv-quix var .pytest_cache .mypy_cache .ruff_cache
