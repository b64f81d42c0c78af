"""The one image layer: where a record's image is, how it is opened and decoded, and its pixel frame.

Every stage that reads images (detect, predict, the train collator and its stage-2 targets, augment's
decoding workers, importers reading headers) goes through this module, so each rule lives here once:

- Where: a relative `image` is resolved under --image-root (the current directory without one) and may
  not leave it, `..` or a symlink that points outside alike (symlinks are resolved first); an absolute
  path is the user's own choice and is used as given; http(s) URLs are fetched by `http.fetch_bytes`,
  which owns the network policy.
- What is opened: regular files only. A FIFO, a directory or a device is refused without blocking (the
  file is opened non-blocking and checked with fstat before anything is read).
- What is decoded: JPEG (MPO, a camera JPEG with extra frames, decodes as its first frame), PNG, WebP,
  GIF (first frame) and BMP; anything else, TIFF included, is refused. Images over `max_pixels`
  (width x height from the header) are refused before their pixels are decoded; the cap is a parameter of
  each call, never a PIL global. Truncated files are refused (a full decode is done).
- The frame: the EXIF orientation is applied; the decoded, oriented image is the truth. `align` moves a
  record's boxes given in another declared `image_size` into that frame (docs/records.md, "Images").

Only the standard library and PIL are imported, so the module is cheap in decoding worker processes.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..core.errors import VkelError

# Refuse images that would decode to more pixels than this (decompression-bomb guard).
MAX_PIXELS = 64_000_000
# PIL format ids that may be opened, and the file extension each is stored under.
FORMATS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}
ACCEPTED = "JPEG, PNG, WebP, GIF, BMP"
ORIENTATION_TAG = 0x0112
SWAPS_SIDES = (5, 6, 7, 8)  # EXIF orientations whose display is the stored image turned a quarter


class ImageError(VkelError):
    """An image that cannot be used; `reason` is a short key (not_found, not_regular, outside_root,
    not_image, too_many_pixels, corrupt, unreadable, fetch) for counters such as augment's."""

    def __init__(self, reason: str, message: str, where: str | None = None, permanent: bool = True):
        super().__init__(message, where)
        self.reason, self.permanent = reason, permanent


@dataclass(frozen=True)
class Frame:
    """An image's pixel frame: `size` [width, height] after EXIF orientation (the truth), `raw_size` as
    stored in the file, and the EXIF orientation (1-8) that maps one to the other."""

    size: tuple[int, int]
    raw_size: tuple[int, int]
    orientation: int = 1


@dataclass
class Decoded:
    image: Any  # an RGB PIL image, orientation applied
    frame: Frame
    ext: str  # file extension of the detected format


def is_url(value: str) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _where(record: dict[str, Any]) -> str:
    return f"record {record.get('id')!r}"


def resolve(image: str | None, image_root: str | None = None, where: str | None = None) -> str | None:
    """The URL, or the absolute path, of a record's `image`; None when the record has none. A relative
    path must stay inside `image_root` (the current directory when None) once symlinks are resolved."""
    if image is None or image == "":
        return None
    if not isinstance(image, str):
        raise ImageError("bad_field", f"`image` must be a string, not {type(image).__name__}", where)
    if is_url(image):
        return image
    if "\0" in image:
        raise ImageError("bad_field", "`image` contains a NUL character", where)
    if os.path.isabs(image):
        return image
    root = os.path.realpath(image_root or os.curdir)
    path = os.path.realpath(os.path.join(root, image))
    if os.path.commonpath([root, path]) != root:
        raise ImageError("outside_root", f"image path {image!r} leads outside the image root {root} "
                         "(use an absolute path, or an --image-root that holds it)", where)
    return path


def open_regular(path: str, where: str | None = None) -> BinaryIO:
    """A binary file object for `path`, which must be a regular file (a FIFO is refused, not waited on)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageError("not_found", f"image not found: {path}", where) from None
    except OSError as err:
        raise ImageError("unreadable", f"cannot open image {path}: {err.strerror or err}", where) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "not a regular file")
        raise ImageError("not_regular", f"image {path} is {kind}, not a regular file", where)
    return os.fdopen(fd, "rb")


def _open(source: BinaryIO, name: str, where: str | None, max_pixels: int):
    """PIL's lazy image (header parsed, pixels not decoded), within the whitelist and the pixel cap."""
    from PIL import Image

    try:
        img = Image.open(source, formats=[f for f in FORMATS if f != "MPO"])
    except Image.UnidentifiedImageError:
        raise ImageError("not_image", f"cannot read image {name}: not an image in an accepted format ({ACCEPTED})",
                         where) from None
    except Image.DecompressionBombError:  # PIL's own, higher, limit: past ours too
        raise ImageError("too_many_pixels", f"refused image {name}: more than {max_pixels} pixels", where) from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageError("corrupt", f"cannot read image {name}: {err}", where) from None
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError("too_many_pixels", f"refused image {name}: {width}x{height} is over the {max_pixels}-pixel "
                         "cap", where)
    if width < 1 or height < 1:
        raise ImageError("corrupt", f"cannot read image {name}: it is {width}x{height}", where)
    return img


