"""`vkel detect`: add `objects` (top-K labelled boxes, pixels) to each record, for the stage-2 prompt."""

from typing import Annotated, Literal, Optional

import typer

from ..models.device import Dtype
from ._options import AllowPrivateUrls, ImageRoot, Inputs, OnError, Output, allow_private


def detect_cli(
    inputs: Inputs = None,
    backend: Annotated[Literal["mmdet", "rtdetr"], typer.Option(
        "--backend", help="mmdet: RTMDet through OpenMMLab (needs `make install-mmdet`). rtdetr: transformers' "
        "RT-DETR.")] = "mmdet",
    config: Annotated[str, typer.Option("--config", metavar="FILE|NAME", help="mmdet: a config file, or the name of a config shipped "
                                        "with mmdet (rtmdet_tiny_8xb32-300e_coco, rtmdet_l_8xb32-300e_coco, ...).")
                      ] = "rtmdet_tiny_8xb32-300e_coco",
    checkpoint: Annotated[str, typer.Option("--checkpoint", metavar="PATH|URL", help="mmdet weights: a path, a URL, `released` (the "
                                            "URL mmdet publishes for a shipped config) or `none` (random weights).")
                          ] = "released",
    model: Annotated[Optional[str], typer.Option("--model", metavar="DIR|ID", help="rtdetr: hub id or local directory "
                                                 "[default: PekingU/rtdetr_r50vd].")] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=0, help="Keep this many objects per image, best first.")] = 5,
    score_threshold: Annotated[float, typer.Option("--score-threshold", min=0.0, max=1.0,
                                                   help="Drop detections scoring below this.")] = 0.3,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per detector call.")] = 8,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Image-decoding threads (run alongside "
                                         "inference).")] = 4,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    dtype: Annotated[Dtype, typer.Option("--dtype", help="auto (fp16 on CUDA, fp32 on CPU), bf16, fp16, fp32 "
                                         "(bfloat16/float16/float32 accepted).")] = "auto",
    image_root: ImageRoot = None,
    output: Output = "-",
    allow_private_urls: AllowPrivateUrls = False,
    on_error: OnError = "fail",
):
    """Detect objects in each record's image for the stage-2 prompt.

    Adds `objects`: [{label, score, box}] (box in pixels), best first."""
    allow_private(allow_private_urls)
    from ..detect.base import DetectorOptions, create
    from ..detect.run import DetectSettings, detect_records
    from ._options import run_stage

    options = DetectorOptions(config=config, checkpoint=checkpoint, model=model, device=device, dtype=dtype,
                              score_threshold=score_threshold)
    settings = DetectSettings(image_root=image_root, top_k=top_k, score_threshold=score_threshold,
                              batch_size=batch_size, workers=workers)
    detector = create(backend, options)
    run_stage(inputs, output, on_error, lambda pairs, policy: detect_records(pairs, policy, detector, settings))
