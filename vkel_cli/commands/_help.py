"""What `vkel --help` and the man pages say beyond each option's help: the command order, the one-line
summaries and the examples. One source for both: scripts/gen_docs.py builds the man pages from the same
click tree that prints `--help`, after PipelineGroup has attached summaries and examples to it.

Only typer and the standard library here: `vkel --help` must stay fast.
"""

from __future__ import annotations

import re

from typer.core import TyperGroup

from . import COMMANDS

# Examples per command path ("score", "data import fmnerg"): (what it does, the command line). Every
# command must have some; tests/test_help.py parses each line against the app.
EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "": [
        ("Import the benchmark, then score a finished run's stage-2 predictions",
         "vkel data import fmnerg test.txt --xml-dir xml/ --image-root images/ > test.jsonl"),
        ("", "vkel score out/test.stage2.jsonl"),
        ("Show a command's options", "vkel predict --help"),
    ],
    "data": [
        ("Import the FMNERG test split and count it",
         "vkel data import fmnerg test.txt --xml-dir xml/ --image-root images/ > test.jsonl"),
        ("", "vkel data stats test.jsonl"),
    ],
    "data import": [
        ("Import the FMNERG benchmark with its boxes",
         "vkel data import fmnerg train.txt --xml-dir xml/ --image-root images/ > train.jsonl"),
        ("Import text-only FIGER sentences for vkel augment", "vkel data import figer figer.label > figer.jsonl"),
    ],
    "data import fmnerg": [
        ("Records with entities, fine types and pixel boxes",
         "vkel data import fmnerg train.txt --xml-dir xml/ --image-root images/ > train.jsonl"),
    ],
    "data import gmner": [
        ("Twitter-GMNER (coarse types only)",
         "vkel data import gmner test.txt --xml-dir xml/ --image-root images/ > gmner-test.jsonl"),
    ],
    "data import vkel-output": [
        ("Parse the original LLaVA code's stage-2 generations and score them",
         "vkel data import vkel-output generations.jsonl --gold test.jsonl --stage 2 > preds.jsonl"),
        ("", "vkel score preds.jsonl"),
    ],
    "data import figer": [
        ("Text-only sentences with mapped types, then images for them",
         "vkel data import figer figer.label | vkel augment --retriever google --image-dir images/ > synthetic.jsonl"),
    ],
    "data import e2e-gmner": [
        ("Score E2E-GMNER's predictions with vkel's metric",
         "vkel data import e2e-gmner test_pred_best.jsonl --gold gmner-test.jsonl > e2e.jsonl"),
        ("", "vkel score --level coarse e2e.jsonl"),
    ],
    "data import riveg": [
        ("Score RiVEG's predictions with vkel's metric",
         "vkel data import riveg riveg-test.txt --gold gmner-test.jsonl > riveg.jsonl"),
        ("", "vkel score --level coarse riveg.jsonl"),
    ],
    "data stats": [
        ("Tweets, entities, groundable entities, boxes and per-type counts (Table II/III)",
         "vkel data stats train.jsonl dev.jsonl test.jsonl"),
    ],
    "augment": [
        ("Retrieve images with Google Custom Search; keep 80% of the training set's size",
         "vkel augment figer.jsonl --image-dir images/ --ratio 0.8 --reference-size 7000 -o synthetic.jsonl"),
        ("Offline, from a local image index",
         "vkel augment figer.jsonl --retriever local --index pool/index.json --image-dir images/ > synthetic.jsonl"),
    ],
    "models": [
        ("A tiny LLaVA to try train and predict on a laptop", "vkel models tiny tiny-llava --backbone llava"),
    ],
    "models tiny": [
        ("A tiny LLaVA for vkel train/predict --model", "vkel models tiny tiny-llava --backbone llava"),
        ("A tiny text LLM for vkel knowledge --llm NAME=local:DIR", "vkel models tiny tiny-llm --backbone llama --seed 1"),
    ],
    "models merge": [
        ("Fold a trained stage-2 adapter into its base model (base named by the run)",
         "vkel models merge runs/stage2 models/vkel-stage2"),
        ("The same on another copy of the base, in bf16", "vkel models merge runs/stage2 models/vkel-stage2 "
         "--model /models/llava-1.5-7b-hf --dtype bf16"),
    ],
    "train": [
        ("Stage 1 on the benchmark plus synthetic pairs",
         "vkel train --stage 1 --model llava-hf/llava-1.5-7b-hf --output-dir runs/stage1 --image-root images/ "
         "train+synthetic.jsonl"),
        ("Stage 2, choosing the adapter on the dev set",
         "vkel train --stage 2 --model llava-hf/llava-1.5-7b-hf --output-dir runs/stage2 --image-root images/ "
         "--eval-file dev.vk.jsonl train.vk.jsonl"),
        ("Check the prompts and targets first (no model, no GPU)",
         "vkel train --stage 2 --dry-run train.vk.jsonl > examples.jsonl"),
    ],
    "predict": [
        ("Stage 1: entities and coarse types",
         "vkel predict --stage 1 --model llava-hf/llava-1.5-7b-hf --adapter runs/stage1 --image-root images/ "
         "test.objects.jsonl > test.stage1.jsonl"),
        ("Stage 2 with an OpenAI-compatible server (vLLM) serving the adapter",
         "vkel predict --stage 2 --engine openai --base-url http://localhost:8000/v1 --served-model stage2 "
         "--image-root images/ test.vk.jsonl > test.stage2.jsonl"),
    ],
    "detect": [
        ("RTMDet-tiny with its released weights, top 5 objects",
         "vkel detect --top-k 5 --image-root images/ test.jsonl -o test.objects.jsonl"),
        ("A larger RTMDet on the GPU",
         "vkel detect --config rtmdet_l_8xb32-300e_coco --device cuda --image-root images/ test.jsonl "
         "-o test.objects.jsonl"),
    ],
    "knowledge": [
        ("Every LLM in the config describes each stage-1 entity, then a voter reconciles them",
         "vkel knowledge --llm-config llm.toml --from stage1 test.stage1.jsonl | "
         "vkel vote --llm-config llm.toml --voter gpt > test.vk.jsonl"),
        ("A local model (vkel models tiny --backbone llama) as one of the LLMs",
         "vkel knowledge --llm small=local:models/llm --from gold train.jsonl > train.knowledge.jsonl"),
    ],
    "vote": [
        ("An LLM voter", "vkel vote --llm-config llm.toml --voter gpt train.knowledge.jsonl > train.vk.jsonl"),
        ("Offline majority vote (no LLM)", "vkel vote --method majority train.knowledge.jsonl > train.vk.jsonl"),
    ],
    "score": [
        ("Records carrying gold `entities` and `predictions`", "vkel score test.stage2.jsonl"),
        ("Predictions joined to a gold file by id, IoU sweep, per-type rows",
         "vkel score --gold test.jsonl --iou 0.1,0.3,0.5,0.7,0.9,1.0 --by-type --ignore-case preds.jsonl"),
        ("Stage-1 output (coarse types, FMNER only)", "vkel score --pred-field stage1 test.stage1.jsonl"),
    ],
    "report": [
        ("An error-analysis page of a stage-2 run, images embedded",
         "vkel report --image-root images/ -o report.html test.stage2.jsonl"),
        ("Images linked instead of embedded: a smaller page that needs the images beside it",
         "vkel report --link-images --image-root images/ -o out/report.html out/test.stage2.jsonl"),
    ],
    "ceiling": [
        ("How often a detected object could ground the entity (Table I)",
         "vkel ceiling --markdown ceiling.md test.objects.jsonl"),
        ("Other K values and IoU thresholds", "vkel ceiling -k 1,5,10 --iou 0.5,0.7 test.objects.jsonl"),
    ],
    "export": [
        ("Stage-1 training data for LLaMA-Factory (ShareGPT + dataset_info.json)",
         "vkel export --format sharegpt --stage 1 --output-dir lf-data --image-root images/ train.jsonl"),
        ("Stage 2 end to end for ms-swift, same options as vkel train",
         "vkel export --format swift --stage 2 --no-stage1 --output-dir swift-data --image-root images/ train.jsonl"),
    ],
    "env": [
        ("For a bug report", "vkel env"),
        ("Without importing torch, as JSON", "vkel env --no-device --json"),
    ],
}

