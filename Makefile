# Two commands for a newcomer: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint imports typecheck pytest bench generate check-generated clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The Flask instrumentation's newest release (0.66b1) pins its sibling packages to 0.66b1,
	# which the SDK (1.45.2, paired with 0.66b2) refuses: install it alone; the 0.66b2
	# instrumentation, wsgi and util-http packages of the dev extra serve it.
	$(BIN)/python -m pip install --quiet --no-deps 'opentelemetry-instrumentation-flask==0.66b1'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/otelperf demo

test: $(STAMP) lint imports typecheck check-generated pytest

lint: $(STAMP)
	$(BIN)/ruff check otelperf tests benchmarks
	$(BIN)/ruff format --check otelperf tests benchmarks

imports: $(STAMP)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/processor.py

generate: $(STAMP)
	$(BIN)/otelperf rules
	$(BIN)/otelperf dashboards

check-generated: $(STAMP)
	$(BIN)/otelperf rules --check
	$(BIN)/otelperf dashboards --check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
