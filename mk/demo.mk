# `make demo`: the complete VKEL pipeline, offline, on the bundled sample (examples/sample/).
#
# Every step below is a plain `vkel` command joined by files (or a pipe), exactly as a user would type it.
# The models are tiny and RANDOM (built locally by `vkel models tiny`, a random RTMDet, a random tiny CLIP),
# so the scores printed at the end are near zero: the demo proves the stages compose, not that they learn.
# docs/pipeline.md shows the same pipeline with the real models.
#
# Outputs go under $(DEMO_DIR)/ (default demo/); each file is written to $@.tmp and renamed, so an
# interrupted run never leaves a half-written stage output. `make demo` again re-runs only what is stale.
# Per-stage wall time is appended to $(DEMO_DIR)/timing.tsv and printed at the end.

DEMO_DIR ?= demo
SAMPLE ?= examples/sample
# Knobs for a faster (CI) or longer run.
DEMO_EPOCHS ?= 2
DEMO_BATCH ?= 4
DEMO_MAX_NEW_TOKENS ?= 48
# Local LLM endpoints (each a tiny random llama, its own seed) give the knowledge; the first one votes.
# Two keep the demo near 5 minutes on 2 cores; DEMO_LLMS="alpha beta gamma" asks three, as the paper does.
DEMO_LLMS ?= alpha beta
# Short answers: a random LLM never stops on its own, and its 256-token default would dominate the demo.
DEMO_LLM_TOKENS ?= 24
DEMO_VOTE ?= --method llm --voter $(firstword $(DEMO_LLMS))
# The detector: RTMDet-tiny from mmdet's shipped config with random weights (no checkpoint); threshold 0
# because random weights score every box low.
DEMO_DETECT ?= --backend mmdet --config rtmdet_tiny_8xb32-300e_coco --checkpoint none --score-threshold 0 --device cpu
# The CLIP filter: a tiny open_clip model with random weights (`vkel models tiny --backbone clip`) (threshold -1: random similarities
# are noise, so nothing is dropped; the real run uses ViT-L-14 with `openai` weights and 0.3).
DEMO_CLIP ?= --clip-model $(DEMO_CLIP_DIR) --threshold -1

D := $(DEMO_DIR)
DEMO_IMAGES := $(SAMPLE)/images
DEMO_TIMING := $(D)/timing.tsv
DEMO_LLAVA := $(D)/models/llava
DEMO_CLIP_DIR := $(D)/models/clip
DEMO_LLM_FLAGS := $(foreach n,$(DEMO_LLMS),--llm $(n)=local:$(D)/models/llm-$(n))
DEMO_LLM_DIRS := $(foreach n,$(DEMO_LLMS),$(D)/models/llm-$(n)/config.json)

# The stage clock: $(TIC) at the start of a recipe, $(call TOC,stage) at its end appends "stage<TAB>seconds".
# (The clock lives outside the target's directory, which a stage may replace.)
CLOCK = $(D)/.clocks/$(subst /,_,$@)
TIC = @mkdir -p $(@D) $(D)/.clocks && date +%s%N > $(CLOCK)
TOC = @printf '%s\t%s\n' '$(1)' "$$(( ($$(date +%s%N) - $$(cat $(CLOCK))) / 1000000 ))e-3" >> $(DEMO_TIMING) && rm -f $(CLOCK)

.PHONY: demo demo-run demo-clean demo-timing demo-models

# A `make demo` with nothing stale says so, rather than reprinting the last run's timings as if it had run.
demo: $(STAMP) ## Run the whole VKEL pipeline offline on the bundled sample (random tiny models; scores ~0)
	@if $(MAKE) --no-print-directory -q $(D)/metrics.jsonl 2>/dev/null; then \
	  echo "demo: up to date ($(D)/ is newer than everything it is made from). Scores: $(D)/score.md;" \
	    "last timings: make demo-timing; to run it again: make demo-clean demo" >&2; \
	else $(MAKE) --no-print-directory demo-run; fi

demo-run: $(D)/metrics.jsonl ## The demo pipeline without the install step (DEMO_DIR=, DEMO_EPOCHS=, DEMO_LLMS=)
	@cat $(D)/score.md >&2
	@$(PY) scripts/demo_timing.py $(DEMO_TIMING)

