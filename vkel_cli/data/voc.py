"""Twitter-GMNER v2 boxes: one Pascal-VOC XML per tweet, `<object><name>` = an entity's surface string."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from ..errors import VkelError


@dataclass
class Annotation:
    size: list[int] | None = None
    boxes: dict[str, list[list[float]]] = field(default_factory=dict)  # name -> boxes


def _number(node, tag: str, where: str) -> float:
    child = node.find(tag)
    if child is None or child.text is None:
        raise VkelError(f"<{tag}> missing", where)
    try:
        return float(child.text)
    except ValueError:
        raise VkelError(f"<{tag}> is not a number: {child.text!r}", where) from None


def read_annotation(path: str) -> Annotation:
    """Parse one XML file; a box that is not a box (non-numeric, zero or negative size) is an error."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise VkelError(f"malformed XML: {err}", path) from None
    annotation = Annotation()
    size = root.find("size")
    if size is not None:
        width, height = _number(size, "width", path), _number(size, "height", path)
        if width > 0 and height > 0:
            annotation.size = [int(width), int(height)]
    for i, obj in enumerate(root.iter("object"), 1):
        where = f"{path}: object {i}"
        name = (obj.findtext("name") or "").strip()
        box_node = obj.find("bndbox")
        if not name or box_node is None:
            raise VkelError("object without <name> or <bndbox>", where)
        box = [_number(box_node, tag, where) for tag in ("xmin", "ymin", "xmax", "ymax")]
        if not (box[2] > box[0] and box[3] > box[1]):
            raise VkelError(f"bad box {box} for {name!r}: xmax/ymax must exceed xmin/ymin", where)
        annotation.boxes.setdefault(name, []).append(box)
    return annotation


def find_annotation(xml_dir: str | None, imgid: str) -> Annotation | None:
    if not xml_dir:
        return None
    path = os.path.join(xml_dir, f"{imgid}.xml")
    return read_annotation(path) if os.path.exists(path) else None
