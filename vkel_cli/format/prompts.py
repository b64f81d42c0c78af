"""The input prompts of VKEL's two stages, the training targets built from gold entities (the sequence
formats themselves are in sequences.py), and stage-2 training noise.

Prompts are plain text without the image: the backbone wraps them in its chat template with the image
(backbones.py), so the same prompt goes to LLaVA, Qwen2.5-VL or an OpenAI-compatible server.

Targets never invent labels: an entity without a fine type (GMNER, most FIGER sentences) gets a
coarse-only clause, `X is a(an) person, whose bounding boxes are ...` (rule per entity, so a record where
only some entities have a fine type mixes the two clause forms); records whose boxes are unknown
(synthetic) are never given a stage-2 target (train_data.py decides which examples a record gives).
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from ..core import boxes as box_ops
from ..core import hierarchy
from .sequences import NO_ENTITY, boxes_text, stage1_target, stage2_target

DEFAULT_TOP_K = 5
# Visual knowledge is meant to be a short appearance summary; a longer one (an unvoted or runaway LLM
# answer) is cut to this many words so that it cannot push the prompt past the model's length.
KNOWLEDGE_WORDS = 60


def tweet_text(record: dict[str, Any]) -> str:
    return " ".join(record.get("tokens") or [])


def stage1_prompt(record: dict[str, Any]) -> str:
    types = ", ".join(hierarchy.coarse_types())
    return (
        "Given the tweet and the image, list the named entities in the tweet and their types. "
        f"The types are: {types}. Answer in the form `<entity> is a(an) <type>`, entities separated by `; `, "
        "or `no entity found.` when there is none.\n"
        f"Tweet: {tweet_text(record)}"
    )


def knowledge_lines(entities: Sequence[dict[str, Any]], visual_knowledge: dict[str, Any] | None,
                    max_words: int = KNOWLEDGE_WORDS) -> list[str]:
    """One line per stage-1 entity: its visual knowledge (at most `max_words` words), or an explicit
    statement that there is none."""
    visual_knowledge = visual_knowledge if isinstance(visual_knowledge, dict) else {}
    lines = []
    for entity in entities:
        text = visual_knowledge.get(entity["text"])
        if isinstance(text, str) and text.strip():
            words = text.split()
            cut = " ".join(words[:max_words]) + (" ..." if len(words) > max_words else "")
            lines.append(f"- {entity['text']}: {cut}")
        else:
            lines.append(f"- {entity['text']}: no visual knowledge.")
    return lines


def object_lines(objects: Sequence[dict[str, Any]] | None, image_size: Sequence[float] | None,
                 top_k: int = DEFAULT_TOP_K) -> list[str]:
    """The top-K detected objects by score: label and normalized box (label alone without a size)."""
    ranked = sorted((o for o in objects or [] if isinstance(o, dict) and o.get("label")),
                    key=lambda o: -float(o.get("score") or 0.0))[: max(top_k, 0)]
    lines = []
    for obj in ranked:
        box = obj.get("box")
        if box and image_size:
            lines.append(f"- {obj['label']} {box_ops.format_box(box_ops.normalize(box, image_size))}")
        else:
            lines.append(f"- {obj['label']}")
    return lines


def stage2_prompt(record: dict[str, Any], stage1: Sequence[dict[str, Any]], image_size: Sequence[float] | None,
                  top_k: int = DEFAULT_TOP_K, knowledge: bool = True, objects: bool = True) -> str:
    """Task prompt + visual knowledge per stage-1 entity + top-K objects + the stage-1 entities."""
    coarse = sorted({e["coarse"] for e in stage1 if e.get("coarse") in hierarchy.coarse_types()})
    parts = [
        "Given the tweet, the image and the entities found in it, give each entity its coarse type, its "
        "fine-grained type and its bounding boxes in the image as normalized (x1, y1, x2, y2), or None when "
        "it is not in the image. Answer in the form `<entity> is a(an) <coarse> and a(an) <fine>, whose "
        "bounding boxes are <boxes>`, entities separated by `; `.",
        f"Tweet: {tweet_text(record)}",
    ]
    if coarse:
        parts.append("Fine-grained types: " + "; ".join(f"{c}: {', '.join(hierarchy.fine_types(c))}" for c in coarse))
    if knowledge and stage1:
        parts.append("Visual knowledge:\n" + "\n".join(knowledge_lines(stage1, record.get("visual_knowledge"))))
    if objects:
        lines = object_lines(record.get("objects"), image_size, top_k)
        parts.append("Objects in the image:\n" + ("\n".join(lines) if lines else "- none detected"))
    parts.append(f"Entities: {stage1_target(stage1)}")
    return "\n".join(parts)


def direct_prompt(record: dict[str, Any]) -> str:
    """Stage 2 without stage-1 input (`--no-stage1`, the paper's LLaVA-direct): tweet + image -> the final
    triples; no stage-1 entities, visual knowledge or objects."""
    return "\n".join([
        "Given the tweet and the image, list the named entities in the tweet and give each its coarse type, its "
        "fine-grained type and its bounding boxes in the image as normalized (x1, y1, x2, y2), or None when it is "
        "not in the image. Answer in the form `<entity> is a(an) <coarse> and a(an) <fine>, whose bounding boxes "
        "are <boxes>`, entities separated by `; `, or `no entity found.` when there is none.",
        f"Tweet: {tweet_text(record)}",
        "Fine-grained types: " + "; ".join(f"{c}: {', '.join(hierarchy.fine_types(c))}"
                                           for c in hierarchy.coarse_types()),
    ])


def gold_stage2_target(entities: Sequence[dict[str, Any]], image_size: Sequence[float] | None) -> str:
    """The stage-2 target of gold entities, saying only what the annotation knows: an entity with a fine
    type gets the full clause (sequences.stage2_target), one without gets the coarse-only clause."""
    clauses = []
    for entity in entities:
        if entity.get("fine"):
            clauses.append(stage2_target([entity], image_size))
        else:
            clauses.append(f"{entity['text']} is a(an) {entity['coarse']}, whose bounding boxes are "
                           + boxes_text(entity.get("boxes") or [], image_size))
    return "; ".join(clauses) if clauses else NO_ENTITY


def gold_stage1(record: dict[str, Any]) -> list[dict[str, str]]:
    """Stage-1 input for stage-2 training: the record's `stage1` if it has one, else gold (coarse)."""
    if isinstance(record.get("stage1"), list):
        return [{"text": e["text"], "coarse": e["coarse"]} for e in record["stage1"]]
    return [{"text": e["text"], "coarse": e["coarse"]} for e in record.get("entities") or []]


def perturb_stage1(entities: list[dict[str, str]], rate: float, seed: int, record_id: str) -> list[dict[str, str]]:
    """Training noise (paper §IV-L): with probability `rate` (seeded per record) drop one entity or
    replace its coarse type with another, so stage 2 learns not to trust stage 1 blindly."""
    rng = random.Random(f"{seed}:{record_id}")
    if not entities or rng.random() >= rate:
        return entities
    noisy = [dict(e) for e in entities]
    i = rng.randrange(len(noisy))
    if rng.random() < 0.5:
        del noisy[i]
    else:
        others = [c for c in hierarchy.coarse_types() if c != noisy[i]["coarse"]]
        noisy[i]["coarse"] = rng.choice(others)
    return noisy


def stage1_example(record: dict[str, Any]) -> tuple[str, str]:
    return stage1_prompt(record), stage1_target(record.get("entities") or [])


def stage2_example(record: dict[str, Any], image_size: Sequence[float] | None, *, noise: float = 0.1, seed: int = 0,
                   top_k: int = DEFAULT_TOP_K, knowledge: bool = True, objects: bool = True,
                   direct: bool = False) -> tuple[str, str]:
    """`direct`: the end-to-end prompt (no stage-1 input, so no noise, knowledge or objects either)."""
    target = gold_stage2_target(record.get("entities") or [], image_size)
    if direct:
        return direct_prompt(record), target
    stage1 = perturb_stage1(gold_stage1(record), noise, seed, str(record.get("id")))
    prompt = stage2_prompt(record, stage1, image_size, top_k=top_k, knowledge=knowledge, objects=objects)
    return prompt, target
