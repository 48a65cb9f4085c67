# xtts-tune: every target installs into .venv on first use (stamp file), so no separate install step is needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp-install
STUDY  ?= demo
TRIALS ?= 20
WORKERS ?= 1
STORAGE ?=
PORT   ?= 8080
SYSTEM_PACKAGES := ffmpeg espeak-ng

.PHONY: install system-deps lint test test-fast search dashboard report export demo-base demo-data bench bench-search bench-real-size bench-probes bench-scale bench-gpu bench-valnoise bench-fidelity bench-fidelity-search bench-doctor bench-forgetting clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null
	$(BIN)/pip install -e '.[dev]'
	@touch $(STAMP)

# Debian packages: installed when we run as root, otherwise we stop with the exact command to run.
system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing system packages:$$missing"; echo "run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# The linter and the formatter's check (configured in pyproject.toml); `ruff format .` fixes the formatting.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Lint, then the whole suite, slow end-to-end tests included (CI runs exactly this).
# three workers, each test file on one (its module fixtures are built once): subprocesses and servers leave a
# 2-core CPU idle part of the time; 13.8 and 15.5 min here, 15.7 with two workers, 23-28 serially
test: lint
	$(BIN)/python -m pytest -n 3 --dist loadfile

# Unit tests only (seconds).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 3 --dist loadfile -m "not slow"

# WORKERS=N runs N workers in parallel on one storage (each runs TRIALS trials; worker i gets GPU i mod
# the GPU count when nvidia-smi lists GPUs), waits for all, fails if any failed, then writes the report and
# export once. Ctrl-C stops every worker cleanly (each marks its running trial interrupted and requeues it).
# On several machines run one `xtts-tune search --storage postgresql://...` per GPU instead.
search: SHELL := /bin/bash
search: $(STAMP)
ifeq ($(WORKERS),1)
	$(BIN)/xtts-tune search --config studies/$(STUDY).yaml --trials $(TRIALS) $(if $(STORAGE),--storage '$(STORAGE)')
else
	@gpus=$$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true); pids=""; \
	for i in $$(seq 0 $$(($(WORKERS) - 1))); do \
	  dev=""; if [ "$${gpus:-0}" -gt 0 ]; then dev="CUDA_VISIBLE_DEVICES=$$((i % gpus))"; fi; \
	  echo "worker $$i: $${dev:+$$dev }xtts-tune search --config studies/$(STUDY).yaml --trials $(TRIALS) --no-report"; \
	  (trap - INT; exec env $$dev $(BIN)/xtts-tune search --config studies/$(STUDY).yaml --trials $(TRIALS) \
	    --no-report $(if $(STORAGE),--storage '$(STORAGE)')) & pids="$$pids $$!"; \
	done; \
	trap '' INT; trap 'kill -INT $$pids 2>/dev/null' TERM; \
	failed=0; for p in $$pids; do wait $$p || failed=$$((failed + 1)); done; \
	if [ $$failed -gt 0 ]; then echo "$$failed of $(WORKERS) workers failed or were interrupted" >&2; exit 1; fi
	$(BIN)/xtts-tune report --config studies/$(STUDY).yaml $(if $(STORAGE),--storage '$(STORAGE)')
	-$(BIN)/xtts-tune export --config studies/$(STUDY).yaml $(if $(STORAGE),--storage '$(STORAGE)')
endif

dashboard: $(STAMP)
	$(BIN)/xtts-tune dashboard --config studies/$(STUDY).yaml --port $(PORT) $(if $(STORAGE),--storage '$(STORAGE)')

report: $(STAMP)
	$(BIN)/xtts-tune report --config studies/$(STUDY).yaml $(if $(STORAGE),--storage '$(STORAGE)')

export: $(STAMP)
	$(BIN)/xtts-tune export --config studies/$(STUDY).yaml --out studies/$(STUDY)-best.yaml $(if $(STORAGE),--storage '$(STORAGE)')

