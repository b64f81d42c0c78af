# Reproducing the paper's tables on the real FMNERG benchmark: one file target per stage output, each
# written to $@.tmp and renamed (an interrupted run leaves no half-written file), with the stage's code
# and config as prerequisites, so `make` re-runs exactly what an edit made stale. `make -n TARGET` prints
# the plan (every vkel command) without running anything. docs/pipeline.md explains the variables.
#
#   make table-iv DATA_ROOT=/data IMAGE_ROOT=/data/twitter-images LLM_CONFIG=llm.toml LLM_NAMES="gpt gemini qwen"

# --- inputs -----------------------------------------------------------------------------------------------
DATA_ROOT ?= ../shared/data
FMNERG_DIR ?= $(DATA_ROOT)/fmnerg
XML_DIR ?= $(DATA_ROOT)/gmner-v2/xml
IMAGE_ROOT ?= $(DATA_ROOT)/images
FIGER_FILE ?= $(DATA_ROOT)/figer/figer_gold_exp.label
# --- models and services ---------------------------------------------------------------------------------
MODEL ?= llava-hf/llava-1.5-7b-hf
DEVICE ?= auto
DTYPE ?= auto
LLM_CONFIG ?= llm.toml
LLM_NAMES ?= gpt gemini llama
VOTER ?= $(firstword $(LLM_NAMES))
# Selects one endpoint of LLM_CONFIG for the single-LLM runs of Table X.
LLM_ONLY ?= --only
DETECT_BACKEND ?= mmdet
DETECT_CONFIG ?= rtmdet_l_8xb32-300e_coco
DETECT_CHECKPOINT ?= https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_l_8xb32-300e_coco/rtmdet_l_8xb32-300e_coco_20220719_112030-5a0be7c4.pth
DETECT_DEVICE ?= $(if $(filter auto,$(DEVICE)),cuda,$(DEVICE))
DETECT_FLAGS ?= --backend $(DETECT_BACKEND) --config $(DETECT_CONFIG) --checkpoint $(DETECT_CHECKPOINT) --device $(DETECT_DEVICE)
RETRIEVER ?= google
RETRIEVER_FLAGS ?=
AUG_IMAGES ?= $(DATA)/synthetic-images
AUG_RATIO ?= 0.8
CLIP_THRESHOLD ?= 0.3
CLIP_MODEL ?= ViT-L-14
CLIP_PRETRAINED ?= openai
# --- hyper-parameters (paper defaults) ---------------------------------------------------------------------
BATCH ?= 2
TRAIN_FLAGS ?= --epochs 10 --lr 2e-5 --batch-size $(BATCH) --effective-batch 30 --lora-r 8 --lora-alpha 16 --lora-dropout 0.05 --max-length 2048 --seed 0 --device $(DEVICE) --dtype $(DTYPE)
PREDICT_FLAGS ?= --batch-size 8 --max-new-tokens 256
TOP_K ?= 5
NOISE ?= 0.1
SCORE_FLAGS ?= --ignore-case --by-type
IOU_SWEEP ?= 0.1,0.3,0.5,0.7,0.9,1.0
K_SWEEP ?= 1 3 5 7 10
NOISE_SWEEP ?= 0 0.05 0.1 0.2 0.3
# --- where things go ---------------------------------------------------------------------------------------
DATA ?= data
RUNS ?= runs
OUT ?= out
TABLES ?= tables

DETECT_TOP_K := $(shell printf '%s\n' $(K_SWEEP) $(TOP_K) | sort -n | tail -n 1)
comma := ,

