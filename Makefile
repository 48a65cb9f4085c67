# xtts-tune: every target installs into .venv on first use (stamp file), so no separate install step is needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp-install
STUDY  ?= demo
TRIALS ?= 20
STORAGE ?=
PORT   ?= 8080
SYSTEM_PACKAGES := ffmpeg espeak-ng

.PHONY: install system-deps test test-fast search dashboard report export demo-base demo-data bench clean

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

# The whole suite, slow end-to-end tests included (CI runs exactly this).
test: $(STAMP)
	$(BIN)/python -m pytest

# Unit tests only (seconds).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

search: $(STAMP)
	$(BIN)/xtts-tune search --config studies/$(STUDY).yaml --trials $(TRIALS) $(if $(STORAGE),--storage '$(STORAGE)')

dashboard: $(STAMP)
	$(BIN)/xtts-tune dashboard --config studies/$(STUDY).yaml --port $(PORT) $(if $(STORAGE),--storage '$(STORAGE)')

report: $(STAMP)
	$(BIN)/xtts-tune report --config studies/$(STUDY).yaml $(if $(STORAGE),--storage '$(STORAGE)')

export: $(STAMP)
	$(BIN)/xtts-tune export --config studies/$(STUDY).yaml --out studies/$(STUDY)-best.yaml $(if $(STORAGE),--storage '$(STORAGE)')

demo-data: $(STAMP)
	$(BIN)/xtts-tune demo-data data/demo

# Rebuild the embedded tiny base (about 15 minutes on a 2-core CPU).
demo-base: $(STAMP)
	$(BIN)/xtts-tune build-base --out xtts_tune/assets/tiny_base --data data/demo

bench: $(STAMP)
	$(BIN)/python -m xtts_tune.bench

clean:
	rm -rf runs studies/*.db studies/*-report.html studies/*-best.yaml