demo-timing: ## Print the per-stage wall time of the last demo run
	@$(PY) scripts/demo_timing.py $(DEMO_TIMING)

demo-models: $(DEMO_LLAVA)/config.json $(DEMO_LLM_DIRS) ## Build the demo's tiny random models under $(DEMO_DIR)/models

demo-clean: ## Remove the demo outputs
	rm -rf $(D)

# --- 1. import: the benchmark's CoNLL + XML files become records ----------------------------------------
$(D)/train.jsonl $(D)/test.jsonl: $(D)/%.jsonl: $(SAMPLE)/%.txt
	$(TIC)
	$(VKEL) data import fmnerg $< --xml-dir $(SAMPLE)/xml --image-root $(DEMO_IMAGES) > $@.tmp && mv $@.tmp $@
	$(call TOC,import:$*)

# --- 2. augment: FIGER text-only sentences + images from the local pool, CLIP-filtered -------------------
$(D)/synthetic.jsonl: $(SAMPLE)/figer.txt $(SAMPLE)/pool/index.json $(DEMO_CLIP_DIR)/open_clip_config.json
	$(TIC)
	$(VKEL) data import figer $(SAMPLE)/figer.txt \
	  | $(VKEL) augment --retriever local --index $(SAMPLE)/pool/index.json --image-dir $(D)/synthetic-images \
	      $(DEMO_CLIP) --seed 0 > $@.tmp && mv $@.tmp $@
	$(call TOC,augment)

# Stage 1 trains on the benchmark's records and the synthetic ones together (a plain `cat`).
$(D)/train.stage1-data.jsonl: $(D)/train.jsonl $(D)/synthetic.jsonl
	cat $^ > $@.tmp && mv $@.tmp $@

# --- the models: a tiny random LLaVA for both stages, and one tiny random llama per LLM endpoint --------
$(DEMO_LLAVA)/config.json:
	$(TIC)
	rm -rf $(DEMO_LLAVA) $(DEMO_LLAVA).tmp && $(VKEL) models tiny $(DEMO_LLAVA).tmp --backbone llava --seed 0 && mv $(DEMO_LLAVA).tmp $(DEMO_LLAVA)
	$(call TOC,models:llava)

$(DEMO_CLIP_DIR)/open_clip_config.json:
	$(TIC)
	rm -rf $(DEMO_CLIP_DIR) $(DEMO_CLIP_DIR).tmp && $(VKEL) models tiny $(DEMO_CLIP_DIR).tmp --backbone clip --seed 0 && mv $(DEMO_CLIP_DIR).tmp $(DEMO_CLIP_DIR)
	$(call TOC,models:clip)

# One rule per endpoint (seed = its position in DEMO_LLMS, so the LLMs differ and the vote has work to do).
define demo_llm_rule
$(D)/models/llm-$(1)/config.json:
	$$(TIC)
	rm -rf $(D)/models/llm-$(1) $(D)/models/llm-$(1).tmp
	$$(VKEL) models tiny $(D)/models/llm-$(1).tmp --backbone llama --seed $(2)
	mv $(D)/models/llm-$(1).tmp $(D)/models/llm-$(1)
	$$(call TOC,models:llm-$(1))
endef
$(foreach i,$(shell seq $(words $(DEMO_LLMS))),$(eval $(call demo_llm_rule,$(word $(i),$(DEMO_LLMS)),$(i))))

# --- 3. train stage 1: LoRA adapter for entity + coarse type ------------------------------------------
$(D)/runs/stage1/adapter_config.json: $(D)/train.stage1-data.jsonl $(DEMO_LLAVA)/config.json
	$(TIC)
	$(VKEL) train --stage 1 --model $(DEMO_LLAVA) --output-dir $(D)/runs/stage1 --overwrite \
	  --epochs $(DEMO_EPOCHS) --batch-size $(DEMO_BATCH) --grad-accum 1 --lr 1e-3 --seed 0 \
	  --image-root $(DEMO_IMAGES) $(D)/train.stage1-data.jsonl
	$(call TOC,train:stage1)

