"""Libraries' noise stays off the terminal: known warnings dropped at their source, real ones kept."""

from __future__ import annotations

import warnings

import pytest

from conftest import ROOT, run_vkel


def test_known_noise_is_dropped_and_real_warnings_pass_even_after_a_library_resets_the_filters():
    from vkel_cli.core.progress import known_noise_filtered

    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with known_noise_filtered():
            warnings.simplefilter("once")  # what mmdet's init_detector does
            warnings.warn("checkpoint is None, use COCO classes by default.")
            warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
            warnings.warn("the image is 3 MB larger than expected", UserWarning)
            warnings.warn("something changed", DeprecationWarning)
    assert [(w.category, str(w.message)) for w in shown] == [
        (UserWarning, "the image is 3 MB larger than expected"), (DeprecationWarning, "something changed")]
    assert warnings.filters == before  # the library's "once" did not outlive the call


def test_re_issued_warnings_still_obey_the_callers_filters():
    from vkel_cli.core.progress import known_noise_filtered

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("ignore")  # vkel's rule for a stderr that is not a terminal
        with known_noise_filtered():
            warnings.warn("a real warning")
    assert shown == []


@pytest.mark.slow
def test_a_verbose_train_and_predict_print_only_vkel_lines(tmp_path_factory, tmp_path, one_thread):
    """--verbose lets libraries' warnings through: what remains on stderr must be vkel's own lines
    (before: transformers' "Loading weights" bars and PEFT's FutureWarning about is_gradient_checkpointing)."""
    from tiny_models import tiny_model

    model = tiny_model(tmp_path_factory, "llava")
    sample = ROOT / "examples" / "sample"
    records = run_vkel("data", "import", "fmnerg", sample / "test.txt", "--xml-dir", sample / "xml",
                       "--image-root", sample / "images")
    assert records.code == 0
    (tmp_path / "test.jsonl").write_bytes(b"\n".join(records.lines[:2]) + b"\n")
    common = ["--model", model, "--device", "cpu", "--image-root", sample / "images", tmp_path / "test.jsonl"]
    env = {"OMP_NUM_THREADS": "1"}
    train = run_vkel("-v", "train", "--stage", "1", "--output-dir", tmp_path / "run", "--max-steps", "1", *common,
                     env=env)
    assert train.code == 0, train.stderr
    predict = run_vkel("-v", "predict", "--stage", "1", "--adapter", tmp_path / "run", "--max-new-tokens", "4",
                       *common, env=env)
    assert predict.code == 0, predict.stderr
    assert len(predict.lines) == 2
    assert "vkel: train stage 1: 1/1" in train.stderr.splitlines()
    for result in (train, predict):
        assert {line.split(":", 1)[0] for line in result.stderr.splitlines()} <= {"vkel"}, result.stderr
