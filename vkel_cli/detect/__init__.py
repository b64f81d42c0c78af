"""`vkel detect`: object annotations (top-K labelled boxes) for the stage-2 prompt.

base.py holds the Detector interface, the top-K selection and the backend registry; mmdet_backend.py
(RTMDet through OpenMMLab's mmdet, the paper's toolkit) and rtdetr.py (transformers' RT-DETR) implement
it; run.py is the streaming stage. vkel_cli/format/prompts.py renders `objects` into the stage-2 prompt.
"""
