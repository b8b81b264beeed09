# SatShare — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
RUN_STAMP := $(VENV)/.stamp-run
DEV_STAMP := $(VENV)/.stamp-dev

.PHONY: run test test-fast lint format migrate install dev browser clean bench

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "SatShare needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)

dev: $(DEV_STAMP)

## Create or upgrade the database schema (SQLite by default).
migrate: $(RUN_STAMP)
	$(BIN)/satshare migrate

## Install, migrate and start SatShare (sandbox mode when nothing is configured);
## `make run PORT=8001` listens on another port.
run: migrate
	$(BIN)/satshare serve $(if $(PORT),--port $(PORT))

## Install the dev dependencies and run the whole suite (SQLite, then PostgreSQL if
## SATSHARE_TEST_DATABASE_URL is set), then the linters.
test: $(DEV_STAMP) browser
	BIN=$(BIN) scripts/test.sh

## The unit layer alone, in one process: no database, server, browser or slow test
## (markers: tests/conftest.py marks what uses a database or the stack `integration`).
test-fast: $(DEV_STAMP)
	$(BIN)/pytest -n 0 -m "not integration and not slow and not browser"

## Debian's Chromium for the browser tests (Playwright cannot download browsers here).
browser:
	@scripts/ensure-chromium.sh

## The benches (not in CI; each drops and recreates its own PostgreSQL database), each as
## docs/performance.md's table gives its command, writing bench/results/*.json (one file per
## run). The quick ones first: start-up time and idle memory of `serve`; settlement end to
## end with one and two serve workers; the settlement transaction alone against pgbench,
## without and with an affiliate level; the bot's /start storm and the outbox sender
## against a plain PTB bot. Then the ones that seed large databases: `ledger verify` and
## `ledger export` at 100,000 and 1,000,000 payments; reads at 10k/50k and 1M/5M (seeding
## takes a quarter to most of an hour). Last the fault bench (issue #8, docs/reliability.md): kill -9 at every step boundary of
## settlement and payouts, 1,000 runs (7-14 s a run by machine; it starts none after 180
## minutes, and says how many ran).
bench: $(RUN_STAMP)
	$(PY) -m bench.startup --runs 5
	$(PY) -m bench.settlement --invoices 3000
	$(PY) -m bench.settlement --invoices 3000 --workers 2
	$(PY) -m bench.settle_tx --invoices 3000 --rounds 1
	$(PY) -m bench.settle_tx --invoices 3000 --rounds 1 --level
	$(PY) -m bench.bot_updates
	$(PY) -m bench.bot_updates --database-url postgresql://postgres@127.0.0.1:5432/satshare_bench_bot
	$(PY) -m bench.outbox
	$(PY) -m bench.outbox --database-url postgresql://postgres@127.0.0.1:5432/satshare_bench_outbox
	$(PY) -m bench.ledger --sizes 100000,1000000
	$(PY) -m bench.reads
	$(PY) -m bench.faults --runs 1000 --seed 1

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench examples docs/verify_ledger_export.py
	$(BIN)/ruff format --check src tests bench examples docs/verify_ledger_export.py
	$(BIN)/mypy

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix src tests bench examples
	$(BIN)/ruff format src tests bench examples

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
