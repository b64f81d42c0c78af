"""What `vkel train` trains on: the examples each record gives (stages, targets that never invent a label),
`--dry-run`, `--no-stage1`, and the per-record problems found while the examples are prepared (unreadable
images, URLs fetched once per run, prompts longer than --max-length) before the first step."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import needs_shared
from image_server import ImageServer, image_bytes
from tiny_models import tiny_model, write_images
from vkel_cli.core import hierarchy
from vkel_cli.fetch import images
from vkel_cli.format import prompts, sequences
from vkel_cli.core.errors import ErrorPolicy, VkelError
from vkel_cli.train.examples import (DRY_RUN_FIELDS, ExampleCounts, ExampleOptions, ImageFetcher, SpooledExamples, prepare_examples, record_examples)

ROOT = Path(__file__).resolve().parent.parent
SIZE = [200, 100]
TYPE_WORD = re.compile(r"(?:is|and) a\(an\) (\S+?)(?=[,;.]|\s|$)")


def fmnerg_record(rid: str, image: str = "a.jpg") -> dict:
    return {"id": rid, "tokens": ["Kevin", "Love", "in", "Cleveland"], "image": image, "image_size": SIZE,
            "entities": [{"text": "Kevin Love", "start": 0, "end": 2, "coarse": "person", "fine": "athlete",
                          "boxes": [[20, 10, 100, 90]]},
                         {"text": "Cleveland", "start": 3, "end": 4, "coarse": "location", "fine": "city", "boxes": []}],
            "meta": {"dataset": "fmnerg", "source": "train.txt:1"}}


def gmner_record(rid: str, image: str = "a.jpg") -> dict:
    record = fmnerg_record(rid, image)
    for entity in record["entities"]:
        entity["fine"] = None
    record["meta"] = {"dataset": "gmner", "source": "train.txt:1"}
    return record


def synthetic_record(rid: str, image: str = "a.jpg") -> dict:
    """As `vkel augment` writes them: FIGER text, a retrieved image, boxes unknown (written as [])."""
    return {"id": rid, "tokens": ["Obama", "visits", "Paris"], "image": image, "image_size": SIZE,
            "entities": [{"text": "Obama", "start": 0, "end": 1, "coarse": "person", "fine": "politician", "boxes": []},
                         {"text": "Paris", "start": 2, "end": 3, "coarse": "location", "fine": None, "boxes": []}],
            "meta": {"source": "synthetic", "text_source": "figer", "clip_score": 0.31}}


def assert_no_invented_label(example: dict, record: dict) -> None:
    """Every type word is in the hierarchy (no `None`); a fine type only where the record has one; boxes
    only in stage-2 targets of records whose boxes are known."""
    words = TYPE_WORD.findall(example["target"])
    coarse, fine = set(hierarchy.coarse_types()), set(hierarchy.fine_types())
    assert "None" not in words and all(w in coarse or w in fine for w in words), example
    entities = record.get("entities") or []
    synthetic = (record.get("meta") or {}).get("source") in ("synthetic", "figer")
    if example["stage"] == 1:
        assert "bounding boxes" not in example["target"]
        assert example["target"].count(" is a(an) ") == len(entities)
        return
    assert not synthetic, f"a stage-2 example from synthetic record {record['id']}"
    assert example["target"].count(", whose bounding boxes are ") == len(entities)
    assert example["target"].count(" and a(an) ") == sum(1 for e in entities if e.get("fine"))


# --- which examples a record gives ---------------------------------------------------------------------------

def test_targets_say_only_what_the_annotation_knows():
    gmner = gmner_record("g")
    target = prompts.gold_stage2_target(gmner["entities"], SIZE)
    assert target == ("Kevin Love is a(an) person, whose bounding boxes are (0.1, 0.1, 0.5, 0.9); "
                      "Cleveland is a(an) location, whose bounding boxes are None")
    mixed = fmnerg_record("m")
    mixed["entities"][1]["fine"] = None  # the rule is per entity: each clause states what is known
    assert prompts.gold_stage2_target(mixed["entities"], SIZE) == (
        "Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.1, 0.1, 0.5, 0.9); "
        "Cleveland is a(an) location, whose bounding boxes are None")
    assert prompts.gold_stage2_target([], SIZE) == "no entity found."


def test_the_parser_reads_a_coarse_only_target_back():
    target = prompts.gold_stage2_target(gmner_record("g")["entities"], SIZE)
    result = sequences.parse_stage2(target)
    assert not result.unparsed
    assert [(i["text"], i["coarse"], i.get("fine"), i["boxes"]) for i in result.items] == [
        ("Kevin Love", "person", None, [[0.1, 0.1, 0.5, 0.9]]), ("Cleveland", "location", None, [])]


@pytest.mark.parametrize("options,benchmark,synthetic", [
    ({"stage": 1}, [1], [1]),
    ({"stage": 2}, [2], []),
    ({"stage": 2, "joint": True}, [1, 2], [1]),
    ({"stage": 2, "no_stage1": True}, [2], [1]),
    ({"stage": 2, "no_stage1": True, "joint": True}, [1, 2], [1]),
])
def test_synthetic_records_are_never_stage2_examples(tmp_path, options, benchmark, synthetic):
    write_images(tmp_path, {"a.jpg": tuple(SIZE)})
    opts = ExampleOptions(image_root=str(tmp_path), noise=0.0, **options)
    for record in (fmnerg_record("f"), gmner_record("g")):
        assert [ex["stage"] for ex in record_examples(record, opts)] == benchmark
    assert [ex["stage"] for ex in record_examples(synthetic_record("s"), opts)] == synthetic
    figer_import = {**synthetic_record("fi"), "meta": {"source": "figer"}}
    assert [ex["stage"] for ex in record_examples(figer_import, opts)] == synthetic


def test_types_outside_the_hierarchy_are_an_error_of_the_record(tmp_path):
    write_images(tmp_path, {"a.jpg": tuple(SIZE)})
    opts = ExampleOptions(stage=2, image_root=str(tmp_path))
    wrong_fine = fmnerg_record("wf")
    wrong_fine["entities"][0]["fine"] = "city"  # a location's fine type on a person
    with pytest.raises(VkelError, match=r"'Kevin Love' has fine type 'city', not a fine type of 'person'") as err:
        list(record_examples(wrong_fine, opts))
    assert err.value.where == "record 'wf'"
    unknown = gmner_record("uc")
    unknown["entities"][1]["coarse"] = "misc"
    with pytest.raises(VkelError, match="coarse type 'misc', not one of the 8 coarse types"):
        list(record_examples(unknown, opts))
    with pytest.raises(VkelError, match="give it with --stage 2"):
        ExampleOptions(stage=1, no_stage1=True)


@needs_shared
def test_no_target_of_any_mixture_invents_a_label(shared_data, tmp_path):
    """The real benchmark (FMNERG and GMNER train) + FIGER as synthetic records, in every training mode."""
    from vkel_cli.data.benchmark import import_fmnerg, import_gmner
    from vkel_cli.data.figer import import_figer, load_type_map

    xml = str(shared_data / "gmner-v2" / "xml")
    fmnerg = list(import_fmnerg(str(shared_data / "fmnerg" / "train.txt"), xml))
    gmner = list(import_gmner(str(shared_data / "gmner-v2" / "txt" / "train.txt"), xml))
    figer = list(import_figer(str(shared_data / "figer" / "figer_gold_exp.label"), load_type_map()))
    synthetic = [{**r, "image": "a.jpg", "meta": {"source": "synthetic"}} for r in figer[::2]]
    raw_figer = [{**r, "image": "a.jpg"} for r in figer[1::2]]  # still meta.source figer
    assert len(fmnerg) == 7000 and len(gmner) == 7000 and len(synthetic) + len(raw_figer) == len(figer)
    assert any(e["fine"] is None for r in figer for e in r["entities"])
    image = tmp_path / "a.jpg"
    write_images(tmp_path, {"a.jpg": (640, 480)})
    mixture = fmnerg + gmner + synthetic + raw_figer
    n_benchmark, n_synthetic = len(fmnerg) + len(gmner), len(synthetic) + len(raw_figer)
    for options, expected in [({"stage": 1}, {1: n_benchmark + n_synthetic}),
                              ({"stage": 2}, {2: n_benchmark}),
                              ({"stage": 2, "joint": True}, {1: n_benchmark + n_synthetic, 2: n_benchmark}),
                              ({"stage": 2, "no_stage1": True}, {1: n_synthetic, 2: n_benchmark})]:
        opts = ExampleOptions(image_root=str(tmp_path), **options)
        made = {1: 0, 2: 0}
        for record in mixture:
            # The benchmark's images are not shipped: every record points at one local image, taken as the
            # frame of its boxes (the labels, not the box values, are under test here).
            record = {**record, "image_size": None}
            for example in record_examples(record, opts, image=str(image)):
                assert_no_invented_label(example, record)
                made[example["stage"]] += 1
        assert {k: v for k, v in made.items() if v} == expected, options


# --- preparation: images, counts, the dry run -------------------------------------------------------------------

def write_mixture(root: Path) -> Path:
    write_images(root / "img", {"a.jpg": tuple(SIZE), "b.jpg": tuple(SIZE)})
    (root / "img" / "empty.jpg").write_bytes(b"")
    whole = image_bytes("red", (64, 48))
    (root / "img" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    records = [fmnerg_record("f1"), fmnerg_record("f2", "b.jpg"), gmner_record("g1"), synthetic_record("s1", "b.jpg"),
               fmnerg_record("zero", "empty.jpg"), gmner_record("truncated", "cut.jpg")]
    path = root / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def run_cli(vkel, *args, **kw):
    return vkel("train", *args, **kw)


def test_dry_run_writes_the_examples_and_reads_no_model(vkel, tmp_path):
    data = write_mixture(tmp_path)
    run_dir = tmp_path / "run"
    result = run_cli(vkel, "--dry-run", "--stage", "2", "--joint", "--noise", "1", "--seed", "3", "--top-k", "1",
                     "--model", str(tmp_path / "no-such-model"), "--output-dir", str(run_dir),
                     "--image-root", str(tmp_path / "img"), "--on-error", "skip", str(data))
    assert result.code == 1, result.stderr  # skip mode: two records skipped
    assert not run_dir.exists()
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert all(tuple(line) == DRY_RUN_FIELDS for line in lines)
    assert [(line["id"], line["stage"]) for line in lines] == [
        ("f1", 1), ("f1", 2), ("f2", 1), ("f2", 2), ("g1", 1), ("g1", 2), ("s1", 1)]
    # the very examples a real run spools, for the same options
    opts = ExampleOptions(stage=2, joint=True, noise=1.0, seed=3, top_k=1, image_root=str(tmp_path / "img"))
    from vkel_cli.core.records import read_records

    dataset = SpooledExamples.build(read_records([str(data)]), opts, ErrorPolicy("ignore"))
    try:
        assert [{k: dataset[i][k] for k in DRY_RUN_FIELDS} for i in range(len(dataset))] == lines
        assert dataset.counts.as_dict() == {
            "records": 6, "records_skipped": 2, "examples": 7,
            "by_stage": {"1": {"fmnerg": 2, "gmner": 1, "synthetic": 1}, "2": {"fmnerg": 2, "gmner": 1}},
            "stage2_coarse_only": {"gmner": 1}, "stage2_withheld_boxes_unknown": {"synthetic": 1},
            "targets_cut": None}
    finally:
        dataset.close()
    assert not Path(dataset.directory).exists()
    noisy = prompts.perturb_stage1(prompts.gold_stage1(fmnerg_record("f1")), 1.0, 3, "f1")
    assert lines[1]["prompt"].endswith("Entities: " + sequences.stage1_target(noisy))
    assert "- person (0.1, 0.1, 0.5, 0.9)" not in lines[1]["prompt"]  # no objects in these records
    stderr = result.stderr
    assert "(at record 'zero'): " in stderr and "(at record 'truncated'): " in stderr
    assert ("examples: 7 (stage 1: 2 fmnerg + 1 gmner + 1 synthetic; stage 2: 2 fmnerg + 1 gmner) from 6 records, "
            "2 skipped for errors; stage-2 targets without a fine type (coarse-only clauses): 1 gmner; "
            "no stage-2 example (boxes unknown): 1 synthetic") in stderr
    assert "prompt lengths were not checked" in stderr


def test_dry_run_no_stage1_and_the_knowledge_and_object_switches(vkel, tmp_path):
    data = write_mixture(tmp_path)
    common = ["--dry-run", "--image-root", str(tmp_path / "img"), "--on-error", "ignore", str(data)]
    direct = run_cli(vkel, "--stage", "2", "--no-stage1", *common)
    assert direct.code == 0, direct.stderr
    lines = [json.loads(line) for line in direct.stdout.decode().splitlines()]
    assert [(line["id"], line["stage"]) for line in lines] == [("f1", 2), ("f2", 2), ("g1", 2), ("s1", 1)]
    record = fmnerg_record("f1")
    assert lines[0]["prompt"] == prompts.direct_prompt(record)
    for section in ("Entities:", "Visual knowledge", "Objects in the image"):
        assert section not in lines[0]["prompt"]
    assert lines[0]["target"] == prompts.gold_stage2_target(record["entities"], SIZE)
    plain = run_cli(vkel, "--stage", "2", "--no-knowledge", "--no-objects", "--noise", "0", *common)
    first = json.loads(plain.stdout.decode().splitlines()[0])
    assert first["prompt"] == prompts.stage2_prompt(record, prompts.gold_stage1(record), SIZE, knowledge=False,
                                                    objects=False)
    usage = run_cli(vkel, "--no-stage1", *common)
    assert usage.code == 2 and "--stage 2" in usage.stderr
    missing = run_cli(vkel, str(data))
    assert missing.code == 2 and "--output-dir" in missing.stderr


def test_predict_no_stage1_prompt_needs_no_stage1_entities():
    from vkel_cli.predict.jobs import PredictOptions, stage_prompt

    record = {**fmnerg_record("p"), "objects": [{"label": "person", "score": 0.9, "box": [0, 0, 10, 10]}]}
    assert stage_prompt(record, PredictOptions(stage=2, no_stage1=True), SIZE) == prompts.direct_prompt(record)
    with pytest.raises(VkelError, match="no `stage1` entities"):
        stage_prompt(record, PredictOptions(stage=2), SIZE)


def test_url_images_are_fetched_once_per_run(tmp_path, monkeypatch):
    monkeypatch.setenv("VKEL_ALLOW_PRIVATE_URLS", "1")  # the server is on the loopback address
    with ImageServer() as server:
        url_a = server.image("/a.jpg", "red", tuple(SIZE))
        url_b = server.image("/b.jpg", "blue", tuple(SIZE))
        records = [fmnerg_record("u1", url_a), gmner_record("u2", url_a), fmnerg_record("u3", url_b),
                   fmnerg_record("u4", server.url + "/missing.jpg")]
        for record in records:
            record["image_size"] = None  # sizes from the fetched copies
        policy = ErrorPolicy("ignore")
        dataset = SpooledExamples.build(((r, None) for r in records), ExampleOptions(stage=2, joint=True, noise=0),
                                        policy)
        try:
            assert policy.skipped == 1 and len(dataset) == 6
            assert dict(server.hits) == {"/a.jpg": 1, "/b.jpg": 1, "/missing.jpg": 1}
            for _epoch in range(3):  # what the collator does per batch: local files only
                for i in range(len(dataset)):
                    assert dataset[i]["image"].startswith(dataset.directory)
                    images.load({"id": dataset[i]["id"], "image": dataset[i]["image"]})
            assert dict(server.hits) == {"/a.jpg": 1, "/b.jpg": 1, "/missing.jpg": 1}
            assert "(0.1, 0.1, 0.5, 0.9)" in dataset[1]["target"]  # normalized by the fetched image's size
        finally:
            dataset.close()
        assert not Path(dataset.directory).exists()


def test_a_failing_url_names_its_record(tmp_path, monkeypatch):
    monkeypatch.setenv("VKEL_ALLOW_PRIVATE_URLS", "1")
    with ImageServer() as server:
        record = fmnerg_record("gone", server.url + "/missing.jpg")
        counts = ExampleCounts()
        with pytest.raises(VkelError) as err:
            list(prepare_examples([(record, None)], ExampleOptions(), ErrorPolicy("fail"), counts,
                                  ImageFetcher(str(tmp_path))))
        assert err.value.where == "record 'gone'" and "404" in err.value.message


# --- prompt lengths, with a real processor, before the first step -----------------------------------------------

@pytest.mark.slow
def test_a_prompt_over_max_length_is_found_while_preparing(tmp_path, tmp_path_factory, one_thread):
    from vkel_cli.models import backbones
    from vkel_cli.core.records import read_records
    from vkel_cli.train.run import TrainOptions, train
    from vkel_cli.train.examples import Collator, LengthCheck

    model = tiny_model(tmp_path_factory, "llava")
    write_images(tmp_path / "img", {"a.jpg": tuple(SIZE)})
    long_record = fmnerg_record("long")
    long_record["tokens"] = long_record["tokens"] + ["word"] * 120
    records = [fmnerg_record("s1"), fmnerg_record("s2"), long_record, fmnerg_record("s3")]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))

    backbone, processor = backbones.detect(str(model)), backbones.load_processor(str(model), padding_side="right")
    opts = ExampleOptions(stage=1, image_root=str(tmp_path / "img"))
    picture = images.load(records[0], opts.image_root)
    short_example = next(record_examples(records[0], opts))
    long_example = next(record_examples(long_record, opts))
    # the check counts what the collator builds: the prompt's tokens in the full row, image tokens included
    collator = Collator(backbone, processor, max_length=4096)
    batch = processor(text=[backbone.prompt_text(processor, short_example["prompt"])], images=[picture])
    n_short = len(batch["input_ids"][0])
    full = collator([short_example])["input_ids"][0]
    assert collator._prompt_length(full, backbone.prompt_text(processor, short_example["prompt"])) == n_short
    n_long = len(processor(text=[backbone.prompt_text(processor, long_example["prompt"])],
                           images=[picture])["input_ids"][0])
    max_length = (n_short + n_long) // 2
    assert n_short + 10 < max_length < n_long
    assert LengthCheck(backbone, processor, n_short + 4)(short_example, picture) is True  # target cut

    def options(out, **kw):
        return TrainOptions(model=str(model), output_dir=str(out), stage=1, max_steps=2, batch_size=2, grad_accum=1,
                            max_length=max_length, image_root=str(tmp_path / "img"), logging_steps=1, **kw)

    with pytest.raises(VkelError) as err:
        train(options(tmp_path / "fail"), read_records([str(data)]), ErrorPolicy("fail"))
    assert err.value.where == "record 'long'"
    assert f"prompt is {n_long} tokens (image tokens included), not under --max-length {max_length}" in str(err.value)
    assert not (tmp_path / "fail" / "metrics.jsonl").exists()  # found before the first step

    policy = ErrorPolicy("skip")
    train(options(tmp_path / "skip"), read_records([str(data)]), policy)
    assert policy.skipped == 1
    info = json.loads((tmp_path / "skip" / "train_args.json").read_text())
    assert info["examples"] == 3
    assert info["example_counts"]["by_stage"] == {"1": {"fmnerg": 3}}
    assert info["example_counts"]["records_skipped"] == 1 and info["example_counts"]["targets_cut"] == 0
    assert info["options"]["no_stage1"] is False


def test_paper_baselines_are_single_end_to_end_adapters(tmp_path):
    sample = ["FMNERG_DIR=examples/sample", "XML_DIR=examples/sample/xml", "IMAGE_ROOT=examples/sample/images",
              "FIGER_FILE=examples/sample/figer.txt"]
    dirs = [f"{name.upper()}={tmp_path}/{name}" for name in ("data", "runs", "out", "tables")]
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(["make", "-n", "table-iv", *sample, *dirs], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    plan = result.stdout.replace(f"{tmp_path}/", "")
    for run, data in (("llava-direct", "data/train.jsonl"), ("llava-augment", "data/train+synthetic.jsonl")):
        [command] = [line for line in plan.splitlines() if f"--output-dir runs/{run} " in line]
        assert "vkel train --stage 2 " in command and "--no-stage1" in command and command.endswith(f" {data}")
        [predict] = [line for line in plan.splitlines() if f"--adapter runs/{run} " in line]
        assert "vkel predict --stage 2 " in predict and "--no-stage1" in predict and " data/test.jsonl >" in predict
    assert "runs/stage2-plain" not in plan
