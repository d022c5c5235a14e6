# Two commands set up everything on a fresh machine:
#   make run    virtualenv, install, .env with new dev secrets, migrations, serve on :5000
#   make test   the test suite (SQLite; also PostgreSQL when TEST_DATABASE_URL is set)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test test-all bench clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "voiceline needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

.env: | $(INSTALLED)
	$(BIN)/python -m voiceline.devenv .env

run: $(INSTALLED) .env
	$(BIN)/voiceline db upgrade
	$(BIN)/voiceline run --host 127.0.0.1 --port 5000

test: $(INSTALLED)
	$(BIN)/pytest $(PYTEST_ARGS)

# Everything CI runs: slow fault/load tests and browser tests included.
test-all: $(INSTALLED)
	$(BIN)/pytest --run-slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

# Benchmark: the app under gunicorn on SQLite and PostgreSQL (127.0.0.1:5432, if reachable)
# against bare-Flask floors; writes bench/RESULTS.md (about 10 minutes; see bench/README.md).
bench: $(INSTALLED)
	$(BIN)/python bench/run.py $(BENCH_ARGS)
