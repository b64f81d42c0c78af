"""Training examples for `vkel train`: records -> (image path, prompt, target), prepared once before the
first step, spooled to a file with a line-offset index and read back lazily per batch; the collator loads
images from disk per batch and masks the prompt and image tokens out of the loss.

Preparation is where every per-record problem is found (reported with the record, skipped or fatal per
--on-error): a missing or unreadable image, an image URL that cannot be fetched (fetched once per run into
the run's temporary directory, never per batch), a type outside the hierarchy, and, in a real run, a
prompt longer than --max-length. `vkel train --dry-run` runs the same preparation and prints the examples.

Which examples a record gives: stage 1 always can; stage 2 only when its boxes are known — synthetic
records (`meta.source` "synthetic" from `vkel augment`, "figer" from the importer) have no image
annotation, so under --joint or --no-stage1 they give their stage-1 example only, and nothing under a
plain --stage 2.

Nothing is held for the whole set but the offsets (8 bytes an example): the records stream through once
(stdin works), images are decoded once while preparing and again only in the batch that needs them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import orjson

from ..core import hierarchy, unix
from ..fetch import images
from ..format import prompts
from ..core.errors import ErrorPolicy, VkelError
from ..core.progress import log

IGNORE_INDEX = -100
# meta.source of records whose entities have no image annotation (boxes unknown, not "not in the image").
SYNTHETIC_SOURCES = ("synthetic", "figer")
DRY_RUN_FIELDS = ("id", "stage", "prompt", "target")


@dataclass
class ExampleOptions:
    stage: int = 1  # 1 or 2
    joint: bool = False  # both stages' sequences from every record
    noise: float = 0.1
    seed: int = 0
    top_k: int = prompts.DEFAULT_TOP_K
    knowledge: bool = True
    objects: bool = True
    image_root: str | None = None
    no_stage1: bool = False  # stage 2 end to end: tweet + image -> triples (the paper's LLaVA-direct)

    def __post_init__(self):
        if self.stage not in (1, 2):
            raise VkelError(f"--stage must be 1 or 2, not {self.stage}")
        if self.no_stage1 and self.stage != 2 and not self.joint:
            raise VkelError("--no-stage1 trains stage 2 without stage-1 input: give it with --stage 2")


def example_options(train_opts: Any) -> ExampleOptions:
    """The example options of a TrainOptions (or any object with the same attribute names)."""
    return ExampleOptions(**{name: getattr(train_opts, name) for name in ExampleOptions.__dataclass_fields__
                             if hasattr(train_opts, name)})


def is_synthetic(record: dict[str, Any]) -> bool:
    info = record.get("meta")
    return isinstance(info, dict) and info.get("source") in SYNTHETIC_SOURCES


def source_of(record: dict[str, Any]) -> str:
    """What the counts call a record's source: synthetic, else its `meta.dataset` (fmnerg, gmner), else other."""
    if is_synthetic(record):
        return "synthetic"
    info = record.get("meta")
    dataset = info.get("dataset") if isinstance(info, dict) else None
    return dataset if isinstance(dataset, str) and dataset else "other"


def planned_stages(record: dict[str, Any], opts: ExampleOptions) -> tuple[list[int], bool]:
    """The stages of the examples this record gives, and whether a stage-2 example was withheld
    because its boxes are unknown."""
    stages = [1, 2] if opts.joint else [opts.stage]
    if 2 in stages and is_synthetic(record):
        stages.remove(2)
        if opts.no_stage1 and 1 not in stages:
            stages.append(1)  # LLaVA-augment: the synthetic records teach entities and coarse types
        return stages, True
    return stages, False


def check_types(record: dict[str, Any], where: str) -> None:
    """Every gold type is in the hierarchy (a fine type, when given, under its coarse type)."""
    coarse_types = set(hierarchy.coarse_types())
    for entity in record.get("entities") or []:
        if not isinstance(entity, dict) or not isinstance(entity.get("text"), str):
            raise VkelError("an entity has no `text`", where)
        coarse, fine = entity.get("coarse"), entity.get("fine")
        if coarse not in coarse_types:
            raise VkelError(f"entity {entity['text']!r} has coarse type {coarse!r}, not one of the "
                            f"{len(coarse_types)} coarse types", where)
        if fine and hierarchy.coarse_of(fine) != coarse:
            raise VkelError(f"entity {entity['text']!r} has fine type {fine!r}, not a fine type of {coarse!r}", where)


