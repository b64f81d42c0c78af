# `make bench`: every benchmarks/bench_*.py (each prints a Markdown section) into BENCHMARKS.md, with the
# machine and the date. It first runs a fresh demo into $(BENCH_DEMO_DIR) (own cache, so the LLM answers
# are not cache hits) for the per-stage demo time; BENCH_DEMO=0 skips that, BENCH_ONLY="cli score" runs
# only those scripts.
BENCH_DEMO ?= 1
BENCH_DEMO_DIR ?= build/bench-demo
BENCH_ONLY ?=

.PHONY: bench
bench: $(STAMP) ## Run benchmarks/bench_*.py (and a fresh demo for its stage times) into BENCHMARKS.md
ifeq ($(BENCH_DEMO),1)
	rm -rf $(BENCH_DEMO_DIR)
	VKEL_CACHE=$(abspath $(BENCH_DEMO_DIR))/cache $(MAKE) --no-print-directory demo-run DEMO_DIR=$(BENCH_DEMO_DIR) \
	  || echo "bench: the demo failed; BENCHMARKS.md will say so" >&2
endif
	VKEL_DEMO_TIMING=$(BENCH_DEMO_DIR)/timing.tsv $(PY) scripts/bench_report.py -o BENCHMARKS.md \
	  $(if $(BENCH_ONLY),--only $(BENCH_ONLY))
	@if [ -s $(BENCH_DEMO_DIR)/timing.tsv ]; then \
	  $(PY) scripts/plot_sweeps.py timing --title 'demo: seconds per stage' -o benchmarks/demo-timing \
	    $(BENCH_DEMO_DIR)/timing.tsv && echo "bench: benchmarks/demo-timing.png, .svg"; fi
