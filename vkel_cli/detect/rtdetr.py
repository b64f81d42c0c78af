"""RT-DETR through transformers (`RTDetrForObjectDetection` + `RTDetrImageProcessor`): the same
`objects` as the mmdet backend, for users who cannot build mmcv. `--model` is a hub id (e.g.
PekingU/rtdetr_r50vd, COCO classes) or a local directory saved with `save_pretrained`.

The default backbone (`rt_detr_resnet`) is built by transformers itself: no timm and no separate
backbone weights are needed. `build_tiny` writes a tiny random RT-DETR for tests and demos.
"""

from __future__ import annotations

import os

from ..core.errors import VkelError
from .base import Detection, Detector, DetectorOptions, resolve_device, resolve_dtype
from .coco import COCO_CLASSES

DEFAULT_MODEL = "PekingU/rtdetr_r50vd"


class RTDetrDetector(Detector):
    name = "rtdetr"

    def __init__(self, options: DetectorOptions):
        import torch
        from transformers import RTDetrForObjectDetection, RTDetrImageProcessor

        self.device = resolve_device(options.device)
        self.dtype = resolve_dtype(options.dtype, self.device)
        self.model_name = options.model or DEFAULT_MODEL
        self.score_threshold = options.score_threshold
        try:
            self.processor = RTDetrImageProcessor.from_pretrained(self.model_name)
            self.model = RTDetrForObjectDetection.from_pretrained(self.model_name, dtype=self.dtype)
        except (OSError, ValueError) as err:
            raise VkelError(f"cannot load RT-DETR from --model {self.model_name!r}: {err}") from None
        self.model.to(self.device).eval()
        self.id2label = {int(k): v for k, v in self.model.config.id2label.items()}
        self._torch = torch

    def detect(self, images: list) -> list[list[Detection]]:
        if not images:
            return []
        torch = self._torch
        inputs = self.processor(images=images, return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.device, self.dtype)
        with torch.no_grad():
            outputs = self.model(pixel_values=pixel_values)
        outputs.logits = outputs.logits.float()
        outputs.pred_boxes = outputs.pred_boxes.float()
        # target_sizes are (height, width): boxes come back in pixels of the original images.
        results = self.processor.post_process_object_detection(
            outputs, threshold=self.score_threshold, target_sizes=[(im.height, im.width) for im in images])
        out = []
        for result in results:
            boxes = result["boxes"].cpu().tolist()
            scores = result["scores"].cpu().tolist()
            labels = result["labels"].cpu().tolist()
            out.append([Detection(self.id2label.get(label, str(label)), score, tuple(box))
                        for box, score, label in zip(boxes, scores, labels)])
        return out


def build_tiny(directory: str, seed: int = 0, image_size: int = 128, num_queries: int = 30) -> str:
    """Save a tiny random RT-DETR (COCO's 80 labels, ~0.6M parameters) and its processor to `directory`."""
    import torch
    from transformers import RTDetrConfig, RTDetrForObjectDetection, RTDetrImageProcessor, RTDetrResNetConfig

    backbone = RTDetrResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1],
                                  layer_type="basic", out_indices=[2, 3, 4])
    config = RTDetrConfig(
        backbone_config=backbone, encoder_in_channels=[32, 64, 128], encoder_hidden_dim=32, d_model=32,
        decoder_in_channels=[32, 32, 32], encoder_ffn_dim=64, decoder_ffn_dim=64, encoder_layers=1,
        decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2, num_queries=num_queries,
        num_denoising=0, id2label=dict(enumerate(COCO_CLASSES)),
        label2id={name: i for i, name in enumerate(COCO_CLASSES)})
    torch.manual_seed(seed)
    model = RTDetrForObjectDetection(config).eval()
    os.makedirs(directory, exist_ok=True)
    model.save_pretrained(directory)
    RTDetrImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(directory)
    return directory
