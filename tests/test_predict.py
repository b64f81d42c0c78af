"""`vkel predict`: end to end with `vkel models tiny` checkpoints -> train -> predict -> score, on both
backbones; batching, per-record image errors, and the OpenAI-compatible engine on a loopback server."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tiny_models import tiny_model, write_images

pytestmark = pytest.mark.slow

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # 2 shared cores: threads only contend
ENTITY = {"text": "Kevin Love", "start": 0, "end": 2, "coarse": "person", "fine": "athlete", "boxes": [[10, 6, 40, 48]]}


def write_records(root: Path, n: int, tokens_extra=lambda i: [str(i)], entities=lambda i: [ENTITY]) -> Path:
    write_images(root / "img", {f"{i}.jpg": (80, 60) for i in range(n)})
    path = root / "records.jsonl"
    with open(path, "w") as handle:
        for i in range(n):
            record = {"id": f"t{i}", "tokens": ["Kevin", "Love", "scores", *tokens_extra(i)], "image": f"{i}.jpg",
                      "image_size": [80, 60], "entities": entities(i),
                      "objects": [{"label": "person", "score": 0.8, "box": [10, 6, 40, 48]}],
                      "visual_knowledge": {"Kevin Love": "a tall basketball player"}}
            handle.write(json.dumps(record) + "\n")
    return path


def score(vkel, pred: Path, gold: Path, field: str) -> dict:
    result = vkel("score", "--gold", gold, "--pred-field", field, "--level", "coarse", pred)
    assert result.code == 0, result.stderr
    return {row["task"]: row for row in result.records()}


def test_llava_end_to_end_learns_stage1_then_stage2(tmp_path, tmp_path_factory, vkel):
    model = tiny_model(tmp_path_factory, "llava")
    data = write_records(tmp_path, 3)
    common = ["--model", model, "--image-root", tmp_path / "img"]
    # Enough steps at a high rate for the tiny model to learn one answer: checks that train and
    # predict build the same prompt and that only the target is learned.
    run1 = tmp_path / "run1"
    result = vkel("train", "--stage", "1", *common, "--output-dir", run1, "--max-steps", "80", "--lr", "1e-2",
                  "--batch-size", "3", "--grad-accum", "1", "--save-steps", "1000", "--seed", "0",
                  "--lora-targets", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", data, env=ONE_THREAD)
    assert result.code == 0, result.stderr
    assert result.stdout == b""
    stage1 = tmp_path / "stage1.jsonl"
    result = vkel("predict", "--stage", "1", *common, "--adapter", run1, "--batch-size", "2", "--max-new-tokens",
                  "12", "-o", stage1, data, env=ONE_THREAD)
    assert result.code == 0, result.stderr
    records = [json.loads(line) for line in stage1.read_text().splitlines()]
    assert [r["id"] for r in records] == ["t0", "t1", "t2"]
    assert records[0]["stage1"] == [{"text": "Kevin Love", "coarse": "person"}], records[0]["meta"]
    assert score(vkel, stage1, data, "stage1")["FMNER"]["f1"] == 1.0

    run2 = tmp_path / "run2"
    result = vkel("train", "--stage", "2", *common, "--output-dir", run2, "--max-steps", "2", "--batch-size", "3",
                  "--no-objects", data, env=ONE_THREAD)
    assert result.code == 0, result.stderr
    assert json.loads((run2 / "train_args.json").read_text())["options"]["objects"] is False
    final = tmp_path / "final.jsonl"
    result = vkel("predict", "--stage", "2", *common, "--adapter", run2, "--max-new-tokens", "16", "-o", final,
                  stage1, env=ONE_THREAD)
    assert result.code == 0, result.stderr
    for record in (json.loads(line) for line in final.read_text().splitlines()):
        assert isinstance(record["predictions"], list) and record["stage1"]
        assert "raw" in record["meta"]["generation"]["stage2"]
    assert score(vkel, final, data, "predictions")["FMNERG"]["n_gold"] == 3


def test_qwen_end_to_end_joint_adapter(tmp_path, tmp_path_factory, vkel):
    model = tiny_model(tmp_path_factory, "qwen2.5-vl")
    data = write_records(tmp_path, 2)
    common = ["--model", model, "--image-root", tmp_path / "img"]
    run = tmp_path / "run"
    result = vkel("train", "--joint", *common, "--output-dir", run, "--max-steps", "2", "--batch-size", "2", data,
                  env=ONE_THREAD)
    assert result.code == 0, result.stderr
    stage1 = vkel("predict", "--stage", "1", *common, "--adapter", run, "--max-new-tokens", "8", data, env=ONE_THREAD)
    assert stage1.code == 0, stage1.stderr
    assert all(isinstance(r["stage1"], list) for r in stage1.records())
    (tmp_path / "s1.jsonl").write_bytes(stage1.stdout)
    assert score(vkel, tmp_path / "s1.jsonl", data, "stage1")["FMNER"]["n_gold"] == 2
    stage2 = vkel("predict", "--stage", "2", *common, "--adapter", run, "--max-new-tokens", "8", input=stage1.stdout,
                  env=ONE_THREAD)
    assert stage2.code == 0, stage2.stderr
    assert [r["id"] for r in stage2.records()] == ["t0", "t1"]
    assert all("predictions" in r for r in stage2.records())


def test_batches_match_single_records_and_bad_images_are_per_record(tmp_path, tmp_path_factory, one_thread):
    from vkel_cli.core.errors import ErrorPolicy, SkippedRecords, VkelError
    from vkel_cli.predict.jobs import PredictOptions
    from vkel_cli.predict.run import predict

    model = tiny_model(tmp_path_factory, "llava")
    # Prompts of different lengths, so left padding is exercised.
    data = write_records(tmp_path, 5, tokens_extra=lambda i: ["and", "more"] * i + [str(i)])
    (tmp_path / "img" / "3.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "img" / "1.jpg").unlink()
    lines = data.read_text().splitlines()

    def run(batch_size, mode="skip"):
        opts = PredictOptions(stage=1, model=str(model), batch_size=batch_size, max_new_tokens=6,
                              image_root=str(tmp_path / "img"))
        policy = ErrorPolicy(mode)
        return list(predict(opts, ((json.loads(line), None) for line in lines), policy)), policy

    single, _ = run(1)
    batched, policy = run(4)
    assert [r["id"] for r in batched] == ["t0", "t1", "t2", "t3", "t4"]
    assert policy.skipped == 2
    with pytest.raises(SkippedRecords):
        policy.finish()
    assert "image not found" in batched[1]["meta"]["errors"]["predict"]
    assert "cannot read image" in batched[3]["meta"]["errors"]["predict"]
    assert "stage1" not in batched[1]
    raw = [r["meta"].get("generation", {}).get("stage1", {}).get("raw") for r in batched]
    assert raw == [r["meta"].get("generation", {}).get("stage1", {}).get("raw") for r in single]
    assert all(raw[i] is not None for i in (0, 2, 4))
    with pytest.raises(VkelError, match="record 't1'"):
        run(4, "fail")


def test_stage2_needs_stage1(tmp_path, tmp_path_factory):
    from vkel_cli.core.errors import ErrorPolicy
    from vkel_cli.predict.jobs import PredictOptions
    from vkel_cli.predict.run import predict

    data = write_records(tmp_path, 1)
    record = json.loads(data.read_text())
    opts = PredictOptions(stage=2, engine="openai", base_url="http://127.0.0.1:9/v1", served_model="m",
                          image_root=str(tmp_path / "img"))
    out = list(predict(opts, [(record, None)], ErrorPolicy("ignore")))
    assert "vkel predict --stage 1" in out[0]["meta"]["errors"]["predict"]


def test_openai_engine_sends_image_and_prompt_and_parses(tmp_path):
    from openai_server import OpenAIServer, Reply

    from vkel_cli.core.errors import ErrorPolicy
    from vkel_cli.predict.jobs import PredictOptions
    from vkel_cli.predict.run import predict

    data = write_records(tmp_path, 6)
    records = [json.loads(line) for line in data.read_text().splitlines()]
    for record in records:
        record["stage1"] = [{"text": "Kevin Love", "coarse": "person"}]

    def answer(request):
        text = request["messages"][0]["content"][1]["text"]
        n = text.split("Tweet: Kevin Love scores ")[1].split("\n")[0]
        if n == "4":
            return Reply.error(400, "bad request")  # not retried: a per-record error
        return (f"Kevin Love is a(an) person and a(an) athlete, whose bounding boxes are (0.125, 0.1, 0.5, 0.8)"
                if n != "2" else "gibberish")

    with OpenAIServer(answer=answer, latency=0.02) as server:
        opts = PredictOptions(stage=2, engine="openai", base_url=server.url, served_model="vkel-stage2",
                              max_new_tokens=64, concurrency=3, image_root=str(tmp_path / "img"))
        policy = ErrorPolicy("ignore")
        out = list(predict(opts, ((r, None) for r in records), policy))
        request = server.requests[0]
    body = request["body"] if "body" in request else request
    assert [r["id"] for r in out] == [f"t{i}" for i in range(6)]
    assert out[0]["predictions"] == [{"text": "Kevin Love", "coarse": "person", "fine": "athlete",
                                      "box": [10.0, 6.0, 40.0, 48.0]}]
    assert out[2]["predictions"] == [] and out[2]["meta"]["generation"]["stage2"]["unparsed"] == ["gibberish"]
    assert "HTTP 400" in out[4]["meta"]["errors"]["predict"] and policy.skipped == 1
    assert body["model"] == "vkel-stage2" and body["temperature"] == 0 and body["max_tokens"] == 64
    image_part, text_part = body["messages"][0]["content"]
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == (tmp_path / "img" / f"{request_id(text_part)}.jpg").read_bytes()
    assert "Visual knowledge:\n- Kevin Love: a tall basketball player" in text_part["text"]


def request_id(text_part: dict) -> str:
    return text_part["text"].split("Tweet: Kevin Love scores ")[1].split("\n")[0]
