# cc_ari: the two commands are `make run` and `make test` (as root, on Debian 12).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run stop test status deps venv lint unit e2e bench bench-soak bench-lab bench-dialer bench-dialer-live bench-dashboard clean

run: deps venv
	$(PYTHON) scripts/lab.py run

stop:
	$(PYTHON) scripts/lab.py stop

status:
	$(PYTHON) scripts/lab.py status

test: run lint
	$(PYTHON) scripts/lab.py service-restart
	$(BIN)/pytest -q -ra tests

unit: venv
	$(BIN)/pytest -q tests/unit

bench: venv
	$(BIN)/python -m bench

# Lab benchmarks: each runs its OWN lab (.lab-bench, ports +200) and stops it at the end.
# Options: make bench-soak ARGS="--minutes 1"; make bench-lab ARGS="--phases 2 --waiting 800"
bench-soak: venv
	$(BIN)/python -m bench.soak $(ARGS)

bench-lab: venv
	$(BIN)/python -m bench.lab $(ARGS)

# Pacing policies on the dialer simulator, no lab (ARGS="--quick", "--seeds 20 --hours 2")
bench-dialer: venv
	$(BIN)/python -m bench.dialer $(ARGS)

# The dialer live on its own lab: make bench-dialer-live ARGS="--seconds 60"
bench-dialer-live: venv
	$(BIN)/python -m bench.dialer_live $(ARGS)

# The dashboard page in headless Chromium against a fake feed of 200 agents / 20 queues
bench-dashboard: venv
	$(BIN)/python -m bench.dashboard $(ARGS)

lint: venv
	$(BIN)/ruff check cc_ari tests scripts bench
	$(BIN)/mypy --strict cc_ari

deps:
	$(PYTHON) scripts/lab.py deps

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

# stops the lab and removes it with its state outside the checkout (/var/lib/cc_ari/<tag>, the
# Asterisk instance directory), then the venv
clean:
	$(PYTHON) scripts/lab.py clean
	rm -rf $(VENV)