_SENTENCE = re.compile(r"^(.+?[.!?])(?=\s|$)", re.S)


def first_sentence(text: str | None) -> str:
    """The summary line: the help's first sentence, on one line (so `--help` never cuts it with '...')."""
    flat = " ".join((text or "").split())
    found = _SENTENCE.match(flat)
    return (found.group(1) if found else flat).rstrip(".")


def examples_epilog(examples: list[tuple[str, str]]) -> str:
    """The `Examples:` section of --help; \\b keeps click from re-wrapping the command lines."""
    lines = ["Examples:", "", "\b"]
    for what, command in examples:
        if what:
            lines.append(f"{what}:")
        lines.append(f"  {command}")
    return "\n".join(lines)


def walk(command, path: tuple[str, ...] = ()):
    """(path, command) for every node of a click tree, depth first, in listed order."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        if not getattr(sub, "hidden", False):
            yield from walk(sub, path + (name,))


class PipelineGroup(TyperGroup):
    """The root `vkel` group: commands listed in COMMANDS order (pipeline order; typer would put command
    groups after single commands), each with its one-line summary and its examples attached."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        order = {name: index for index, (name, _, _) in enumerate(COMMANDS)}
        self.commands = dict(sorted(self.commands.items(), key=lambda item: order.get(item[0], len(order))))
        for path, command in walk(self):
            if path and hasattr(command, "commands"):  # `data`: import before stats (typer puts groups last)
                command.commands = dict(sorted(command.commands.items(), key=lambda item: not hasattr(item[1], "commands")))
            if not command.short_help:
                command.short_help = first_sentence(command.help)
            found = EXAMPLES.get(" ".join(path))
            if found and not command.epilog:
                command.epilog = examples_epilog(found)
