# Two commands set everything up on a fresh machine with Python 3.11+:
#   make run    serve the API on 127.0.0.1:8000 over the SQLite file ./var/backoffice.sqlite
#   make test   run the whole suite (BACKOFFICE_DATABASE_URL=postgresql://... for PostgreSQL)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test bench bench-batch bench-replay bench-audit bench-reports lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p var
	$(BIN)/backoffice serve

# A synthetic history with planted AML patterns, for a first look (then `make run`).
demo: $(STAMP)
	mkdir -p var
	$(BIN)/backoffice demo seed --customers 500 --days 120 $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/postings.py

bench-batch: $(STAMP)
	$(BIN)/python bench/postings.py --case batch --store postgres --clients 2 --accounts 2000 $(BENCH_ARGS)

bench-audit: $(STAMP)
	$(BIN)/python bench/audit.py $(BENCH_ARGS)

bench-reports: $(STAMP)
	$(BIN)/python bench/reports.py $(BENCH_ARGS)

bench-replay: $(STAMP)
	$(BIN)/python bench/replay.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