demo-data: $(STAMP)
	$(BIN)/xtts-tune demo-data data/demo

# Rebuild the embedded tiny base (about 30 minutes on a 2-core CPU).
demo-base: $(STAMP)
	$(BIN)/xtts-tune build-base --out xtts_tune/assets/tiny_base --data data/demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# search strategies replayed on tables of measured curves (benchmarks/search-table-*.json, committed): seconds;
# RECORD=1 records the tables again first (real trials, about 15 minutes per study on a 2-core CPU)
bench-search: $(STAMP)
	$(BIN)/python -m benchmarks.search.bench $(if $(RECORD),--record) $(ARGS)

# the real XTTS v2 GPT shape (random weights): step time and peak memory for freeze depths 0, 24, 28;
# on a GPU 3 steps of batch 1 x accumulation 16, on a CPU one step that only shows the path works
bench-real-size: $(STAMP)
	$(BIN)/python -m benchmarks --real-size $(ARGS)

# the probes (speaker similarity, CER/WER, babble flags) on a real speaker and the demo voices: a Markdown
# table of figures and seconds per clip on this machine (a few minutes on a 2-core CPU); see docs/probes.md
bench-probes: $(STAMP)
	$(BIN)/python -m benchmarks.probes $(ARGS)

# one trial of one epoch at 100 / 300 / 1,132 / 3,000 clips of the real hour (and the released shape at depth 28):
# wall time, peak RSS and disk per row, each row in its own process; see docs/benchmarks.md
bench-scale: $(STAMP)
	$(BIN)/python -m benchmarks.scale $(ARGS)

# the released shape on a GPU (at most 8 min): 1,000 clips, freeze depths 28 and 24, the prefix cache off and on,
# bf16; seconds per step and per trial, peak VRAM and RSS per row; on a CPU, ARGS='--tiny --clips 12 --steps 2'
bench-gpu: $(STAMP)
	$(BIN)/python -m benchmarks.gpu $(ARGS)

# the validation loss's noise on the real hour (bootstrap over 100/200/300 validation clips, two seeds per config):
# what the near-tie band and data.val_max rest on; about 15 min; see docs/search.md
bench-valnoise: $(STAMP)
	$(BIN)/python -m benchmarks.valnoise $(ARGS)

# is a short trial (1 epoch, or a nested fraction of the clips) a faithful proxy for the full one? Spearman
# of the ranks, the best's place, regret and compute per fidelity (DATASET=kathleen|hour); see docs/search.md
bench-fidelity: $(STAMP)
	$(BIN)/python -m benchmarks.fidelity $(if $(DATASET),--dataset $(DATASET)) $(ARGS)

# the multi-rung search (search.fidelity) against today's one-fidelity default on the same dataset and budget:
# compute, wall time, the recommendation's validation and unseen-clip test loss (DATASET=kathleen|hour); docs/search.md
bench-fidelity-search: $(STAMP)
	$(BIN)/python -m benchmarks.fidelity_search $(if $(DATASET),--dataset $(DATASET)) $(ARGS)

# the dataset doctor (check-data) on injected faults from the CC0 speaker (recall per fault type, false flags on
# clean clips) and on the first HOUR_CLIPS clips of the real hour (false flags, wall time); see docs/doctor.md
bench-doctor: $(STAMP)
	$(BIN)/python -m benchmarks.doctor --hour-clips $(or $(HOUR_CLIPS),1132) $(ARGS)

# does forgetting (loss on the demo base voice's held-out clips) grow with the learning rate and with fewer
# frozen layers? a grid search on the demo and the CC0 speaker, and one config over 3 seeds; see docs/forgetting.md
bench-forgetting: $(STAMP)
	$(BIN)/python -m benchmarks.forgetting $(ARGS)

clean:
	rm -rf runs studies/*.db studies/*-report.html studies/*-best.yaml
