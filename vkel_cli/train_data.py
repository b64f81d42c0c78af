"""Training examples for `vkel train`: records -> (image path, prompt, target) spooled to a file with a
line-offset index, read back lazily per batch; the collator loads images from disk per batch and masks
the prompt and image tokens out of the loss.

Nothing is held for the whole set but the offsets (8 bytes an example): the records stream through once
(stdin works), images are decoded only in the batch that needs them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import orjson

from . import images, prompts
from .errors import ErrorPolicy, VkelError

IGNORE_INDEX = -100


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


def record_examples(record: dict[str, Any], opts: ExampleOptions) -> Iterator[dict[str, Any]]:
    """The training examples of one record; VkelError if its image cannot be found."""
    where = f"record {record.get('id')!r}"
    location = images.resolve(record.get("image"), opts.image_root)
    if location is None:
        raise VkelError("record has no image", where)
    if not images.is_url(location) and not os.path.isfile(location):
        raise VkelError(f"image not found: {location}", where)
    stages = (1, 2) if opts.joint else (opts.stage,)
    for stage in stages:
        if stage == 1:
            prompt, target = prompts.stage1_example(record)
        else:
            size = images.size_of(record, opts.image_root)
            if size is None:
                raise VkelError("image size unknown (no `image_size`, unreadable image header)", where)
            prompt, target = prompts.stage2_example(record, size, noise=opts.noise, seed=opts.seed, top_k=opts.top_k,
                                                    knowledge=opts.knowledge, objects=opts.objects)
        yield {"id": record.get("id"), "image": location, "stage": stage, "prompt": prompt, "target": target}


class SpooledExamples:
    """A map-style dataset over examples spooled to a JSONL file; items are read with pread by offset,
    so DataLoader workers (forked or spawned) share nothing but the path."""

    def __init__(self, path: str, offsets: list[int], end: int):
        self.path = path
        self.offsets = offsets
        self.end = end
        self._fd: int | None = None
        self._pid: int | None = None

    @classmethod
    def build(cls, pairs: Iterable, opts: ExampleOptions, policy: ErrorPolicy, directory: str | None = None):
        fd, path = tempfile.mkstemp(prefix=".vkel-examples-", suffix=".jsonl", dir=directory)
        offsets: list[int] = []
        position = 0
        with os.fdopen(fd, "wb") as handle:
            for record, _where in pairs:
                try:
                    examples = list(record_examples(record, opts))
                except VkelError as err:
                    policy.handle(err)
                    continue
                for example in examples:
                    line = orjson.dumps(example) + b"\n"
                    handle.write(line)
                    offsets.append(position)
                    position += len(line)
        return cls(path, offsets, position)

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
        if os.path.exists(self.path):
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