def record_examples(record: dict[str, Any], opts: ExampleOptions,
                    image: str | None = None) -> Iterator[dict[str, Any]]:
    """The training examples of one record: dicts {id, image, stage, prompt, target}; VkelError if its
    image cannot be found or its types are not in the hierarchy. `image`: a local copy of a URL image."""
    where = f"record {record.get('id')!r}"
    location = image or images.resolve(record.get("image"), opts.image_root, where)
    if location is None:
        raise VkelError("record has no image", where)
    # header only: a regular file in an accepted format, within the pixel cap, and its EXIF-aware frame
    frame = None if images.is_url(location) else images.file_frame(location, where)
    check_types(record, where)
    stages, _withheld = planned_stages(record, opts)
    for stage in sorted(stages):
        if stage == 1:
            prompt, target = prompts.stage1_example(record)
        else:
            if frame is not None:  # targets, objects and prompt in the decoded image's frame (sets image_size)
                images.align(record, frame)
            size = record.get("image_size")
            if size is None:
                raise VkelError("image size unknown (no `image_size`, unreadable image header)", where)
            prompt, target = prompts.stage2_example(record, size, noise=opts.noise, seed=opts.seed, top_k=opts.top_k,
                                                    knowledge=opts.knowledge, objects=opts.objects,
                                                    direct=opts.no_stage1)
        yield {"id": record.get("id"), "image": location, "stage": stage, "prompt": prompt, "target": target}


@dataclass
class ExampleCounts:
    """What preparation made of the records: examples by stage and source, and what it left out."""

    records: int = 0
    records_skipped: int = 0  # per-record errors (--on-error skip|ignore)
    examples: Counter = field(default_factory=Counter)  # (stage, source) -> n
    coarse_only: Counter = field(default_factory=Counter)  # source -> stage-2 examples with a coarse-only clause
    withheld: Counter = field(default_factory=Counter)  # source -> stage-2 examples not made (boxes unknown)
    targets_cut: int = 0  # prompt + target longer than --max-length: the target's tail is cut
    lengths_checked: bool = False

    @property
    def total(self) -> int:
        return sum(self.examples.values())

    def add(self, example: dict[str, Any], source: str) -> None:
        self.examples[(example["stage"], source)] += 1
        if example["stage"] == 2 and _has_coarse_only_clause(example["target"]):
            self.coarse_only[source] += 1

    def as_dict(self) -> dict[str, Any]:
        by_stage: dict[str, dict[str, int]] = {}
        for (stage, source), n in sorted(self.examples.items()):
            by_stage.setdefault(str(stage), {})[source] = n
        return {"records": self.records, "records_skipped": self.records_skipped, "examples": self.total,
                "by_stage": by_stage, "stage2_coarse_only": dict(sorted(self.coarse_only.items())),
                "stage2_withheld_boxes_unknown": dict(sorted(self.withheld.items())),
                "targets_cut": self.targets_cut if self.lengths_checked else None}

    def summary(self) -> str:
        parts = []
        for stage in sorted({s for s, _ in self.examples}):
            sources = " + ".join(f"{n} {src}" for (s, src), n in sorted(self.examples.items()) if s == stage)
            parts.append(f"stage {stage}: {sources}")
        text = f"examples: {self.total} ({'; '.join(parts) or 'none'}) from {self.records} records"
        text += f", {self.records_skipped} skipped for errors"
        if self.coarse_only:
            text += "; stage-2 targets without a fine type (coarse-only clauses): " + ", ".join(
                f"{n} {src}" for src, n in sorted(self.coarse_only.items()))
        if self.withheld:
            text += "; no stage-2 example (boxes unknown): " + ", ".join(
                f"{n} {src}" for src, n in sorted(self.withheld.items()))
        if self.lengths_checked:
            text += f"; {self.targets_cut} targets cut at --max-length"
        return text


def _has_coarse_only_clause(target: str) -> bool:
    return any(" and a(an) " not in clause for clause in target.split("; ") if clause != "no entity found.")


