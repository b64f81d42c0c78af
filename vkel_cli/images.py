"""Finding and opening a record's image: a path under --image-root, an absolute path, or a URL."""

from __future__ import annotations

import io
import os
from typing import Any

from .errors import VkelError

# Refuse images that would decode to more pixels than this (decompression-bomb guard).
MAX_PIXELS = 64_000_000


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def resolve(image: str | None, image_root: str | None = None) -> str | None:
    """The path (or URL) of a record's `image`; None when the record has no image."""
    if not image:
        return None
    if is_url(image) or os.path.isabs(image) or not image_root:
        return image
    return os.path.join(image_root, image)


def header_size(path: str) -> list[int] | None:
    """[width, height] from the file header without decoding pixels; None if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return [int(img.width), int(img.height)]
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def load(record: dict[str, Any], image_root: str | None = None, timeout: float = 30.0):
    """Open a record's image as RGB, fully decoded; VkelError (naming the record) if it cannot be."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    where = f"record {record.get('id')!r}"
    location = resolve(record.get("image"), image_root)
    if location is None:
        raise VkelError("record has no image", where)
    try:
        if is_url(location):
            from . import http

            data = http.fetch_bytes(location, timeout=timeout)
            img = Image.open(io.BytesIO(data))
        else:
            img = Image.open(location)
        img.load()
        return img.convert("RGB")
    except FileNotFoundError:
        raise VkelError(f"image not found: {location}", where) from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise VkelError(f"cannot read image {location}: {err}", where) from None


def size_of(record: dict[str, Any], image_root: str | None = None) -> list[int] | None:
    """The record's `image_size`, else the image file's header size, else None."""
    size = record.get("image_size")
    if size:
        return list(size)
    location = resolve(record.get("image"), image_root)
    if location and not is_url(location) and os.path.exists(location):
        return header_size(location)
    return None