def _orientation(img) -> int:
    try:
        value = int(img.getexif().get(ORIENTATION_TAG, 1))
    except (OSError, ValueError, TypeError, SyntaxError):  # a broken EXIF block: treat as unrotated
        return 1
    return value if 1 <= value <= 8 else 1


def _frame(img) -> Frame:
    width, height = img.size
    orientation = _orientation(img)
    size = (height, width) if orientation in SWAPS_SIDES else (width, height)
    return Frame(size, (width, height), orientation)


# PIL transposes that display an image stored with each EXIF orientation (as ImageOps.exif_transpose).
def _transposes():
    from PIL import Image

    t = Image.Transpose
    return {2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE, 6: t.ROTATE_270,
            7: t.TRANSVERSE, 8: t.ROTATE_90}


def _decode(source: BinaryIO, name: str, where: str | None, max_pixels: int) -> Decoded:
    from PIL import Image

    img = _open(source, name, where, max_pixels)
    frame = _frame(img)
    ext = FORMATS.get(img.format or "", "")
    try:
        img.load()  # the first frame of a GIF/MPO/animated WebP; a truncated file fails here
        rgb = img if img.mode == "RGB" else img.convert("RGB")
        if frame.orientation != 1:
            rgb = rgb.transpose(_transposes()[frame.orientation])
    except Image.DecompressionBombError:
        raise ImageError("too_many_pixels", f"refused image {name}: more than {max_pixels} pixels", where) from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageError("corrupt", f"cannot read image {name}: {err}", where) from None
    return Decoded(rgb, frame, ext)


def decode_bytes(data: bytes, name: str, where: str | None = None, max_pixels: int = MAX_PIXELS) -> Decoded:
    """Fully decode image bytes (RGB, orientation applied); ImageError when they cannot be used."""
    return _decode(io.BytesIO(data), name, where, max_pixels)


def decode_file(path: str, where: str | None = None, max_pixels: int = MAX_PIXELS) -> Decoded:
    """Fully decode a regular file (RGB, orientation applied); ImageError when it cannot be used."""
    with open_regular(path, where) as handle:
        return _decode(handle, path, where, max_pixels)


def file_frame(path: str, where: str | None = None, max_pixels: int = MAX_PIXELS) -> Frame:
    """The frame of a regular image file from its header and EXIF orientation, without decoding pixels."""
    with open_regular(path, where) as handle:
        img = _open(handle, path, where, max_pixels)
        try:
            return _frame(img)
        finally:
            img.close()


def header_size(path: str) -> list[int] | None:
    """[width, height] after EXIF orientation, from the file header; None if it is not a usable image."""
    try:
        return list(file_frame(path).size)
    except ImageError:
        return None


def load_decoded(record: dict[str, Any], image_root: str | None = None, timeout: float = 30.0,
                 max_pixels: int = MAX_PIXELS) -> Decoded:
    """A record's image, fully decoded with its frame; ImageError naming the record when it cannot be."""
    where = _where(record)
    location = resolve(record.get("image"), image_root, where)
    if location is None:
        raise ImageError("no_image", "record has no image", where)
    if not is_url(location):
        return decode_file(location, where, max_pixels)
    from . import http

    try:
        data = http.fetch_bytes(location, timeout=timeout)
    except VkelError as err:
        raise ImageError("fetch", f"cannot fetch image {location}: {err.message}", where, permanent=False) from None
    return decode_bytes(data, location, where, max_pixels)


def load(record: dict[str, Any], image_root: str | None = None, timeout: float = 30.0,
         max_pixels: int = MAX_PIXELS):
    """A record's image as an RGB PIL image, orientation applied; ImageError naming the record."""
    return load_decoded(record, image_root, timeout, max_pixels).image


def frame_of(record: dict[str, Any], image_root: str | None = None) -> Frame | None:
    """The frame of a record's local image file (header only); None for a URL. ImageError (naming the
    record) when the record has no image or the file is not a usable image."""
    where = _where(record)
    location = resolve(record.get("image"), image_root, where)
    if location is None:
        raise ImageError("no_image", "record has no image", where)
    return None if is_url(location) else file_frame(location, where)


