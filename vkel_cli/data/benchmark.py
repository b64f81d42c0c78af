"""`vkel data import fmnerg|gmner`: the benchmark's CoNLL + Pascal-VOC XML -> records.

What is an error of one tweet (dropped under `--on-error skip|ignore`, named FILE:LINE; later tweets keep
their IMGID, so ids never shift): a malformed CoNLL line, an IMGID that is empty, repeated or not a plain
file name, a type outside the hierarchy, an XML file that does not parse or holds a bad box, and an XML
box whose name matches no entity of the tweet. What is counted on stderr: tweets without an XML file
(they have no box), and the run without `--xml-dir` (no boxes at all)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterator

from ..core import hierarchy
from ..fetch import images
from ..core.errors import ErrorPolicy, VkelError
from ..core.records import Record, entity_text, source_name
from .conll import Tweet, bio_spans, read_tweets
from .voc import check_imgid, check_xml_dir, find_annotation

# GMNER's coarse labels in the record vocabulary (lower-case, as FMNERG's).
GMNER_TYPES = {"PER": "person", "LOC": "location", "ORG": "organization", "OTHER": "other", "MISC": "other"}


@dataclass
class BenchmarkCounts:
    tweets: int = 0
    written: int = 0
    without_xml: int = 0
    boxes: int = 0

    def summary(self, dataset: str, xml_dir: str | None) -> str:
        boxes = (f"{self.without_xml} without an XML file (no box), {self.boxes} boxes" if xml_dir
                 else "no --xml-dir: no box imported, every entity is ungroundable")
        return (f"{dataset}: {self.tweets} tweets read, {self.written} written, "
                f"{self.tweets - self.written} skipped; {boxes}")


def gmner_type(label: str, where: str) -> str:
    if label not in GMNER_TYPES:
        raise VkelError(f"type {label!r} is not a GMNER type ({', '.join(GMNER_TYPES)})", where)
    return GMNER_TYPES[label]


def _fmnerg_entities(tweet: Tweet, where: str) -> list[dict]:
    tokens = [row[0] for row in tweet.rows]
    coarse = bio_spans([row[1] for row in tweet.rows], where)
    fine = {(s, e): label for s, e, label in bio_spans([row[2] for row in tweet.rows], where)}
    entities = []
    for start, end, coarse_type in coarse:
        text = entity_text(tokens, start, end)
        if (start, end) not in fine:
            raise VkelError(f"coarse span {text!r} has no fine span", where)
        if coarse_type not in hierarchy.coarse_types():
            raise VkelError(f"{text!r}: coarse type {coarse_type!r} is not in the hierarchy", where)
        if hierarchy.coarse_of(fine[(start, end)]) != coarse_type:
            raise VkelError(f"{text!r}: fine type {fine[(start, end)]!r} is not a fine type of {coarse_type!r}",
                            where)
        entities.append({"text": text, "start": start, "end": end, "coarse": coarse_type,
                         "fine": fine[(start, end)]})
    return entities


def _gmner_entities(tweet: Tweet, where: str) -> list[dict]:
    tokens = [row[0] for row in tweet.rows]
    return [{"text": entity_text(tokens, s, e), "start": s, "end": e, "coarse": gmner_type(label, where),
             "fine": None}
            for s, e, label in bio_spans([row[1] for row in tweet.rows], where)]


def _attach_boxes(tweet: Tweet, entities: list[dict], xml_dir: str | None, where: str,
                  counts: BenchmarkCounts) -> list[int] | None:
    """Give every entity its boxes (by surface string); returns the image size the XML states."""
    try:
        annotation = find_annotation(xml_dir, tweet.imgid)
    except VkelError as err:
        raise VkelError(f"{err.message} (tweet at {where})", err.where or where) from None
    if annotation is None:
        counts.without_xml += xml_dir is not None
        for entity in entities:
            entity["boxes"] = []
        return None
    names = {entity["text"] for entity in entities}
    for name, number in annotation.objects.items():
        if name not in names:
            raise VkelError(f"box named {name!r} matches no entity of the tweet at {where} "
                            f"(entities: {sorted(names)})", f"{annotation.path}: object {number}")
    for entity in entities:
        entity["boxes"] = [list(b) for b in annotation.boxes.get(entity["text"], [])]
    counts.boxes += sum(len(b) for b in annotation.boxes.values())
    return annotation.size


def _import(path: str, columns: int, dataset: str, entities_of: Callable[[Tweet, str], list[dict]],
            xml_dir: str | None, image_root: str | None, policy: ErrorPolicy | None,
            counts: BenchmarkCounts | None) -> Iterator[Record]:
    policy = policy or ErrorPolicy("fail")
    counts = counts if counts is not None else BenchmarkCounts()
    check_xml_dir(xml_dir)
    name = source_name(path)
    seen: set[str] = set()
    for tweet in read_tweets(path, columns):
        counts.tweets += 1
        where = f"{name}:{tweet.line}"
        try:
            if tweet.error is not None:
                raise tweet.error
            check_imgid(tweet.imgid, where)
            if tweet.imgid in seen:
                raise VkelError(f"IMGID {tweet.imgid!r} repeats an earlier tweet", where)
            seen.add(tweet.imgid)
            entities = entities_of(tweet, where)
            size = _attach_boxes(tweet, entities, xml_dir, where, counts)
            image = f"{tweet.imgid}.jpg"
            if size is None and image_root and os.path.exists(os.path.join(image_root, image)):
                size = images.header_size(os.path.join(image_root, image))
        except VkelError as err:
            policy.handle(err)
            continue
        counts.written += 1
        yield {
            "id": tweet.imgid,
            "tokens": [row[0] for row in tweet.rows],
            "image": image,
            "image_size": size,
            "entities": entities,
            "meta": {"dataset": dataset, "source": where},
        }


def import_fmnerg(path: str, xml_dir: str | None = None, image_root: str | None = None,
                  policy: ErrorPolicy | None = None, counts: BenchmarkCounts | None = None) -> Iterator[Record]:
    """Fine-grained CoNLL (`token<TAB>coarse-BIO<TAB>fine-BIO`) + XML boxes."""
    return _import(path, 3, "fmnerg", _fmnerg_entities, xml_dir, image_root, policy, counts)


def import_gmner(path: str, xml_dir: str | None = None, image_root: str | None = None,
                 policy: ErrorPolicy | None = None, counts: BenchmarkCounts | None = None) -> Iterator[Record]:
    """Coarse-only GMNER CoNLL (`token<TAB>BIO`, PER/LOC/ORG/OTHER) + XML boxes; `fine` is null."""
    return _import(path, 2, "gmner", _gmner_entities, xml_dir, image_root, policy, counts)
