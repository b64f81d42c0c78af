"""`vkel export`: the examples `vkel train` trains on, in LLaVA / LLaMA-Factory / ms-swift layouts, and the
generations those trainers write coming back through `vkel data import vkel-output` to `vkel score`."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from conftest import ROOT, run_vkel

SAMPLE = ROOT / "examples" / "sample"
IMAGES = SAMPLE / "images"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Path]:
    """The bundled sample's train and test splits as records, with constructed objects on train (the stage-2
    prompt lists them) so that the object lines are exported too."""
    folder = tmp_path_factory.mktemp("sample")
    paths = {}
    for split in ("train", "test"):
        result = run_vkel("data", "import", "fmnerg", str(SAMPLE / f"{split}.txt"), "--xml-dir", str(SAMPLE / "xml"),
                          "--image-root", str(IMAGES))
        assert result.code == 0, result.stderr
        records = result.records()
        if split == "train":
            for record in records:
                w, h = record["image_size"]
                record["objects"] = [{"label": "person", "score": 0.9, "box": [0, 0, w / 2, h / 2]},
                                     {"label": "car", "score": 0.4, "box": [w / 4, h / 4, w, h]}]
        paths[split] = folder / f"{split}.jsonl"
        paths[split].write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return paths


def _dry_run(records: Path, *options: str) -> list[dict]:
    result = run_vkel("train", "--dry-run", str(records), "--image-root", str(IMAGES), *options)
    assert result.code == 0, result.stderr
    return result.records()


def _export(records: Path, out: Path, fmt: str, *options: str):
    result = run_vkel("export", str(records), "--format", fmt, "--output-dir", str(out), "--image-root", str(IMAGES),
                      *options)
    assert result.code == 0, result.stderr
    assert result.stdout == b""
    return result


def _examples(out: Path, fmt: str, name: str) -> list[dict]:
    """(id, stage, prompt, target, image) of an export, read back from the trainer's own layout."""
    index = [orjson.loads(line) for line in (out / f"{name}.index.jsonl").read_bytes().splitlines()]
    if fmt == "llava":
        items = json.loads((out / f"{name}.json").read_text())
        turns = [(i["conversations"][0], i["conversations"][1], i["image"]) for i in items]
        assert all(h["from"] == "human" and g["from"] == "gpt" for h, g, _ in turns)
        pairs = [(h["value"], g["value"], image) for h, g, image in turns]
        assert [i["id"] for i in items] == [f"{x['id']}-stage{x['stage']}-{n}" for n, x in enumerate(index)]
    else:
        items = [orjson.loads(line) for line in (out / f"{name}.jsonl").read_bytes().splitlines()]
        assert all(set(i) == {"messages", "images"} and len(i["images"]) == 1 for i in items)
        assert all([m["role"] for m in i["messages"]] == ["user", "assistant"] for i in items)
        pairs = [(i["messages"][0]["content"], i["messages"][1]["content"], i["images"][0]) for i in items]
    assert len(index) == len(pairs)
    for user, _, image in pairs:
        assert user.startswith("<image>\n") and user.count("<image>") == 1
        assert Path(image).is_absolute() and Path(image).is_file()
    return [{"id": x["id"], "stage": x["stage"], "prompt": user[len("<image>\n"):], "target": target}
            for x, (user, target, _) in zip(index, pairs)]


@pytest.mark.parametrize("fmt,options,name", [
    ("llava", ("--stage", "1"), "vkel-stage1"),
    ("sharegpt", ("--stage", "2", "--noise", "0.5", "--seed", "3", "--top-k", "1"), "vkel-stage2"),
    ("swift", ("--joint", "--no-knowledge"), "vkel-joint"),
    ("swift", ("--stage", "2", "--no-stage1", "--no-objects"), "vkel-stage2"),
])
def test_export_equals_train_dry_run(sample, tmp_path, fmt, options, name):
    out = tmp_path / "out"
    result = _export(sample["train"], out, fmt, *options)
    exported = _examples(out, fmt, name)
    expected = _dry_run(sample["train"], *options)
    assert exported == expected
    assert len(expected) >= 20 and f"{fmt}: {len(expected)} example(s)" in result.stderr
    if "--stage" in options and options[options.index("--stage") + 1] == "2" and "--no-objects" not in options:
        assert any("Objects in the image:\n- person" in e["prompt"] for e in exported)  # the constructed objects