def size_of(record: dict[str, Any], image_root: str | None = None) -> list[int] | None:
    """The frame the record's boxes are in: its `image_size`, else its local image file's size after EXIF
    orientation (header only), else None."""
    size = record.get("image_size")
    if size:
        return list(size)
    try:
        frame = frame_of(record, image_root)
    except ImageError:
        return None
    return list(frame.size) if frame else None


# ------------------------------------------------------------------------------------- the frame rule


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _uniform(declared: tuple[float, float], size: tuple[int, int]) -> bool:
    """Whether `size` is `declared` scaled by one factor, to within a pixel of rounding on each side."""
    (dw, dh), (w, h) = declared, size
    return max((w - 1) / dw, (h - 1) / dh) <= min((w + 1) / dw, (h + 1) / dh)


def _oriented_point(x: float, y: float, orientation: int, raw_w: float, raw_h: float) -> tuple[float, float]:
    """A point of the stored image -> the same point of the displayed one (EXIF orientation 1-8)."""
    return {1: (x, y), 2: (raw_w - x, y), 3: (raw_w - x, raw_h - y), 4: (x, raw_h - y), 5: (y, x),
            6: (raw_h - y, x), 7: (raw_h - y, raw_w - x), 8: (y, raw_w - x)}[orientation]


def align(record: dict[str, Any], frame: Frame) -> dict[str, Any]:
    """Put the record's boxes in the decoded image's frame (the truth) and set `image_size` to it.

    Without `image_size`, or with the decoded size, boxes are taken as already in that frame. A declared
    size that is a uniform rescale of it (the file was resized after annotation) rescales every box
    (entities' `boxes`, `objects`, `predictions`) by width and height ratios, so fractions of the image are
    kept. A declared size equal to the file's stored size when its EXIF orientation turns the image a
    quarter (annotated without applying the orientation) turns the boxes the same way. Anything else is an
    ImageError naming the record: boxes cannot be placed. What was done is noted in `meta.image_frame`."""
    where = _where(record)
    size = [int(v) for v in frame.size]
    declared = record.get("image_size")
    if declared is None:
        record["image_size"] = size
        return record
    if not (isinstance(declared, (list, tuple)) and len(declared) == 2 and all(_number(v) and v > 0
                                                                              for v in declared)):
        raise ImageError("bad_field", f"`image_size` must be [width, height] in pixels, not {declared!r}", where)
    if [float(v) for v in declared] == [float(v) for v in size]:
        record["image_size"] = size
        return record
    dw, dh = float(declared[0]), float(declared[1])
    raw_w, raw_h = frame.raw_size
    if frame.orientation in SWAPS_SIDES and (dw, dh) == (float(raw_w), float(raw_h)):
        action = f"turned by EXIF orientation {frame.orientation}"

        def move(box):
            (x1, y1), (x2, y2) = (_oriented_point(box[0], box[1], frame.orientation, dw, dh),
                                  _oriented_point(box[2], box[3], frame.orientation, dw, dh))
            return [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]
    elif _uniform((dw, dh), frame.size):
        action = "rescaled"
        sx, sy = size[0] / dw, size[1] / dh

        def move(box):
            return [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy]
    else:
        raise ImageError("frame_mismatch", f"image_size {list(declared)} does not match the image "
                         f"({size[0]}x{size[1]} after EXIF orientation) and is not a uniform rescale of it: "
                         "its boxes cannot be placed in the image", where)
    moved = 0

    def convert(box):
        nonlocal moved
        if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(_number(v) for v in box)):
            return box  # not a box: the record check reports it, this rule leaves it as it is
        moved += 1
        return [round(float(v), 2) for v in move([float(v) for v in box])]

    for entity in record.get("entities") or []:
        if isinstance(entity, dict) and isinstance(entity.get("boxes"), list):
            entity["boxes"] = [convert(box) for box in entity["boxes"]]
    for field in ("objects", "predictions"):
        for item in record.get(field) or []:
            if isinstance(item, dict) and item.get("box") is not None:
                item["box"] = convert(item["box"])
    record["image_size"] = size
    info = record.get("meta")
    if not isinstance(info, dict):
        info = record["meta"] = {}
    info["image_frame"] = {"declared_size": list(declared), "image_size": size, "boxes": action, "moved": moved}
    return record


__all__ = ["ACCEPTED", "Decoded", "FORMATS", "Frame", "ImageError", "MAX_PIXELS", "align", "decode_bytes",
           "decode_file", "file_frame", "frame_of", "header_size", "is_url", "load", "load_decoded",
           "open_regular", "resolve", "size_of"]