# --- 4. predict stage 1 on the test records -----------------------------------------------------------
$(D)/test.stage1.jsonl: $(D)/test.jsonl $(D)/runs/stage1/adapter_config.json
	$(TIC)
	$(VKEL) predict --stage 1 --model $(DEMO_LLAVA) --adapter $(D)/runs/stage1 --batch-size $(DEMO_BATCH) \
	  --max-new-tokens $(DEMO_MAX_NEW_TOKENS) --image-root $(DEMO_IMAGES) $< > $@.tmp && mv $@.tmp $@
	$(call TOC,predict:stage1)

# --- 5. detect: top-5 object boxes for the stage-2 prompt (train: gold-side records, test: stage-1 output)
$(D)/train.objects.jsonl: $(D)/train.jsonl
	$(TIC)
	$(VKEL) detect $(DEMO_DETECT) --top-k 5 --image-root $(DEMO_IMAGES) $< > $@.tmp && mv $@.tmp $@
	$(call TOC,detect:train)

$(D)/test.objects.jsonl: $(D)/test.stage1.jsonl
	$(TIC)
	$(VKEL) detect $(DEMO_DETECT) --top-k 5 --image-root $(DEMO_IMAGES) $< > $@.tmp && mv $@.tmp $@
	$(call TOC,detect:test)

# --- 6. knowledge: every LLM describes how each entity looks (train: gold entities, test: stage-1 ones) --
$(D)/train.knowledge.jsonl: $(D)/train.objects.jsonl $(DEMO_LLM_DIRS)
	$(TIC)
	$(VKEL) knowledge $(DEMO_LLM_FLAGS) --max-tokens $(DEMO_LLM_TOKENS) --from gold $< > $@.tmp && mv $@.tmp $@
	$(call TOC,knowledge:train)

$(D)/test.knowledge.jsonl: $(D)/test.objects.jsonl $(DEMO_LLM_DIRS)
	$(TIC)
	$(VKEL) knowledge $(DEMO_LLM_FLAGS) --max-tokens $(DEMO_LLM_TOKENS) --from stage1 $< > $@.tmp && mv $@.tmp $@
	$(call TOC,knowledge:test)

# --- 7. vote: reconcile the LLMs' answers into one visual description per entity ----------------------
$(D)/%.voted.jsonl: $(D)/%.knowledge.jsonl
	$(TIC)
	$(VKEL) vote $(DEMO_VOTE) $(DEMO_LLM_FLAGS) --max-tokens $(DEMO_LLM_TOKENS) $< > $@.tmp && mv $@.tmp $@
	$(call TOC,vote:$*)

# --- 8. train stage 2: fine type + box, with visual knowledge and object annotations in the prompt -----
$(D)/runs/stage2/adapter_config.json: $(D)/train.voted.jsonl $(DEMO_LLAVA)/config.json
	$(TIC)
	$(VKEL) train --stage 2 --model $(DEMO_LLAVA) --output-dir $(D)/runs/stage2 --overwrite \
	  --epochs $(DEMO_EPOCHS) --batch-size $(DEMO_BATCH) --grad-accum 1 --lr 1e-3 --noise 0.1 --top-k 5 --seed 0 \
	  --image-root $(DEMO_IMAGES) $<
	$(call TOC,train:stage2)

# --- 9. predict stage 2 on the test records (stage-1 entities + objects + visual knowledge) ------------
$(D)/test.stage2.jsonl: $(D)/test.voted.jsonl $(D)/runs/stage2/adapter_config.json
	$(TIC)
	$(VKEL) predict --stage 2 --model $(DEMO_LLAVA) --adapter $(D)/runs/stage2 --batch-size $(DEMO_BATCH) \
	  --max-new-tokens $(DEMO_MAX_NEW_TOKENS) --top-k 5 --image-root $(DEMO_IMAGES) $< > $@.tmp && mv $@.tmp $@
	$(call TOC,predict:stage2)

# --- 10. score: FMNERG / FMNER / EEG against the gold entities the records carry ----------------------
$(D)/metrics.jsonl: $(D)/test.stage2.jsonl
	$(TIC)
	$(VKEL) score --ignore-case --quiet --markdown $(D)/score.md $< > $@.tmp && mv $@.tmp $@
	$(call TOC,score)