def test_sharegpt_dataset_info_entry_is_merged(sample, tmp_path):
    out = tmp_path / "lf"
    out.mkdir()
    (out / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "mine.json"}}))
    _export(sample["test"], out, "sharegpt", "--name", "fmnerg_test")
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["mine"] == {"file_name": "mine.json"}
    assert info["fmnerg_test"] == {
        "file_name": "fmnerg_test.jsonl", "formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}
    (out / "dataset_info.json").write_text("[1]")
    broken = run_vkel("export", str(sample["test"]), "--format", "sharegpt", "--output-dir", str(out), "--image-root",
                      str(IMAGES))
    assert broken.code == 1 and "dataset_info.json" in broken.stderr


def test_export_errors_keep_the_good_records(sample, tmp_path):
    lines = sample["test"].read_bytes().splitlines()
    bad = orjson.loads(lines[1])
    bad["image"] = "missing.jpg"
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join([lines[0], orjson.dumps(bad), *lines[2:]]) + b"\n")
    failed = run_vkel("export", str(source), "--format", "swift", "--output-dir", str(tmp_path / "a"), "--image-root",
                      str(IMAGES))
    assert failed.code == 1 and repr(bad["id"]) in failed.stderr and not (tmp_path / "a" / "vkel-stage1.jsonl").exists()
    kept = run_vkel("export", str(source), "--format", "llava", "--output-dir", str(tmp_path / "b"), "--image-root",
                    str(IMAGES), "--on-error", "skip")
    assert kept.code == 1
    items = json.loads((tmp_path / "b" / "vkel-stage1.json").read_text())
    assert len(items) == len(lines) - 1 and not any(i["id"].startswith(bad["id"] + "-") for i in items)
    usage = run_vkel("export", str(source), "--output-dir", str(tmp_path / "c"), "--no-stage1")
    assert usage.code == 2


def _generations(fmt: str, exported: list[dict], answers: list[str]) -> bytes:
    """A prediction file in the shape each trainer's predict script writes, in the export's order."""
    lines = []
    for n, (example, answer) in enumerate(zip(exported, answers)):
        if fmt == "sharegpt":  # LLaMA-Factory: generated_predictions.jsonl
            item = {"prompt": example["prompt"], "predict": answer, "label": example["target"]}
        elif fmt == "swift":  # ms-swift: swift infer --result_path
            item = {"response": answer, "labels": example["target"],
                    "messages": [{"role": "user", "content": "<image>\n" + example["prompt"]}]}
        else:  # LLaVA: llava/eval/model_vqa.py answers file
            item = {"question_id": n, "prompt": example["prompt"], "text": answer, "answer_id": f"a{n}",
                    "model_id": "llava-v1.5-7b", "metadata": {}}
        lines.append(orjson.dumps(item))
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("fmt", ["llava", "sharegpt", "swift"])
@pytest.mark.parametrize("stage", ["1", "2"])
def test_round_trip_generations_come_back_and_score(sample, tmp_path, fmt, stage):
    options = ("--stage", "1") if stage == "1" else ("--stage", "2", "--no-stage1")
    out = tmp_path / "out"
    _export(sample["test"], out, fmt, *options)
    exported = _examples(out, fmt, f"vkel-stage{stage}")
    gold = [orjson.loads(line) for line in sample["test"].read_bytes().splitlines()]
    assert [e["id"] for e in exported] == [g["id"] for g in gold]  # one example per test record, in order
    # a perfect model, but for one record answered with nothing
    answers = [e["target"] for e in exported]
    answers[2] = "no entity found."
    generations = tmp_path / "generations.jsonl"
    generations.write_bytes(_generations(fmt, exported, answers))
    imported = run_vkel("data", "import", "vkel-output", str(generations), "--gold", str(sample["test"]), "--stage",
                        stage, "--image-root", str(IMAGES))
    assert imported.code == 0, imported.stderr
    task = "FMNER" if stage == "1" else "FMNERG"
    scored = run_vkel("score", "--pred-field", "stage1" if stage == "1" else "predictions", input=imported.stdout)
    assert scored.code == 0, scored.stderr
    row = next(r for r in scored.records() if r["task"] == task and r["type"] == "all")
    n_gold = sum(len(g["entities"]) for g in gold)
    assert (row["tp"], row["n_pred"], row["n_gold"]) == (n_gold - len(gold[2]["entities"]),) * 2 + (n_gold,)
    assert len(gold[2]["entities"]) > 0
