# vkel: install, test, and (through mk/*.mk) the demo, the paper's tables and the benchmarks.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
VKEL := $(VENV)/bin/vkel
STAMP := $(VENV)/.vkel-installed

.PHONY: help install test docs
.DEFAULT_GOAL := help

# The variables a user sets (make TARGET VAR=value): `make help` prints each one's default and the text of
# its `#: VAR text` line below. The defaults themselves live next to the rules that use them (mk/*.mk).
#: PYTHON       the Python that creates .venv (>= 3.10)
#: VENV         the virtualenv vkel is installed into
#: DATA_ROOT    the benchmark: fmnerg/{train,dev,test}.txt, gmner-v2/xml/, figer/ (paper targets)
#: IMAGE_ROOT   the tweets' images (the benchmark's twitter images); relative `image` paths resolve here
#: MODEL        base model for train/predict: a hub id (a 7B download) or a local directory
#: DEVICE       auto, cpu, cuda or cuda:N
#: DTYPE        auto (bf16 on GPUs that have it, fp32 on CPU), bf16, fp16 or fp32
#: LLM_CONFIG   the knowledge LLMs (TOML; copy examples/llm.toml and fill it in)
#: LLM_NAMES    the endpoints of LLM_CONFIG that give knowledge (Table X runs each alone)
#: VOTER        the endpoint that votes and summarises
#: BATCH        per-device training batch (the effective batch stays 30)
#: TOP_K        objects in the stage-2 prompt
#: NOISE        stage-2 training noise
#: DATA         where imported and enriched records go
#: RUNS         where adapters go
#: OUT          where predictions and metrics go
#: TABLES       where the Markdown tables (and figures) go
#: DEMO_DIR     where `make demo` writes
#: DEMO_EPOCHS  epochs of the demo's tiny models
HELP_VARS = $(shell sed -n 's/^\#: \([A-Z_]*\) .*/\1/p' Makefile)

help: ## List the targets and the variables
	@echo "Targets:"
	@grep -hE '^[a-zA-Z0-9_./%-]+:.*## ' $(MAKEFILE_LIST) | sort -u | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-28s %s\n", $$1, $$2}'
	@echo
	@echo "Variables (make TARGET VAR=value; default in brackets):"
	@$(foreach v,$(HELP_VARS),printf '  %-12s %s\n  %-12s [%s]\n' '$(v)' "$$(sed -n 's/^#: $(v) \+//p' Makefile)" '' '$(subst ','\'',$($(v)))';)

install: $(STAMP) ## Create or reuse the virtualenv .venv and install vkel with every stage into it

# torch and torchvision are pinned together (constraints.txt): PyPI's regular builds, CPU or GPU.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@mkdir -p build
	@echo "install: vkel with every stage (torch included: ~6 GB, a few minutes the first time) into $(VENV);" \
	  "pip's output: build/pip-install.log" >&2
	@{ $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q -c constraints.txt -e '.[all,dev]'; } \
	  > build/pip-install.log 2>&1 || { cat build/pip-install.log >&2; echo "install: pip FAILED (log above)" >&2; exit 1; }
	@touch $@

test: install ## Install, then run the test suite
	$(PY) -m pytest -q -p no:cacheprovider

docs: install ## Regenerate completions/ and man/ from the command tree
	$(PY) scripts/gen_docs.py

-include mk/*.mk
