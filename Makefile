# Two set-up commands that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_HOME ?= lbdata-work

export OMP_NUM_THREADS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install install-train install-dev lint clean browser-deps

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

install-train: $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[train]"

# The whole loop on the offline default, on CPU: generate -> validate -> build -> SFT the tiny model -> GRPO it
# -> evaluate base, SFT and GRPO on held-out synthetic problems (another seed), side by side.
# Every training row has a <back> here (--reflection-rate 1.0) so a few CPU minutes show the format being
# learnt; corpora for real models default to 0.4. DEMO_STEPS of SFT stop before the format is mastered, then
# DEMO_GRPO_STEPS of GRPO (accuracy + 0.1 x format) follow. 32 held-out problems are few: benchmarks/loop.py
# measures what GRPO adds on 64, against a format-off control and a regex-format run.
# The training curves land in each model folder (train_curve.png, train_log.csv).
DEMO := $(BIN)/lbdata
DEMO_STEPS ?= 600
DEMO_GRPO_STEPS ?= 40
DEMO_EVAL := --data synthetic --seed 1 --limit 32 --variant semantic --max-new-tokens 320 --no-progress
demo: install-train
	$(DEMO) generate --home $(DEMO_HOME) --run demo --limit 300
	$(DEMO) validate demo --home $(DEMO_HOME)
	$(DEMO) build demo --name demo --reflection-rate 1.0 --home $(DEMO_HOME)
	$(DEMO) show demo --home $(DEMO_HOME) --n 1
	$(DEMO) train tiny-model --out $(DEMO_HOME)/models/tiny-base
	$(DEMO) eval --model $(DEMO_HOME)/models/tiny-base $(DEMO_EVAL) --out $(DEMO_HOME)/evals/base
	$(DEMO) train sft --corpus demo@latest --config semantic_back --model $(DEMO_HOME)/models/tiny-base \
	  --recipe tiny-sft --set max_steps=$(DEMO_STEPS) --set max_pixels=12544 --set lr_scheduler_type=cosine \
	  --out $(DEMO_HOME)/models/tiny-sft --home $(DEMO_HOME) --overwrite
	$(DEMO) eval --model $(DEMO_HOME)/models/tiny-sft $(DEMO_EVAL) --out $(DEMO_HOME)/evals/sft
	$(DEMO) train grpo --data demo@latest --config semantic_back --model $(DEMO_HOME)/models/tiny-sft \
	  --recipe tiny-grpo --set max_steps=$(DEMO_GRPO_STEPS) --out $(DEMO_HOME)/models/tiny-grpo --home $(DEMO_HOME) --overwrite
	$(DEMO) eval --model $(DEMO_HOME)/models/tiny-grpo $(DEMO_EVAL) --out $(DEMO_HOME)/evals/grpo
	@echo "== base vs SFT vs GRPO (the tiny model learns the Look-Back format, not the mathematics) =="
	$(DEMO) eval compare $(DEMO_HOME)/evals/base $(DEMO_HOME)/evals/sft $(DEMO_HOME)/evals/grpo

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
