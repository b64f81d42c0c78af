"""One card per tweet: its text, its image (embedded, linked, or a frame of its size when the file is
not there) with gold and predicted boxes drawn over it, and its entities marked by error kind.

Boxes are absolutely positioned divs placed in percentages of the record's pixel frame (`image_size`,
else the file's EXIF-aware size), so they land on the same pixels however the image is scaled. Every
text that comes from a record is escaped here, at the one place it becomes HTML."""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from html import escape
from typing import Any

from .align import KIND_LABELS, Item

GOLD_COLOUR = "#00ff00"
PRED_COLOUR = "#ff00ff"


@dataclass
class ImageOptions:
    image_root: str | None = None
    link: bool = False  # link the file (relative to the report) instead of embedding it
    report_dir: str = "."
    max_width: int = 480  # display width of a card's image, in CSS pixels
    quality: int = 80


@dataclass
class Picture:
    src: str | None  # data URL or relative link; None: no image, draw the frame only
    size: list[float] | None  # the record's pixel frame
    note: str = ""


def picture(record: dict[str, Any], opts: ImageOptions) -> Picture:
    """The image to show and the frame its boxes are in; a missing or unreadable image is a note, never
    an error (the boxes still show against an empty frame of the record's size)."""
    from ..fetch import images

    size = images.size_of(record, opts.image_root)
    if not record.get("image"):
        return Picture(None, size, "no image")
    try:
        location = images.resolve(record["image"], opts.image_root)
        if opts.link:
            if images.is_url(location):
                return Picture(location, size)
            if not os.path.isfile(location):
                return Picture(None, size, f"image not found: {record['image']}")
            return Picture(os.path.relpath(os.path.abspath(location), os.path.abspath(opts.report_dir)), size)
        image = images.load(record, opts.image_root)
    except Exception as err:  # noqa: BLE001 - any unreadable image becomes a note on its card
        message = getattr(err, "message", None) or str(err)
        return Picture(None, size, f"image not shown: {message}")
    size = size or list(image.size)
    width = min(opts.max_width, image.width)
    thumb = image.resize((width, max(1, round(image.height * width / image.width))))
    buffer = io.BytesIO()
    thumb.save(buffer, "JPEG", quality=opts.quality)
    return Picture("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), size)


def _type(entity: dict[str, Any]) -> str:
    coarse, fine = entity.get("coarse") or "?", entity.get("fine")
    return f"{coarse}/{fine}" if fine else str(coarse)


def _box_div(box, size, cls: str, label: str) -> str:
    w, h = size
    x1, y1, x2, y2 = (float(v) for v in box)
    style = (f"left:{100 * x1 / w:.4f}%;top:{100 * y1 / h:.4f}%;"
             f"width:{100 * (x2 - x1) / w:.4f}%;height:{100 * (y2 - y1) / h:.4f}%")
    return f'<div class="box {cls}" style="{style}"><span>{escape(label)}</span></div>'


def _frame(record: dict[str, Any], items: list[Item], pic: Picture, max_width: int) -> str:
    if not pic.size:
        note = escape(pic.note or "image size unknown")
        return f'<div class="noframe">{note}; boxes cannot be placed</div>'
    w, h = (float(v) for v in pic.size)
    width = max_width  # every card the same width: small images scale up, so their boxes stay legible
    style = f"width:{width:.0f}px;height:{h * width / w:.0f}px"
    parts = [f'<div class="frame" style="{style}">']
    if pic.src:
        parts.append(f'<img src="{escape(pic.src)}" alt="">')
    else:
        parts.append(f'<div class="missing">{escape(pic.note)}</div>')
    for item in items:
        if item.gold is not None:
            for box in item.gold.get("boxes") or []:
                parts.append(_box_div(box, (w, h), f"gold k-{item.kind}", item.gold.get("text", "")))
    for item in items:
        if item.pred is not None and item.pred.get("box") is not None and not item.pred.get("box_error"):
            parts.append(_box_div(item.pred["box"], (w, h), f"pred k-{item.kind}", item.pred.get("text", "")))
    parts.append("</div>")
    return "".join(parts)


def _item_row(item: Item) -> str:
    label = KIND_LABELS[item.kind] + ("" if item.box_ok else " (box too)") * (item.kind == "wrong_type")
    gold = (f'{escape(item.gold.get("text", ""))} <i>{escape(_type(item.gold))}</i> '
            f'{len(item.gold.get("boxes") or [])} box(es)') if item.gold is not None else "-"
    pred = "-"
    if item.pred is not None:
        box = item.pred.get("box")
        where = ("box error: " + str(item.pred["box_error"])) if item.pred.get("box_error") else (
            "no box" if box is None else "box")
        pred = f'{escape(item.pred.get("text", ""))} <i>{escape(_type(item.pred))}</i> {escape(where)}'
    iou = "" if item.iou is None else f"{item.iou:.2f}"
    return (f'<tr class="item k-{item.kind}" data-kind="{item.kind}" data-type="{escape(item.coarse)}">'
            f'<td><b class="badge k-{item.kind}">{escape(label)}</b></td><td>{gold}</td><td>{pred}</td>'
            f'<td>{iou}</td></tr>')


def _text(record: dict[str, Any]) -> str:
    tokens = record.get("tokens") or []
    marks = {}
    for entity in record.get("entities") or []:
        if isinstance(entity.get("start"), int) and isinstance(entity.get("end"), int):
            marks[entity["start"]] = entity["end"]
    out, i = [], 0
    while i < len(tokens):
        end = marks.get(i)
        if end:
            out.append("<mark>" + escape(" ".join(map(str, tokens[i:end]))) + "</mark>")
            i = end
        else:
            out.append(escape(str(tokens[i])))
            i += 1
    return " ".join(out)


def card(record: dict[str, Any], items: list[Item], pic: Picture, max_width: int) -> str:
    keys = " ".join(sorted({f"{item.kind}:{item.coarse}" for item in items}))
    rows = "".join(_item_row(item) for item in items) or '<tr><td colspan="4">no entity, no prediction</td></tr>'
    return (f'<section class="card" data-items="{escape(keys)}">'
            f'<h3>{escape(str(record.get("id")))}</h3><p class="tweet">{_text(record)}</p>'
            f'{_frame(record, items, pic, max_width)}'
            f'<table class="items"><tr><th>kind</th><th>gold</th><th>predicted</th><th>IoU</th></tr>{rows}</table>'
            f'</section>\n')
