"""The split CLIP preprocessing gives exactly what open_clip's per-image transform gives, or steps aside."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _images():
    from PIL import Image

    rng = np.random.default_rng(0)
    sizes = [(96, 72), (72, 96), (33, 33), (500, 17), (17, 500), (31, 20), (8, 5), (224, 224), (225, 300)]
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
    gray = Image.fromarray(rng.integers(0, 256, (40, 60), dtype=np.uint8))  # mode L
    rgba = Image.fromarray(rng.integers(0, 256, (50, 45, 4), dtype=np.uint8))
    return images + [gray, rgba, rgba.convert("P")]


@pytest.mark.parametrize("kwargs", [
    dict(image_size=32),
    dict(image_size=224, interpolation="bilinear"),
    dict(image_size=(40, 24), resize_mode="squash"),
    dict(image_size=20, mean=(0.5, 0.25, 0.125), std=(0.1, 0.2, 0.3)),
    "crop larger than the resized image (zero padding)",
])
def test_plan_plus_batch_normalisation_equals_the_per_image_transform(kwargs):
    import torch
    from open_clip.transform import MaybeConvertMode, image_transform
    from torchvision import transforms

    from vkel_cli.augment.image_prep import normalize_batch, plan_for

    if isinstance(kwargs, dict):
        transform = image_transform(is_train=False, **kwargs)
    else:
        transform = transforms.Compose([transforms.Resize(9), transforms.CenterCrop((16, 13)), MaybeConvertMode(),
                                        transforms.ToTensor(), transforms.Normalize((0.4, 0.5, 0.6), (0.2, 0.3, 0.25))])
    plan = plan_for(transform)
    assert plan is not None
    plan = pickle.loads(pickle.dumps(plan))  # what a decoding worker receives
    images = _images()
    expected = torch.stack([transform(img) for img in images])
    arrays = [plan(img) for img in images]
    assert all(a.dtype == np.uint8 and a.shape == arrays[0].shape for a in arrays)
    assert torch.equal(normalize_batch(arrays, plan.mean, plan.std), expected)


def test_an_unrecognised_transform_is_run_as_it_is(tmp_path):
    from open_clip.transform import image_transform
    from torchvision import transforms

    from vkel_cli.augment.clip import OpenClipScorer
    from vkel_cli.models.tiny import build_tiny_clip
    from vkel_cli.augment.image_prep import plan_for

    assert plan_for(image_transform(224, is_train=True)) is None  # random crops
    assert plan_for(image_transform(224, is_train=False, resize_mode="longest")) is None  # ResizeKeepRatio
    assert plan_for(transforms.Compose([transforms.Resize(32), transforms.ToTensor()])) is None  # no Normalize
    odd = transforms.Compose([transforms.Resize(32), transforms.CenterCrop(32), transforms.Grayscale(3),
                              transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    assert plan_for(odd) is None

    scorer = OpenClipScorer(build_tiny_clip(str(tmp_path / "clip")), None, device="cpu")
    assert scorer.plan is not None and scorer.light
    planned = scorer.encode_images([scorer.prepare(img) for img in _images()])
    scorer.plan = None  # as for a transform plan_for does not know: tensors from open_clip's own transform
    assert scorer.preparer() is scorer.preprocess
    tensors = [scorer.prepare(img) for img in _images()]
    np.testing.assert_array_equal(scorer.encode_images(tensors), planned)
