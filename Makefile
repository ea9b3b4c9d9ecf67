# One task runner for developers and CI: `make demo`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8080

.PHONY: demo install dev check test test-fast bench clean screenshots

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/activate  ## the server only
	$(BIN)/pip install --quiet -c constraints.txt -e ".[server]"

dev: $(BIN)/activate  ## server + test and lint tools
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"

demo: install  ## install, then serve on SQLite with the simulator and a demo account
	$(BIN)/smsgate serve --demo --port $(PORT)

check: dev  ## lint and type-check
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: check  ## the whole suite (PostgreSQL + Redis too when SMSGATE_TEST_DATABASE_URL and SMSGATE_TEST_REDIS_URL are set)
	$(BIN)/pytest -q -p no:cacheprovider

test-fast: dev  ## unit tests only
	$(BIN)/pytest -q tests/unit

bench: dev  ## wrk benchmark into docs/benchmarks.md (options: make bench BENCH_ARGS="--help")
	$(BIN)/python bench/http_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

screenshots: dev  ## the console's pages in both languages, for the README (needs a CJK font)
	PYTHONPATH=. $(BIN)/python bench/console_screenshots.py docs/console