# The code each stage runs (what makes its outputs stale). $(wildcard) keeps only files that exist.
CODE_BASE := $(wildcard vkel_cli/core/records.py vkel_cli/core/errors.py vkel_cli/fetch/images.py vkel_cli/core/boxes.py)
CODE_DATA := $(CODE_BASE) $(wildcard vkel_cli/data/*.py vkel_cli/commands/data*.py vkel_cli/resources/*.json)
CODE_AUGMENT := $(CODE_BASE) $(wildcard vkel_cli/augment/*.py vkel_cli/augment/retrieval/*.py vkel_cli/commands/augment.py)
CODE_DETECT := $(CODE_BASE) $(wildcard vkel_cli/detect/*.py vkel_cli/commands/detect.py)
CODE_KNOWLEDGE := $(CODE_BASE) $(wildcard vkel_cli/knowledge/*.py vkel_cli/knowledge/llm/*.py \
  vkel_cli/commands/knowledge.py vkel_cli/commands/vote.py vkel_cli/resources/*templates*)
CODE_MODEL := $(CODE_BASE) $(wildcard vkel_cli/format/*.py vkel_cli/models/*.py vkel_cli/train/*.py vkel_cli/predict/*.py \
  vkel_cli/commands/train.py vkel_cli/commands/predict.py)
CODE_SCORE := $(CODE_BASE) $(wildcard vkel_cli/metric/score.py vkel_cli/metric/tables.py vkel_cli/commands/score.py)
# The LLM config is a prerequisite only when it is a file here (it may come from $VKEL_LLM_CONFIG).
LLM_CONFIG_DEP := $(wildcard $(LLM_CONFIG))

.PHONY: paper table-iv table-vi table-ix table-x fig-8 fig-10 paper-data paper-sample

# ======================= 1. data: the benchmark, the synthetic stage-1 data ===============================
paper-data: $(DATA)/train.jsonl $(DATA)/dev.jsonl $(DATA)/test.jsonl ## Import the benchmark (DATA_ROOT, IMAGE_ROOT) into data/*.jsonl

$(DATA)/train.jsonl $(DATA)/dev.jsonl $(DATA)/test.jsonl: $(DATA)/%.jsonl: $(FMNERG_DIR)/%.txt $(CODE_DATA)
	@mkdir -p $(@D)
	$(VKEL) data import fmnerg $< --xml-dir $(XML_DIR) --image-root $(IMAGE_ROOT) > $@.tmp && mv $@.tmp $@

# FIGER sentences + retrieved images, CLIP-filtered, subsampled to AUG_RATIO of the training set.
$(DATA)/synthetic.jsonl: $(FIGER_FILE) $(DATA)/train.jsonl $(CODE_DATA) $(CODE_AUGMENT)
	$(VKEL) data import figer $(FIGER_FILE) \
	  | $(VKEL) augment --retriever $(RETRIEVER) $(RETRIEVER_FLAGS) --image-dir $(AUG_IMAGES) \
	      --clip-model $(CLIP_MODEL) --clip-pretrained $(CLIP_PRETRAINED) --threshold $(CLIP_THRESHOLD) \
	      --ratio $(AUG_RATIO) --reference-size $$(wc -l < $(DATA)/train.jsonl) --seed 0 > $@.tmp && mv $@.tmp $@

$(DATA)/train+synthetic.jsonl: $(DATA)/train.jsonl $(DATA)/synthetic.jsonl
	cat $^ > $@.tmp && mv $@.tmp $@

# ======================= 2. object annotations and visual knowledge =======================================
# Detected once with the largest K any experiment uses; stage 2 keeps the top --top-k of them.
$(DATA)/train.objects.jsonl $(DATA)/test.objects.jsonl: $(DATA)/%.objects.jsonl: $(DATA)/%.jsonl $(CODE_DETECT)
	$(VKEL) detect $(DETECT_FLAGS) --top-k $(DETECT_TOP_K) --image-root $(IMAGE_ROOT) $< > $@.tmp && mv $@.tmp $@

# Training records: knowledge about the gold entities from every LLM, then the vote.
$(DATA)/train.vk.jsonl: $(DATA)/train.objects.jsonl $(LLM_CONFIG_DEP) $(CODE_KNOWLEDGE)
	$(VKEL) knowledge --llm-config $(LLM_CONFIG) --from gold $< \
	  | $(VKEL) vote --llm-config $(LLM_CONFIG) --method llm --voter $(VOTER) > $@.tmp && mv $@.tmp $@

# Table X: knowledge from one LLM only (its answers are in the cache already when the full run came first).
$(DATA)/train.vk-%.jsonl: $(DATA)/train.objects.jsonl $(LLM_CONFIG_DEP) $(CODE_KNOWLEDGE)
	$(VKEL) knowledge --llm-config $(LLM_CONFIG) $(LLM_ONLY) $* --from gold $< \
	  | $(VKEL) vote --method majority > $@.tmp && mv $@.tmp $@

# ======================= 3. stage 1: entity + coarse type ==================================================
# $(call stage1_run,RUN,TRAINING RECORDS,EXTRA FLAGS)
define stage1_run
$(RUNS)/$(1)/adapter_config.json: $(2) $$(CODE_MODEL)
	$$(VKEL) train --stage 1 --model $$(MODEL) --output-dir $(RUNS)/$(1) --overwrite $$(TRAIN_FLAGS) $(3) \
	  --image-root $$(IMAGE_ROOT) $(2)
endef
$(eval $(call stage1_run,stage1,$(DATA)/train+synthetic.jsonl))
$(eval $(call stage1_run,stage1-nosyn,$(DATA)/train.jsonl))
# Joint training: one adapter learns both stages (stage-2 sequences need the objects and knowledge).
$(eval $(call stage1_run,joint,$(DATA)/train.vk.jsonl $(DATA)/synthetic.jsonl,--joint --top-k $(TOP_K) --noise $(NOISE)))

# Stage-1 predictions of run R on the test set: $(OUT)/R/test.stage1.jsonl (objects ride along).
$(OUT)/%/test.stage1.jsonl: $(DATA)/test.objects.jsonl $(RUNS)/%/adapter_config.json $(CODE_MODEL)
	@mkdir -p $(@D)
	$(VKEL) predict --stage 1 --model $(MODEL) --adapter $(RUNS)/$* $(PREDICT_FLAGS) --image-root $(IMAGE_ROOT) \
	  $< > $@.tmp && mv $@.tmp $@

# Visual knowledge about the predicted entities.
$(OUT)/%/test.vk.jsonl: $(OUT)/%/test.stage1.jsonl $(LLM_CONFIG_DEP) $(CODE_KNOWLEDGE)
	$(VKEL) knowledge --llm-config $(LLM_CONFIG) --from stage1 $< \
	  | $(VKEL) vote --llm-config $(LLM_CONFIG) --method llm --voter $(VOTER) > $@.tmp && mv $@.tmp $@

define single_llm_test
$(OUT)/stage1/test.vk-$(1).jsonl: $(OUT)/stage1/test.stage1.jsonl $$(LLM_CONFIG_DEP) $$(CODE_KNOWLEDGE)
	$$(VKEL) knowledge --llm-config $$(LLM_CONFIG) $$(LLM_ONLY) $(1) --from stage1 $$< \
	  | $$(VKEL) vote --method majority > $$@.tmp && mv $$@.tmp $$@
endef
$(foreach l,$(LLM_NAMES),$(eval $(call single_llm_test,$(l))))

# ======================= 4. stage 2: fine type + box ======================================================
# $(call stage2_run,RUN,TRAINING RECORDS,FLAGS)
define stage2_run
$(RUNS)/$(1)/adapter_config.json: $(2) $$(CODE_MODEL)
	$$(VKEL) train --stage 2 --model $$(MODEL) --output-dir $(RUNS)/$(1) --overwrite $$(TRAIN_FLAGS) $(3) \
	  --image-root $$(IMAGE_ROOT) $(2)
endef
S2_DEFAULT := --top-k $(TOP_K) --noise $(NOISE)
$(eval $(call stage2_run,stage2,$(DATA)/train.vk.jsonl,$(S2_DEFAULT)))
$(eval $(call stage2_run,stage2-noknow,$(DATA)/train.vk.jsonl,$(S2_DEFAULT) --no-knowledge))
$(eval $(call stage2_run,stage2-noobj,$(DATA)/train.vk.jsonl,$(S2_DEFAULT) --no-objects))
# Table IV's baselines are one LoRA each, fine-tuned end to end: tweet + image -> the final triples, without
# stage-1 input, visual knowledge or objects (--no-stage1). LLaVA-augment adds the synthetic records, which give
# stage-1 examples only (their boxes are unknown), as under --joint.
$(eval $(call stage2_run,llava-direct,$(DATA)/train.jsonl,--no-stage1))
$(eval $(call stage2_run,llava-augment,$(DATA)/train+synthetic.jsonl,--no-stage1))
# Sweeps: the default value is the main run itself, not a second copy of it.
k_run = $(if $(filter $(1),$(TOP_K)),stage2,stage2-k$(1))
noise_run = $(if $(filter $(1),$(NOISE)),stage2,stage2-noise$(1))
$(foreach k,$(K_SWEEP),$(if $(filter $(k),$(TOP_K)),,$(eval $(call stage2_run,stage2-k$(k),$(DATA)/train.vk.jsonl,--top-k $(k) --noise $(NOISE)))))
$(foreach n,$(NOISE_SWEEP),$(if $(filter $(n),$(NOISE)),,$(eval $(call stage2_run,stage2-noise$(n),$(DATA)/train.vk.jsonl,--top-k $(TOP_K) --noise $(n)))))
$(foreach l,$(LLM_NAMES),$(eval $(call stage2_run,stage2-llm-$(l),$(DATA)/train.vk-$(l).jsonl,$(S2_DEFAULT))))

# ======================= 5. systems: stage-2 predictions on the test set, scored ===========================
# $(call system,NAME,TEST INPUT,STAGE-2 RUN,PREDICT FLAGS) -> $(OUT)/NAME/{test.stage2,metrics}.jsonl + metrics.md
define system
$(OUT)/$(1)/test.stage2.jsonl: $(2) $(RUNS)/$(3)/adapter_config.json $$(CODE_MODEL)
	@mkdir -p $$(@D)
	$$(VKEL) predict --stage 2 --model $$(MODEL) --adapter $(RUNS)/$(3) $$(PREDICT_FLAGS) $(4) \
	  --image-root $$(IMAGE_ROOT) $(2) > $$@.tmp && mv $$@.tmp $$@
$(OUT)/$(1)/metrics.jsonl: $(OUT)/$(1)/test.stage2.jsonl $$(CODE_SCORE)
	$$(VKEL) score $$(SCORE_FLAGS) --iou $$(IOU_SWEEP) --markdown $(OUT)/$(1)/metrics.md $$< > $$@.tmp && mv $$@.tmp $$@
endef
# Table IV. LLaVA-direct and LLaVA-augment: their single end-to-end adapter on the test tweets and images;
# VKEL: stage 1 (benchmark + synthetic) -> knowledge about its entities -> stage 2 with knowledge and objects.
$(eval $(call system,llava-direct,$(DATA)/test.jsonl,llava-direct,--no-stage1))
$(eval $(call system,llava-augment,$(DATA)/test.jsonl,llava-augment,--no-stage1))
$(eval $(call system,vkel,$(OUT)/stage1/test.vk.jsonl,stage2,--top-k $(TOP_K)))
# Table VI ablations.
$(eval $(call system,no-synthetic,$(OUT)/stage1-nosyn/test.vk.jsonl,stage2,--top-k $(TOP_K)))
$(eval $(call system,no-knowledge,$(OUT)/stage1/test.vk.jsonl,stage2-noknow,--top-k $(TOP_K) --no-knowledge))
$(eval $(call system,no-objects,$(OUT)/stage1/test.vk.jsonl,stage2-noobj,--no-objects))
$(eval $(call system,joint,$(OUT)/joint/test.vk.jsonl,joint,--top-k $(TOP_K)))
# Table X, Fig. 8, Fig. 10.
$(foreach l,$(LLM_NAMES),$(eval $(call system,llm-$(l),$(OUT)/stage1/test.vk-$(l).jsonl,stage2-llm-$(l),--top-k $(TOP_K))))
$(foreach k,$(K_SWEEP),$(eval $(call system,k$(k),$(OUT)/stage1/test.vk.jsonl,$(call k_run,$(k)),--top-k $(k))))
$(foreach n,$(NOISE_SWEEP),$(eval $(call system,noise$(n),$(OUT)/stage1/test.vk.jsonl,$(call noise_run,$(n)),--top-k $(TOP_K))))

# ======================= 6. the tables: metrics JSONL joined into Markdown ================================
# $(call table,TITLE,LABEL=SYSTEM ...) as a recipe; prerequisites are the systems' metrics files.
metrics_of = $(foreach s,$(1),$(OUT)/$(s)/metrics.jsonl)
define table_recipe
	@mkdir -p $(@D)
	$(PY) scripts/metrics_table.py --title '$(1)' \
	  $(foreach p,$(2),'$(firstword $(subst =, ,$(p)))=$(OUT)/$(lastword $(subst =, ,$(p)))/metrics.jsonl') > $@.tmp && mv $@.tmp $@
endef

TABLE_IV := LLaVA-direct=llava-direct LLaVA-augment=llava-augment VKEL=vkel
TABLE_VI := VKEL=vkel w/o-synthetic-data=no-synthetic w/o-visual-knowledge=no-knowledge \
  w/o-object-annotations=no-objects w/-joint-training=joint
TABLE_X := $(foreach l,$(LLM_NAMES),$(l)-only=llm-$(l)) VKEL-(voted)=vkel
FIG_8 := $(foreach k,$(K_SWEEP),K=$(k)=k$(k))
FIG_10 := $(foreach n,$(NOISE_SWEEP),noise=$(n)=noise$(n))
systems_of = $(foreach p,$(1),$(lastword $(subst =, ,$(p))))

table-iv: $(TABLES)/table-iv.md ## Table IV: LLaVA-direct, LLaVA-augment, VKEL (FMNERG/FMNER/EEG)
$(TABLES)/table-iv.md: $(call metrics_of,$(call systems_of,$(TABLE_IV))) scripts/metrics_table.py
	$(call table_recipe,Table IV: main results (IoU 0.5),$(TABLE_IV))

table-vi: $(TABLES)/table-vi.md ## Table VI: ablations (w/o synthetic data, visual knowledge, objects; joint)
$(TABLES)/table-vi.md: $(call metrics_of,$(call systems_of,$(TABLE_VI))) scripts/metrics_table.py
	$(call table_recipe,Table VI: ablations (IoU 0.5),$(TABLE_VI))

table-ix: $(TABLES)/table-ix.md $(TABLES)/table-ix.png ## Table IX: VKEL at IoU 0.1 ... 1.0 (+ .png/.svg figure)
$(TABLES)/table-ix.md: $(OUT)/vkel/metrics.jsonl scripts/metrics_table.py
	@mkdir -p $(@D)
	$(PY) scripts/metrics_table.py --by-iou --title 'Table IX: IoU thresholds' $< > $@.tmp && mv $@.tmp $@
$(TABLES)/table-ix.png: $(OUT)/vkel/metrics.jsonl scripts/plot_sweeps.py scripts/metrics_table.py
	$(PY) scripts/plot_sweeps.py iou --title 'Table IX: F1 by IoU threshold and coarse type' -o $(basename $@) $<

table-x: $(TABLES)/table-x.md ## Table X: knowledge from a single LLM (LLM_NAMES) vs the vote
$(TABLES)/table-x.md: $(call metrics_of,$(call systems_of,$(TABLE_X))) scripts/metrics_table.py
	$(call table_recipe,Table X: single-LLM knowledge (IoU 0.5),$(TABLE_X))

fig-8: $(TABLES)/fig-8.md $(TABLES)/fig-8.png ## Fig. 8: number K of object annotations (K_SWEEP; + .png/.svg)
$(TABLES)/fig-8.md: $(call metrics_of,$(call systems_of,$(FIG_8))) scripts/metrics_table.py
	@mkdir -p $(@D)
	$(PY) scripts/metrics_table.py --title 'Fig. 8: top-K object annotations (IoU 0.5)' \
	  $(foreach k,$(K_SWEEP),'K=$(k)=$(OUT)/k$(k)/metrics.jsonl') > $@.tmp && mv $@.tmp $@
$(TABLES)/fig-8.png: $(call metrics_of,$(call systems_of,$(FIG_8))) scripts/plot_sweeps.py scripts/metrics_table.py
	@mkdir -p $(@D)
	$(PY) scripts/plot_sweeps.py labels --x-label 'K (objects in the prompt)' --title 'Fig. 8: top-K object annotations' \
	  -o $(basename $@) $(foreach k,$(K_SWEEP),'K=$(k)=$(OUT)/k$(k)/metrics.jsonl')

fig-10: $(TABLES)/fig-10.md $(TABLES)/fig-10.png ## Fig. 10: stage-2 training noise (NOISE_SWEEP; + .png/.svg)
$(TABLES)/fig-10.md: $(call metrics_of,$(call systems_of,$(FIG_10))) scripts/metrics_table.py
	@mkdir -p $(@D)
	$(PY) scripts/metrics_table.py --title 'Fig. 10: stage-1 noise in stage-2 training (IoU 0.5)' \
	  $(foreach n,$(NOISE_SWEEP),'noise=$(n)=$(OUT)/noise$(n)/metrics.jsonl') > $@.tmp && mv $@.tmp $@
$(TABLES)/fig-10.png: $(call metrics_of,$(call systems_of,$(FIG_10))) scripts/plot_sweeps.py scripts/metrics_table.py
	@mkdir -p $(@D)
	$(PY) scripts/plot_sweeps.py labels --x-label 'stage-1 noise rate' --title 'Fig. 10: stage-1 noise in stage-2 training' \
	  -o $(basename $@) $(foreach n,$(NOISE_SWEEP),'noise=$(n)=$(OUT)/noise$(n)/metrics.jsonl')

paper: table-iv table-vi table-ix table-x fig-8 fig-10 ## Every table and figure of the paper into tables/

# A smoke run of the reproduction targets on the bundled sample with the demo's tiny random models
# (scores ~0): proves the Makefile's plan runs, end to end, in a few minutes. Outputs under build/paper-sample/.
PAPER_SAMPLE_DIR ?= build/paper-sample
PAPER_SAMPLE_TARGETS ?= table-iv table-ix
paper-sample: ## Run table-iv and table-ix on the bundled sample with the demo's tiny models (smoke run)
	$(MAKE) --no-print-directory demo-models DEMO_LLMS="alpha beta"
	$(MAKE) --no-print-directory $(PAPER_SAMPLE_TARGETS) FMNERG_DIR=examples/sample XML_DIR=examples/sample/xml \
	  IMAGE_ROOT=examples/sample/images FIGER_FILE=examples/sample/figer.txt \
	  RETRIEVER=local RETRIEVER_FLAGS="--index examples/sample/pool/index.json" CLIP_MODEL=ViT-S-32 \
	  CLIP_PRETRAINED=none CLIP_THRESHOLD=-1 MODEL=$(DEMO_DIR)/models/llava \
	  LLM_CONFIG=examples/demo-llms.toml LLM_NAMES="alpha beta" \
	  DETECT_FLAGS="$(DEMO_DETECT)" TRAIN_FLAGS="--epochs 1 --batch-size 4 --grad-accum 1 --lr 1e-3 --seed 0" \
	  PREDICT_FLAGS="--batch-size 8 --max-new-tokens 32" DATA=$(PAPER_SAMPLE_DIR)/data \
	  RUNS=$(PAPER_SAMPLE_DIR)/runs OUT=$(PAPER_SAMPLE_DIR)/out TABLES=$(PAPER_SAMPLE_DIR)/tables
	@cat $(foreach t,$(PAPER_SAMPLE_TARGETS),$(PAPER_SAMPLE_DIR)/tables/$(t).md) >&2
