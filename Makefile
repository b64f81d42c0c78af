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

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_./%-]+:.*## ' $(MAKEFILE_LIST) | sort -u | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-28s %s\n", $$1, $$2}'

install: $(STAMP) ## Create or reuse the virtualenv .venv and install vkel with every stage into it

# torch and torchvision are pinned together (constraints.txt): PyPI's regular builds, CPU or GPU.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[all,dev]'
	@touch $@

test: install ## Install, then run the test suite
	$(PY) -m pytest -q -p no:cacheprovider

docs: install ## Regenerate completions/ and man/ from the command tree
	$(PY) scripts/gen_docs.py

-include mk/*.mk
