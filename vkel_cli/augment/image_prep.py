"""CLIP image preprocessing split in two: a PIL part for worker processes, a tensor part for batches.

open_clip's eval transform is Resize -> CenterCrop -> RGB -> ToTensor -> Normalize, run per image. Run
that way in a decoding worker it needs torch there, and its per-image tensor calls cost more than the
resize itself. `ResizeCropPlan` does the PIL half with exactly torchvision's geometry (output size,
rounding, zero padding) and returns uint8 HWC arrays (numpy + PIL only); `normalize_batch` then does
ToTensor + Normalize on a whole batch with the same float32 operations, so the encoder sees the very
values the per-image transform gives (tests/test_clip.py compares them for equality). A transform this
module does not recognise is run as it is (`plan_for` returns None).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ResizeCropPlan:
    resize: tuple[int, ...]  # (short side,) or (height, width)
    crop: tuple[int, int] | None  # (height, width)
    resample: int  # PIL filter
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, image) -> np.ndarray:
        width, height = image.size
        if len(self.resize) == 1:
            new_width, new_height = _shortest_side(width, height, self.resize[0])
        else:
            new_height, new_width = self.resize
        if (new_width, new_height) != (width, height):
            image = image.resize((new_width, new_height), self.resample)
        if self.crop is not None:
            image = _center_crop(image, *self.crop)
        if image.mode != "RGB":  # after resizing, as the transform does (it matters for RGBA and P)
            image = image.convert("RGB")
        return np.asarray(image, dtype=np.uint8)


def _shortest_side(width: int, height: int, size: int) -> tuple[int, int]:
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)  # torchvision truncates, it does not round
    return (new_short, new_long) if width <= height else (new_long, new_short)


def _center_crop(image, crop_height: int, crop_width: int):
    from PIL import ImageOps

    width, height = image.size
    if crop_width > width or crop_height > height:  # zero padding first, as torchvision does
        border = (max(0, (crop_width - width) // 2), max(0, (crop_height - height) // 2),
                  max(0, (crop_width - width + 1) // 2), max(0, (crop_height - height + 1) // 2))
        palette = image.getpalette() if image.mode == "P" else None
        image = ImageOps.expand(image, border=border, fill=0)
        if palette is not None:
            image.putpalette(palette)
        width, height = image.size
        if (width, height) == (crop_width, crop_height):
            return image
    top, left = int(round((height - crop_height) / 2.0)), int(round((width - crop_width) / 2.0))
    return image.crop((left, top, left + crop_width, top + crop_height))


def plan_for(transform) -> ResizeCropPlan | None:
    """The plan equivalent to an open_clip eval transform, or None when it has other steps."""
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor

    steps = list(transform.transforms) if isinstance(transform, Compose) else []
    if not steps or not isinstance(steps[0], Resize) or not isinstance(steps[-1], Normalize):
        return None
    resize, normalize, middle = steps[0], steps[-1], steps[1:-1]
    resamples = {InterpolationMode.BICUBIC: 3, InterpolationMode.BILINEAR: 2, InterpolationMode.NEAREST: 0}
    size = (resize.size,) if isinstance(resize.size, int) else tuple(resize.size)
    if resize.max_size is not None or resize.interpolation not in resamples or len(size) not in (1, 2):
        return None
    crop = None
    if middle and isinstance(middle[0], CenterCrop):
        crop = tuple(middle.pop(0).size)
    *converts, to_tensor = middle or [None]
    if not isinstance(to_tensor, ToTensor) or not all(_converts_to_rgb(step) for step in converts):
        return None
    if len(normalize.mean) != 3 or len(normalize.std) != 3 or normalize.inplace:
        return None
    return ResizeCropPlan(size, crop, resamples[resize.interpolation],
                          tuple(float(m) for m in normalize.mean), tuple(float(s) for s in normalize.std))


def _converts_to_rgb(step) -> bool:
    from open_clip.transform import MaybeConvertMode

    if isinstance(step, MaybeConvertMode):
        return step.mode == "RGB"
    return getattr(step, "__name__", "") == "_convert_to_rgb"  # open_clip before MaybeConvertMode


def normalize_batch(arrays: list[np.ndarray], mean, std, device: str = "cpu"):
    """uint8 HWC arrays of one size -> the float32 NCHW batch that ToTensor + Normalize give per image."""
    import torch

    batch = torch.from_numpy(np.stack(arrays)).to(device).permute(0, 3, 1, 2)
    batch = batch.to(torch.float32).div(255)
    mean = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return batch.sub_(mean).div_(std)
