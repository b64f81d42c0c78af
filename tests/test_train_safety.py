"""`vkel train` never loses a run (issue 12): a failed or SIGKILLed `--overwrite` leaves the previous run
exactly as it was; `--resume` skips a checkpoint cut by a kill mid-save and continues from the newest complete
one; metrics.jsonl never repeats a step after a resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_train import ONE_THREAD, losses, make_records, options, pairs_of
from tiny_models import tiny_model

pytestmark = pytest.mark.slow


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def logged(run: Path) -> list[tuple]:
    """(step, fields) of each metrics.jsonl row: a step has a loss row, and the last one the run's summary."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(row["step"], tuple(sorted(row))) for row in rows]


def test_failed_or_killed_overwrite_keeps_the_previous_run(tmp_path, tmp_path_factory, one_thread):
    from vkel_cli.core.errors import VkelError
    from vkel_cli.train.run import train
    from vkel_cli.train.rundir import staging_path

    model = tiny_model(tmp_path_factory, "llava")
    data = make_records(tmp_path)
    run = tmp_path / "run"
    train(options(model, run, tmp_path, max_steps=1), pairs_of(data))
    before = snapshot(run)
    assert "adapter_model.safetensors" in before

    # Bad data: the new run fails before its first step.
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "tokens": ["a"], "image": "missing.jpg", "entities": []}) + "\n")
    with pytest.raises(VkelError, match="missing.jpg"):
        train(options(model, run, tmp_path, max_steps=1, overwrite=True), pairs_of(bad))
    assert snapshot(run) == before
    assert not os.path.exists(staging_path(str(run)))

    # SIGKILL in the middle of training (after it wrote checkpoints): nothing of the old run is touched.
    staging = Path(staging_path(str(run)))
    cmd = [sys.executable, "-m", "vkel_cli", "train", "--model", str(model), "--output-dir", str(run), "--overwrite",
           "--max-steps", "500", "--save-steps", "1", "--batch-size", "2", "--grad-accum", "1",
           "--image-root", str(tmp_path / "img"), str(data)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **ONE_THREAD})
    try:
        deadline = time.monotonic() + 180
        while not list(staging.glob("checkpoint-*/trainer_state.json")) and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.2)
        assert list(staging.glob("checkpoint-*/trainer_state.json"))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(run) == before
    # --resume still continues the run in place (the old one); the next --overwrite replaces it and
    # clears what the killed attempt left.
    train(options(model, run, tmp_path, max_steps=2, overwrite=True), pairs_of(data))
    assert sorted(losses(run)) == [1, 2]
    assert not staging.exists() and not list(tmp_path.glob(".run.vkel-*"))
    assert snapshot(run)["adapter_model.safetensors"] != before["adapter_model.safetensors"]


def test_an_interrupted_swap_is_completed(tmp_path):
    from vkel_cli.train.rundir import prepare, staging_path

    run = tmp_path / "run"
    old, new = tmp_path / ".run.vkel-old", Path(staging_path(str(run)))
    for folder, text in ((old, "old"), (new, "new")):
        folder.mkdir()
        (folder / "adapter_config.json").write_text(text)
    # killed between the two renames: the finished new run is moved in, the old one removed
    with pytest.raises(Exception, match="--resume"):
        prepare(str(run), resume=False, overwrite=False)
    assert (run / "adapter_config.json").read_text() == "new" and not old.exists() and not new.exists()
    # killed after the second rename: only the leftover old run is removed
    old.mkdir()
    (old / "adapter_config.json").write_text("old")
    prepare(str(run), resume=True, overwrite=False)
    assert (run / "adapter_config.json").read_text() == "new" and not old.exists()


def test_resume_skips_a_checkpoint_cut_mid_save(tmp_path, tmp_path_factory, one_thread, capfd):
    from transformers import TrainerCallback

    from vkel_cli.train.run import train

    model = tiny_model(tmp_path_factory, "llava")
    data = make_records(tmp_path)
    full, cut = tmp_path / "full", tmp_path / "cut"
    train(options(model, full, tmp_path, max_steps=6, save_steps=2), pairs_of(data))

    class KilledWhileSaving(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 6:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(options(model, cut, tmp_path, max_steps=6, save_steps=2), pairs_of(data),
              callbacks=[KilledWhileSaving()])
    assert [step for step, fields in logged(cut) if "loss" in fields] == [1, 2, 3, 4, 5, 6]
    weights = cut / "checkpoint-6" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # the kill cut the write
    capfd.readouterr()

    train(options(model, cut, tmp_path, max_steps=6, save_steps=2, resume=True), pairs_of(data))
    err = capfd.readouterr().err
    assert "checkpoint-6 is incomplete" in err and "resuming from" in err and "checkpoint-4" in err
    assert (cut / "incomplete-checkpoint-6").is_dir() and (cut / "checkpoint-6" / "trainer_state.json").is_file()
    # Steps 5 and 6 are logged once, by the resumed run: the rows are those of the uninterrupted run.
    assert [step for step, fields in logged(cut) if "loss" in fields] == [1, 2, 3, 4, 5, 6]
    assert logged(cut) == logged(full)
    assert losses(cut) == losses(full)  # and continued exactly
    assert snapshot(cut)["adapter_model.safetensors"] == snapshot(full)["adapter_model.safetensors"]

    # What counts as complete: every file a resume reads, whole.
    from vkel_cli.train.rundir import checkpoint_problem

    good = full / "checkpoint-6"
    assert checkpoint_problem(str(good)) is None
    cuts = {"trainer_state.json": "cut", "optimizer.pt": "cut", "scheduler.pt": "delete", "rng_state.pth": "delete",
            "adapter_config.json": "delete", "adapter_model.safetensors": "cut"}
    for name, how in cuts.items():
        broken = tmp_path / f"broken-{name}"
        shutil.copytree(good, broken)
        if how == "delete":
            (broken / name).unlink()
        else:
            (broken / name).write_bytes((good / name).read_bytes()[:-20])
        assert checkpoint_problem(str(broken)) is not None, name
