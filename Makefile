# Two commands: `make run` (the embedded stack) and `make test` (everything CI checks).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench soak clean

$(BIN)/.installed: pyproject.toml sandbox_org/pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e ./sandbox_org
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/ats-gateway dev

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Test files run in parallel (pytest-xdist), each file in one runner so its module fixtures
# (a stack, a sandbox org) are built once; every test binds its own free ports.
PYTEST_WORKERS ?= 3

test: lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --cov=ats_gateway --cov-report=term:skip-covered --cov-fail-under=85 $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench

# The long form of the fault and fuzz suites (a 5-minute org outage, repeated crashes, ten
# token expiries under a trickle).
soak: install
	ATS_GATEWAY_SOAK=1 ATS_GATEWAY_FUZZ_EXAMPLES=100 $(BIN)/pytest tests/reliability tests/fuzz tests/budget/test_budget_org.py::test_a_token_expiry_mid_trickle_keeps_the_pace --timeout=1800 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .ats-gateway .pytest_cache .coverage .coverage.*