class ImageFetcher:
    """Images given as URLs, fetched once per run into `directory` (the same URL in several records is
    fetched once too); local paths pass through."""

    def __init__(self, directory: str):
        self.directory = directory
        self.fetched: dict[str, str] = {}

    def local(self, record: dict[str, Any], image_root: str | None) -> str | None:
        location = images.resolve(record.get("image"), image_root)
        if location is None or not images.is_url(location):
            return None
        if location not in self.fetched:
            from ..fetch import http

            data = http.fetch_bytes(location)  # HTTPFailure is a VkelError
            path = os.path.join(self.directory, hashlib.sha256(location.encode()).hexdigest()[:32])
            with open(path, "wb") as handle:
                handle.write(data)
            self.fetched[location] = path
        return self.fetched[location]


# check(example, picture) raises VkelError when the example cannot be trained on; returns True when the
# example's target will be cut at --max-length.
Check = Callable[[dict[str, Any], Any], bool]


def prepare_examples(pairs: Iterable, opts: ExampleOptions, policy: ErrorPolicy, counts: ExampleCounts,
                     fetcher: ImageFetcher, check: Check | None = None) -> Iterator[dict[str, Any]]:
    """The examples of a record stream, each record's image fetched (URL) and decoded once; a record
    that fails gives no example and goes to `policy`."""
    counts.lengths_checked = check is not None
    for record, _where in pairs:
        counts.records += 1
        cut: list[bool] = []
        try:
            where = f"record {record.get('id')!r}"
            try:
                local = fetcher.local(record, opts.image_root)
            except VkelError as err:
                raise err.at(where)
            examples = list(record_examples(record, opts, image=local))
            if examples:
                picture = images.load({"id": record.get("id"), "image": examples[0]["image"]})
                cut = [check(example, picture) for example in examples] if check else []
        except VkelError as err:
            counts.records_skipped += 1
            policy.handle(err)
            continue
        source = source_of(record)
        if planned_stages(record, opts)[1]:
            counts.withheld[source] += 1
        counts.targets_cut += sum(cut)
        for example in examples:
            counts.add(example, source)
            yield example


class LengthCheck:
    """Prompt lengths in tokens, image tokens included, as the collator will build them: a prompt that
    does not fit under --max-length is an error of its record, found before the first step."""

    def __init__(self, backbone, processor, max_length: int):
        self.backbone = backbone
        self.processor = processor
        self.max_length = max_length

    def __call__(self, example: dict[str, Any], picture) -> bool:
        prompt_text = self.backbone.prompt_text(self.processor, example["prompt"])
        n_prompt = len(self.processor(text=[prompt_text], images=[picture])["input_ids"][0])
        if n_prompt >= self.max_length:
            raise VkelError(f"the stage-{example['stage']} prompt is {n_prompt} tokens (image tokens included), "
                            f"not under --max-length {self.max_length}", f"record {example['id']!r}")
        target_text = self.backbone.target_text(self.processor, example["target"])
        n_target = len(self.processor.tokenizer(target_text, add_special_tokens=False)["input_ids"])
        return n_prompt + n_target > self.max_length


def dry_run(pairs: Iterable, opts: ExampleOptions, policy: ErrorPolicy, writer) -> ExampleCounts:
    """Write the examples a run would train on ({id, stage, prompt, target}) with `writer`; no model."""
    counts = ExampleCounts()
    directory = tempfile.mkdtemp(prefix="vkel-dry-run-")
    try:
        for example in prepare_examples(pairs, opts, policy, counts, ImageFetcher(directory)):
            writer.write({key: example[key] for key in DRY_RUN_FIELDS})
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    log(counts.summary())
    log("dry run: prompt lengths were not checked against --max-length (that needs the model's processor)")
    return counts


