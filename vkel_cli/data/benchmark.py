"""`vkel data import fmnerg|gmner`: the benchmark's CoNLL + Pascal-VOC XML -> records."""

from __future__ import annotations

import os
from typing import Iterator

from .. import images
from ..errors import VkelError
from ..records import Record, entity_text, source_name
from .conll import bio_spans, read_tweets
from .voc import find_annotation

# GMNER's coarse labels in the record vocabulary (lower-case, as FMNERG's).
GMNER_TYPES = {"PER": "person", "LOC": "location", "ORG": "organization", "OTHER": "other", "MISC": "other"}


def _record(tweet, entities: list[dict], xml_dir: str | None, image_root: str | None, dataset: str,
            name: str) -> Record:
    annotation = find_annotation(xml_dir, tweet.imgid)
    for entity in entities:
        entity["boxes"] = [list(b) for b in annotation.boxes.get(entity["text"], [])] if annotation else []
    image = f"{tweet.imgid}.jpg"
    size = annotation.size if annotation and annotation.size else None
    if size is None and image_root and os.path.exists(os.path.join(image_root, image)):
        size = images.header_size(os.path.join(image_root, image))
    return {
        "id": tweet.imgid,
        "tokens": [row[0] for row in tweet.rows],
        "image": image,
        "image_size": size,
        "entities": entities,
        "meta": {"dataset": dataset, "source": f"{name}:{tweet.line}"},
    }


def import_fmnerg(path: str, xml_dir: str | None = None, image_root: str | None = None) -> Iterator[Record]:
    """Fine-grained CoNLL (`token<TAB>coarse-BIO<TAB>fine-BIO`) + XML boxes."""
    name = source_name(path)
    for tweet in read_tweets(path, columns=3):
        where = f"{name}:{tweet.line}"
        tokens = [row[0] for row in tweet.rows]
        coarse = bio_spans([row[1] for row in tweet.rows], where)
        fine = {(s, e): label for s, e, label in bio_spans([row[2] for row in tweet.rows], where)}
        entities = []
        for start, end, coarse_type in coarse:
            if (start, end) not in fine:
                raise VkelError(f"coarse span {entity_text(tokens, start, end)!r} has no fine span", where)
            entities.append({"text": entity_text(tokens, start, end), "start": start, "end": end,
                             "coarse": coarse_type, "fine": fine[(start, end)]})
        yield _record(tweet, entities, xml_dir, image_root, "fmnerg", name)


def import_gmner(path: str, xml_dir: str | None = None, image_root: str | None = None) -> Iterator[Record]:
    """Coarse-only GMNER CoNLL (`token<TAB>BIO`, PER/LOC/ORG/OTHER) + XML boxes; `fine` is null."""
    name = source_name(path)
    for tweet in read_tweets(path, columns=2):
        where = f"{name}:{tweet.line}"
        tokens = [row[0] for row in tweet.rows]
        entities = [
            {"text": entity_text(tokens, s, e), "start": s, "end": e,
             "coarse": GMNER_TYPES.get(label, label.lower()), "fine": None}
            for s, e, label in bio_spans([row[1] for row in tweet.rows], where)
        ]
        yield _record(tweet, entities, xml_dir, image_root, "gmner", name)
