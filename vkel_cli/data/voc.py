"""Twitter-GMNER v2 boxes: one Pascal-VOC XML per tweet, `<object><name>` = an entity's surface string.

A tweet without an XML file has no box (4388 of the 10000 benchmark tweets); a file that exists but does
not parse, or holds something that is not a box, is an error of that tweet."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from ..core.errors import VkelError


@dataclass
class Annotation:
    path: str
    size: list[int] | None = None
    boxes: dict[str, list[list[float]]] = field(default_factory=dict)  # name -> boxes
    objects: dict[str, int] = field(default_factory=dict)  # name -> number of its first <object>


def _number(node, tag: str, where: str) -> float:
    child = node.find(tag)
    if child is None or child.text is None:
        raise VkelError(f"<{tag}> missing", where)
    try:
        return float(child.text)
    except ValueError:
        raise VkelError(f"<{tag}> is not a number: {child.text!r}", where) from None


def read_annotation(path: str) -> Annotation:
    """Parse one XML file (a BOM and CRLF are fine: XML allows both); a box that is not a box
    (missing or non-numeric coordinate, zero or negative size) is an error naming the object."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise VkelError(f"malformed XML: {err}", path) from None
    except OSError as err:
        raise VkelError(f"cannot read: {err.strerror}", path) from None
    annotation = Annotation(path)
    size = root.find("size")
    if size is not None:
        width, height = _number(size, "width", path), _number(size, "height", path)
        if width > 0 and height > 0:
            annotation.size = [int(width), int(height)]
    for i, obj in enumerate(root.iter("object"), 1):
        where = f"{path}: object {i}"
        name = " ".join((obj.findtext("name") or "").split())
        box_node = obj.find("bndbox")
        if not name or box_node is None:
            raise VkelError("object without <name> or <bndbox>", where)
        box = [_number(box_node, tag, where) for tag in ("xmin", "ymin", "xmax", "ymax")]
        if not (box[2] > box[0] and box[3] > box[1]):
            raise VkelError(f"bad box {box} for {name!r}: xmax/ymax must exceed xmin/ymin", where)
        annotation.boxes.setdefault(name, []).append(box)
        annotation.objects.setdefault(name, i)
    return annotation


def check_xml_dir(xml_dir: str | None) -> None:
    """A given --xml-dir that is not a directory would silently import every entity without boxes."""
    if xml_dir is not None and not os.path.isdir(xml_dir):
        raise VkelError("--xml-dir is not a directory", xml_dir)


def check_imgid(imgid: str | None, where: str | None = None) -> None:
    """An IMGID names <xml_dir>/<IMGID>.xml and the image <IMGID>.jpg: one that could name a file outside
    those directories (a separator, a leading dot, an absolute path) is refused."""
    if not imgid:
        raise VkelError("empty IMGID", where)
    if any(c in imgid for c in "/\\\0") or imgid.startswith(".") or os.path.isabs(imgid):
        raise VkelError(f"IMGID {imgid!r} is not a plain file name (refused: it could name a file outside "
                        "--xml-dir or --image-root)", where)


def annotation_path(xml_dir: str, imgid: str) -> str:
    """<xml_dir>/<imgid>.xml, for an IMGID that passes check_imgid."""
    check_imgid(imgid)
    # No separator and no leading dot: the name is a direct child of xml_dir (a symlink placed there by
    # the user is the user's choice and is followed).
    return os.path.join(xml_dir, f"{imgid}.xml")


def find_annotation(xml_dir: str | None, imgid: str) -> Annotation | None:
    """The tweet's annotation, or None when there is no --xml-dir or no file for it (no box)."""
    if not xml_dir:
        return None
    path = annotation_path(xml_dir, imgid)
    return read_annotation(path) if os.path.exists(path) else None