class SpooledExamples:
    """A map-style dataset over examples spooled to a JSONL file in a per-run temporary directory (which
    also holds the images fetched from URLs); items are read with pread by offset, so DataLoader workers
    (forked or spawned) share nothing but the path."""

    def __init__(self, path: str, offsets: list[int], end: int, counts: ExampleCounts | None = None,
                 directory: str | None = None):
        self.path = path
        self.offsets = offsets
        self.end = end
        self.counts = counts or ExampleCounts()
        self.directory = directory
        self._fd: int | None = None
        self._pid: int | None = None

    @classmethod
    def build(cls, pairs: Iterable, opts: ExampleOptions, policy: ErrorPolicy, directory: str | None = None,
              check: Check | None = None):
        """Prepare and spool the examples of `pairs`; `check` (a LengthCheck) runs on each; the counts
        are logged and kept as `.counts`."""
        run_dir = tempfile.mkdtemp(prefix="vkel-train-", dir=directory)
        unix.register_temporary(run_dir)  # removed on SIGINT/SIGTERM too, even when the exit is forced
        path = os.path.join(run_dir, "examples.jsonl")
        counts = ExampleCounts()
        offsets: list[int] = []
        position = 0
        try:
            with open(path, "wb") as handle:
                for example in prepare_examples(pairs, opts, policy, counts, ImageFetcher(run_dir), check):
                    line = orjson.dumps(example) + b"\n"
                    handle.write(line)
                    offsets.append(position)
                    position += len(line)
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            unix.forget_temporary(run_dir)
            raise
        log(counts.summary())
        return cls(path, offsets, position, counts, run_dir)

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        start = self.offsets[index]
        stop = self.offsets[index + 1] if index + 1 < len(self.offsets) else self.end
        return orjson.loads(os.pread(self._fd, stop - start, start))

    def __getstate__(self):
        return {**self.__dict__, "_fd": None, "_pid": None}

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None
        if self.directory and os.path.isdir(self.directory):
            shutil.rmtree(self.directory, ignore_errors=True)
            unix.forget_temporary(self.directory)
        elif os.path.exists(self.path):
            os.unlink(self.path)


class Collator:
    """Examples -> a padded batch: chat-formatted prompt + target through the processor (images loaded
    now), labels = input ids with padding, prompt and image tokens set to -100."""

    def __init__(self, backbone, processor, max_length: int = 2048):
        self.backbone = backbone
        self.processor = processor
        self.max_length = max_length
        self.tokenizer = processor.tokenizer
        self.image_token = processor.image_token
        self.image_token_id = backbone.image_token_id(processor)

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        pictures = [images.load({"id": ex["id"], "image": ex["image"]}) for ex in examples]
        prompt_texts = [self.backbone.prompt_text(self.processor, ex["prompt"]) for ex in examples]
        full_texts = [p + self.backbone.target_text(self.processor, ex["target"])
                      for p, ex in zip(prompt_texts, examples)]
        batch = self.processor(text=full_texts, images=pictures, return_tensors="pt", padding=True)
        ids = batch["input_ids"]
        if self.tokenizer.padding_side != "right":
            raise VkelError("the training collator needs right padding")
        labels = ids.clone()
        labels[batch["attention_mask"] == 0] = IGNORE_INDEX
        for row, prompt in enumerate(prompt_texts):
            n_prompt = self._prompt_length(ids[row], prompt)
            if n_prompt >= self.max_length:
                raise VkelError(f"the prompt is {n_prompt} tokens, not under --max-length {self.max_length}",
                                f"record {examples[row]['id']!r}")
            labels[row, :n_prompt] = IGNORE_INDEX
        batch["labels"] = labels
        if ids.shape[1] > self.max_length:  # cut target tails only (prompts were checked to fit)
            for key, value in list(batch.items()):
                if torch.is_tensor(value) and value.dim() == 2 and value.shape[1] == ids.shape[1]:
                    batch[key] = value[:, : self.max_length]
        return dict(batch)

    def _prompt_length(self, full_ids, prompt_text: str) -> int:
        """Tokens of the prompt within the full row: the prompt tokenized text-only with its image
        placeholder expanded as the processor expanded it; checked against the row (a tokenizer that
        merges across the prompt/target boundary falls back to the common prefix)."""
        n_image = int((full_ids == self.image_token_id).sum())
        n_placeholders = prompt_text.count(self.image_token)
        if n_placeholders:
            per_image = n_image // n_placeholders
            prompt_text = prompt_text.replace(self.image_token, self.image_token * per_image)
        prompt_ids = self.tokenizer(prompt_text)["input_ids"]
        row = full_ids.tolist()
        n = len(prompt_ids)
        if row[:n] == prompt_ids:
            return n
        common = 0
        for a, b in zip(row, prompt_ids):
            if a != b:
                break
            common += 1
        return common
