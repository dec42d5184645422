# Two set-up commands that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_HOME ?= lbdata-work

export OMP_NUM_THREADS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install install-dev lint clean browser-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# torch is pinned first so that nothing pulls a multi-GB CUDA build.
install: $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e .

install-dev: $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[train,serve,deepspeed,dev]"

demo: install
	$(BIN)/lbdata generate --home $(DEMO_HOME) --run demo --limit 200
	$(BIN)/lbdata show demo --home $(DEMO_HOME) --n 2

test: install-dev browser-deps
	$(BIN)/pytest -q

# tests/test_view_browser.py drives Debian's chromium headless; install it when it is missing (apt, as root
# or through sudo). A no-op when /usr/bin/chromium is already there.
browser-deps:
	@test -x /usr/bin/chromium || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

lint: install-dev
	$(BIN)/ruff check lbdata tests benchmarks

clean:
	rm -rf $(VENV) lbdata-work dist build
