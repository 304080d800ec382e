# The two commands a newcomer needs: `make demo` and `make test`. Everything else supports them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PORT ?= 8000
PYTEST_ARGS ?=

-include .env
export

.PHONY: install demo test test-sqlite test-postgres lint format check bench bench-deps chaos scale-out browser-deps clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing and cannot be installed here; browser tests will be skipped"; fi; }

demo: install
	@DEBUG=1 $(BIN)/python manage.py demo --port $(PORT)

test: install browser-deps
	@$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)

lint: install
	@$(BIN)/ruff check apps integration_console tests
	@$(BIN)/ruff format --check apps integration_console tests

format: install
	@$(BIN)/ruff format apps integration_console tests
	@$(BIN)/ruff check --fix apps integration_console tests

check: install
	@DEBUG=1 $(BIN)/python manage.py check
	@DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

# Debian's wrk, the load generator of `make bench`.
bench-deps:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "wrk is missing and cannot be installed here: install Debian's wrk package"; exit 1; fi; }

# On PostgreSQL, in a database of its own (BENCH_DATABASE_URL, dropped and recreated); BENCH_ARGS=--quick for a short run.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/integration_console_bench
BENCH_ARGS ?=
bench: install bench-deps
	@DJANGO_SETTINGS_MODULE=apps.demo.bench.settings BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python manage.py bench $(BENCH_ARGS)

# Minutes, not part of `make test`: its own PostgreSQL (initdb), 2 gunicorn, 2 clusters, SIGKILLs and restarts.
# Figures go to docs/RELIABILITY.md. CHAOS_ARGS to change the load, e.g. CHAOS_ARGS="--webhooks 200".
CHAOS_ARGS ?=
chaos: install
	@DEBUG=1 $(BIN)/python manage.py chaos $(CHAOS_ARGS)

scale-out: install
	@DEBUG=1 $(BIN)/python manage.py chaos --no-chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var/*.sqlite3* var/demo
