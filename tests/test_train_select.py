"""`vkel train --eval-file`: dev-set selection keeps the best adapter when training drifts away from the dev
labels, across a resume; early stopping; the same scores under torchrun (2 gloo processes) as in one process;
--report-to tensorboard; clear errors for trackers and attention kernels that are not installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tiny_models import tiny_model, write_images

pytestmark = pytest.mark.slow

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
KEVIN = [{"text": "Kevin Love", "start": 0, "end": 2, "coarse": "person", "fine": "athlete", "boxes": []}]
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def learnable_llava(tmp_path_factory):
    """The tiny random LLaVA with its output layer scaled up: a random 64-wide head cannot make any token
    much likelier than another, so LoRA could not teach it an answer in a few dozen steps."""
    import torch
    from transformers import LlavaForConditionalGeneration

    out = tmp_path_factory.mktemp("learnable") / "model"
    model = LlavaForConditionalGeneration.from_pretrained(tiny_model(tmp_path_factory, "llava"))
    with torch.no_grad():
        model.lm_head.weight.mul_(25)
    model.save_pretrained(out)
    for name in os.listdir(tiny_model(tmp_path_factory, "llava")):
        if not name.startswith(("model", "config")):
            (out / name).write_bytes((tiny_model(tmp_path_factory, "llava") / name).read_bytes())
    return out


def write_records(root: Path, name: str, entities: list, n: int = 4) -> Path:
    write_images(root / "img", {f"{i}.jpg": (60, 60) for i in range(n)})
    path = root / name
    with open(path, "w") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"t{i}", "tokens": ["Kevin", "Love", "in", "town", str(i)],
                                     "image": f"{i}.jpg", "entities": entities}) + "\n")
    return path


def options(model, run, root, **overrides):
    from vkel_cli.train.run import TrainOptions

    base = dict(model=str(model), output_dir=str(run), batch_size=4, grad_accum=1, logging_steps=1, lr=1e-2,
                image_root=str(root / "img"), lora_targets=ALL_LINEAR, eval_max_new_tokens=16)
    return TrainOptions(**{**base, **overrides})


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def evals(run: Path) -> dict[int, dict]:
    found = [row for row in rows(run) if "eval_records" in row]
    steps = [row["step"] for row in found]
    assert steps == sorted(set(steps)), steps  # one evaluation per step, in order
    return {row["step"]: row for row in found}


def tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path / "adapter_model.safetensors")


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_selection_keeps_the_best_adapter_when_training_drifts(tmp_path, learnable_llava, one_thread):
    from vkel_cli.core.records import read_records
    from vkel_cli.train.run import train

    dev = write_records(tmp_path, "dev.jsonl", KEVIN)
    drift = write_records(tmp_path, "drift.jsonl", [])  # the same tweets, now labelled "no entity found."
    run = tmp_path / "run"
    common = dict(eval_file=str(dev), eval_steps=8, save_steps=8)
    train(options(learnable_llava, run, tmp_path, max_steps=24, **common), read_records([str(dev)]))
    first = evals(run)
    assert sorted(first) == [8, 16, 24] and all(row["eval_records"] == 4 for row in first.values())
    best_step = max(first, key=lambda s: (first[s]["eval_fmner_f1"], -s))  # the first of the best
    assert first[best_step]["eval_fmner_f1"] > 0.5  # the adapter learnt the dev answer
    phase_one = tensors(run)

    # Later steps train on data that drifts away from the dev labels; resume keeps the best so far and
    # early stopping ends the run two evaluations after it.
    train(options(learnable_llava, run, tmp_path, max_steps=64, resume=True, early_stop=2, **common),
          read_records([str(drift)]))
    scores = evals(run)
    later = {s: row for s, row in scores.items() if s > 24}
    assert later and all(row["eval_fmner_f1"] == 0 for row in later.values())
    since = [s for s in sorted(scores) if s > best_step]
    assert sorted(later)[-1] == since[1] < 64  # stopped at the second evaluation without improvement

    selection = json.loads((run / "train_args.json").read_text())["selection"]
    assert selection["best_step"] == best_step and selection["metric"] == "fmner_f1"
    assert selection["best_value"] == first[best_step]["eval_fmner_f1"]
    assert selection["early_stopped"] is True and selection["last_step"] == since[1]
    assert all(row["eval_best_step"] == best_step for row in later.values())
    # The run's adapter is the best one (from before the resume); the last one is in its checkpoint.
    assert same(tensors(run), phase_one)
    last = run / selection["last_checkpoint"]
    assert last.name == f"checkpoint-{since[1]}" and not same(tensors(last), phase_one)
    assert not (run / "best-adapter").exists()
    # Training rows never repeat a step either.
    loss_steps = [row["step"] for row in rows(run) if "loss" in row]
    assert loss_steps == list(range(1, since[1] + 1))

    # `vkel predict` + `vkel score` on the kept adapter give the score the selection recorded.
    predicted = _predict_and_score(learnable_llava, run, dev, tmp_path)
    assert predicted == pytest.approx(selection["best_value"])


def _predict_and_score(model, run, dev, root) -> float:
    from vkel_cli.predict.jobs import PredictOptions
    from vkel_cli.predict.run import predict
    from vkel_cli.core.records import read_records
    from vkel_cli.metric.score import Scorer, score_stream

    opts = PredictOptions(stage=1, model=str(model), adapter=str(run), image_root=str(root / "img"),
                          max_new_tokens=16)
    scorer = Scorer(level="coarse")
    score_stream(((r, "x") for r in predict(opts, read_records([str(dev)]))), scorer, "stage1")
    return next(r["f1"] for r in scorer.results() if r["task"] == "FMNER" and r["type"] == "all")


def test_torchrun_evaluation_matches_one_process(tmp_path, learnable_llava):
    """2 gloo processes deal the dev batches out; the scores equal those of one process evaluating the
    same adapter (the last checkpoint) with the same function."""
    from peft import PeftModel
    from transformers import LlavaForConditionalGeneration

    from vkel_cli.predict.local import LocalGenerator
    from vkel_cli.predict.jobs import PredictOptions
    from vkel_cli.train.select import EvalSettings, evaluate

    dev = write_records(tmp_path, "dev.jsonl", KEVIN, n=5)
    run = tmp_path / "ddp"
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "vkel_cli", "train", "--stage", "1",
           "--model", str(learnable_llava), "--output-dir", str(run), "--max-steps", "20", "--batch-size", "2",
           "--grad-accum", "1", "--lr", "0.01", "--lora-targets", ",".join(ALL_LINEAR), "--logging-steps", "1",
           "--eval-file", str(dev), "--eval-steps", "10", "--save-steps", "10", "--eval-batch-size", "2",
           "--eval-max-new-tokens", "16", "--report-to", "tensorboard", "--image-root", str(tmp_path / "img"),
           str(dev)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env={**os.environ, **ONE_THREAD})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == ""
    scores = evals(run)
    assert sorted(scores) == [10, 20] and all(row["eval_records"] == 5 for row in scores.values())
    assert scores[20]["eval_fmner_f1"] > 0.5  # learnt by then: the comparison below is not of zeros
    assert list(run.glob("runs/*/events.out.tfevents.*"))  # tensorboard, written by the main process

    settings = EvalSettings(str(dev), PredictOptions(stage=1, model=str(learnable_llava), batch_size=2,
                                                     max_new_tokens=16, image_root=str(tmp_path / "img")),
                            metric="fmner_f1")
    for step in (10, 20):
        base = LlavaForConditionalGeneration.from_pretrained(learnable_llava)
        model = PeftModel.from_pretrained(base, run / f"checkpoint-{step}")
        alone = evaluate(LocalGenerator(settings.predict, loaded=model), settings)
        assert {f"eval_{k}": v for k, v in alone.items()} == {
            k: v for k, v in scores[step].items() if k.startswith("eval_") and k != "eval_best_step"}
    assert json.loads((run / "train_args.json").read_text())["selection"]["best_step"] == 20


def test_tensorboard_event_files_and_attention_choice(tmp_path, tmp_path_factory, one_thread):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vkel_cli.core.records import read_records
    from vkel_cli.train.run import train

    from transformers import TrainerCallback

    class SeeAttention(TrainerCallback):
        kernels: list = []

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.kernels.append(model.config.text_config._attn_implementation)

    model = tiny_model(tmp_path_factory, "llava")
    data = write_records(tmp_path, "train.jsonl", KEVIN, n=2)
    run = tmp_path / "tb"
    train(options(model, run, tmp_path, max_steps=2, batch_size=2, eval_file=str(data), eval_steps=1,
                  report_to="tensorboard", attn_implementation="eager"), read_records([str(data)]),
          callbacks=[SeeAttention()])
    assert SeeAttention.kernels == ["eager"]  # --attn-implementation reached the model load
    files = list(run.glob("runs/*/events.out.tfevents.*"))
    assert len(files) == 1
    events = EventAccumulator(str(files[0].parent))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "train/loss" in tags and "eval/fmner_f1" in tags
    assert [e.step for e in events.Scalars("eval/fmner_f1")] == [1, 2]


@pytest.mark.parametrize("flag,value,needs", [("report_to", "wandb", "wandb"), ("report_to", "mlflow", "mlflow"),
                                              ("attn_implementation", "flash_attention_2", "flash")])
def test_missing_packages_are_named(tmp_path, tmp_path_factory, flag, value, needs):
    import importlib.util

    from vkel_cli.core.errors import VkelError
    from vkel_cli.core.records import read_records
    from vkel_cli.train.run import train

    if importlib.util.find_spec(needs if needs != "flash" else "flash_attn") is not None:
        pytest.skip(f"{needs} is installed here")
    model = tiny_model(tmp_path_factory, "llava")
    data = write_records(tmp_path, "train.jsonl", KEVIN, n=1)
    with pytest.raises(VkelError, match=needs) as caught:
        train(options(model, tmp_path / "run", tmp_path, max_steps=1, **{flag: value}), read_records([str(data)]))
    assert "\n" not in str(caught.value)


def test_eval_options_need_an_eval_file(tmp_path, tmp_path_factory):
    from vkel_cli.core.errors import VkelError
    from vkel_cli.train.run import train

    model = tiny_model(tmp_path_factory, "llava")
    with pytest.raises(VkelError, match="--eval-file"):
        train(options(model, tmp_path / "run", tmp_path, early_stop=2), iter(()))
    with pytest.raises(VkelError, match="no such dev file"):
        train(options(model, tmp_path / "run", tmp_path, eval_file=str(tmp_path / "nope.jsonl")), iter(()))
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_stage2_selects_each_epoch_on_fmnerg(tmp_path, tmp_path_factory, one_thread):
    """Stage 2 on the tiny Qwen2.5-VL, evaluated at each epoch end (the default): dev records without `stage1`
    get their gold entities as stage-1 input; the run's adapter is the best epoch's, ties keeping the earlier."""
    from vkel_cli.core.records import read_records
    from vkel_cli.train.run import train

    model = tiny_model(tmp_path_factory, "qwen2.5-vl")
    boxed = [{**KEVIN[0], "boxes": [[5, 5, 40, 50]]}]
    data = write_records(tmp_path, "dev.jsonl", boxed, n=2)
    run = tmp_path / "s2"
    train(options(model, run, tmp_path, stage=2, max_steps=2, batch_size=2, eval_file=str(data),
                  lora_targets=["q_proj", "v_proj"], noise=0.0, max_pixels=4 * 784), read_records([str(data)]))
    from transformers import AutoProcessor

    assert AutoProcessor.from_pretrained(run).image_processor.size.longest_edge == 4 * 784  # the run's budget
    scores = evals(run)
    assert sorted(scores) == [1, 2] and all("eval_fmnerg_f1" in row and "eval_eeg_recall" in row
                                             for row in scores.values())
    best = max(scores, key=lambda s: (scores[s]["eval_fmnerg_f1"], -s))
    selection = json.loads((run / "train_args.json").read_text())["selection"]
    assert selection["metric"] == "fmnerg_f1" and selection["best_step"] == best
    assert same(tensors(run), tensors(run / f"checkpoint-{best}"))
    assert selection["last_checkpoint"] == "checkpoint-2"
