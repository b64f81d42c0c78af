# `make install-mmdet`: OpenMMLab's detector stack (mmcv with compiled ops, mmengine, mmdet 3.3.0) for
# `vkel detect --backend mmdet`. The mmcv wheel is compiled once per machine and user (~12 min on
# 2 cores) into ~/.cache/vkel/wheels/ and reused by every clone and venv (seconds). See docs/detect.md.
MMDET_STAMP := $(VENV)/.vkel-mmdet-installed

.PHONY: install-mmdet
install-mmdet: $(MMDET_STAMP) ## Build (once) and install mmcv 2.1.0 + mmdet 3.3.0 into .venv for `vkel detect`

$(MMDET_STAMP): scripts/build_mmcv.sh scripts/mmdet-constraints.txt $(STAMP)
	VENV=$(VENV) scripts/build_mmcv.sh
	@touch $@

# The full install, the tests (the mmdet backend's tests run for real) and the demo need it.
install: install-mmdet
test: install-mmdet
demo: install-mmdet
