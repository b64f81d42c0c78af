"""`vkel export`: the training examples of `vkel train`, written for other trainers.

The prompts and targets come from `train_data.prepare_examples` (the one code path `vkel train` and
`vkel train --dry-run` use), so an export can never drift from what vkel itself trains on. Formats:
- llava:    LLaVA's conversation JSON, one array: [{"id", "image", "conversations": [{"from": "human",
            "value": "<image>\\n…"}, {"from": "gpt", "value": …}]}] (LLaVA's --data_path, --image_folder /).
- sharegpt: LLaMA-Factory's ShareGPT layout in OpenAI-style messages, JSONL: {"messages": [{"role":
            "user", …}, {"role": "assistant", …}], "images": [path]}, plus its entry in the folder's
            dataset_info.json (formatting sharegpt, columns messages/images, role/content tags).
- swift:    ms-swift's standard JSONL: {"messages": [...], "images": [path]} (`swift sft --dataset FILE`).
Image paths are absolute (each trainer joins them with its image folder, which leaves absolute paths
alone); images given as URLs are fetched once into DIR/images/. Beside each file, NAME.index.jsonl
lists the example ids ({id, stage}) line by line, in the file's order: the order generations come back in.
Everything streams: examples are written as they are made, the LLaVA array included.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

import orjson

from ..core.errors import ErrorPolicy, VkelError
from ..core.progress import log
from ..core.records import atomic_path
from .examples import ExampleCounts, ExampleOptions, ImageFetcher, prepare_examples

FORMATS = ("llava", "sharegpt", "swift")
IMAGE_TOKEN = "<image>"


def user_text(prompt: str) -> str:
    """The user turn: the image first, then the prompt, as vkel's chat templates place them."""
    return f"{IMAGE_TOKEN}\n{prompt}"


def llava_item(example: dict[str, Any], index: int) -> dict[str, Any]:
    return {"id": f"{example['id']}-stage{example['stage']}-{index}", "image": example["image"],
            "conversations": [{"from": "human", "value": user_text(example["prompt"])},
                              {"from": "gpt", "value": example["target"]}]}


def messages_item(example: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": user_text(example["prompt"])},
                         {"role": "assistant", "content": example["target"]}],
            "images": [example["image"]]}


def dataset_info_entry(file_name: str) -> dict[str, Any]:
    """LLaMA-Factory's dataset_info.json entry for a ShareGPT file with OpenAI-style messages and images."""
    return {"file_name": file_name, "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}


def data_file(fmt: str, output_dir: str, name: str) -> str:
    return os.path.join(output_dir, f"{name}.json" if fmt == "llava" else f"{name}.jsonl")


def _update_dataset_info(output_dir: str, name: str, file_name: str) -> None:
    """Add (or replace) this dataset's entry, keeping the other entries of an existing dataset_info.json."""
    path = os.path.join(output_dir, "dataset_info.json")
    info: dict[str, Any] = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as handle:
                info = json.load(handle)
        except (OSError, ValueError) as err:
            raise VkelError(f"cannot update: {err}", path) from None
        if not isinstance(info, dict):
            raise VkelError("not a JSON object: cannot add an entry", path)
    info[name] = dataset_info_entry(file_name)
    with atomic_path(path, "w") as handle:
        json.dump(info, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def export(pairs: Iterable, opts: ExampleOptions, fmt: str, output_dir: str, name: str,
           policy: ErrorPolicy | None = None) -> ExampleCounts:
    """Write the examples of (record, location) `pairs` under `output_dir`; returns what was made."""
    if fmt not in FORMATS:
        raise VkelError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    policy = policy or ErrorPolicy("fail")
    os.makedirs(output_dir, exist_ok=True)
    counts = ExampleCounts()
    fetcher = ImageFetcher(os.path.join(output_dir, "images"))
    os.makedirs(fetcher.directory, exist_ok=True)
    path = data_file(fmt, output_dir, name)
    with atomic_path(path, "wb") as out, atomic_path(os.path.join(output_dir, f"{name}.index.jsonl"), "wb") as index:
        if fmt == "llava":
            out.write(b"[")
        for n, example in enumerate(prepare_examples(pairs, opts, policy, counts, fetcher)):
            example = {**example, "image": os.path.abspath(example["image"])}
            if fmt == "llava":
                out.write((b",\n" if n else b"\n") + orjson.dumps(llava_item(example, n)))
            else:
                out.write(orjson.dumps(messages_item(example)) + b"\n")
            index.write(orjson.dumps({"id": example["id"], "stage": example["stage"]}) + b"\n")
        if fmt == "llava":
            out.write(b"\n]\n")
    if fmt == "sharegpt":
        _update_dataset_info(output_dir, name, os.path.basename(path))
    if not os.listdir(fetcher.directory):
        os.rmdir(fetcher.directory)
    log(counts.summary())
    log(f"{fmt}: {counts.total} example(s) in {path}")
    return counts
