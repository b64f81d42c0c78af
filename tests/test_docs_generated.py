"""completions/ and man/ come from the command tree; stale committed copies fail here."""

import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT


def test_committed_completions_and_man_pages_are_current(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    generated = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    committed = {p.relative_to(ROOT) for d in ("completions", "man") for p in (ROOT / d).rglob("*") if p.is_file()}
    assert generated == committed, "run `make docs` to regenerate completions/ and man/"
    stale = [str(p) for p in generated if (tmp_path / p).read_text() != (ROOT / p).read_text()]
    assert not stale, f"stale generated files {stale}: run `make docs`"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, str]:
    """The man pages as scripts/gen_docs.py writes them now (not the committed copies)."""
    out = tmp_path_factory.mktemp("docs")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--out", str(out)], check=True,
                   capture_output=True)
    return {page.name: page.read_text() for page in (out / "man").glob("*.1")}


def _sections(page: str) -> dict[str, str]:
    parts = re.split(r"^\.SH (.+)$", page, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_man_page_has_its_sections(generated):
    assert "vkel.1" in generated and "vkel-score.1" in generated and "vkel-data-import-fmnerg.1" in generated
    for name, page in generated.items():
        sections = _sections(page)
        for title in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXAMPLES", "EXIT STATUS", "ENVIRONMENT"):
            assert title in sections, (name, title)
        assert sections["DESCRIPTION"].strip() and ".nf\nvkel" in sections["EXAMPLES"], name


def test_man_name_lines_are_distinct_summaries(generated):
    names = {name: _sections(page)["NAME"].strip() for name, page in generated.items()}
    for page, line in names.items():
        assert line.startswith(page[:-2].replace("-", "\\-") + " \\- "), line
        assert len(line.split(" \\- ", 1)[1]) <= 64, line
    summaries = [line.split(" \\- ", 1)[1] for line in names.values()]
    assert len(set(summaries)) == len(summaries), summaries
    assert names["vkel-score.1"] == "vkel\\-score \\- FMNERG/FMNER/EEG precision, recall and F1"


def test_man_examples_are_the_help_examples(generated):
    from vkel_cli.commands._help import EXAMPLES

    for _, command in EXAMPLES["train"]:
        assert command.replace("-", "\\-") in _sections(generated["vkel-train.1"])["EXAMPLES"]


def test_the_score_page_defines_the_metric(generated):
    metric = _sections(generated["vkel-score.1"])["METRIC"]
    for words in ("one to one (maximum bipartite matching)", "\\fBFMNER\\fR when the texts are equal and the "
                  "types are equal", "\\fBEEG\\fR when", "\\fBFMNERG\\fR when all three hold",
                  "IoU \\(>= the threshold", "\\fBbox_error\\fR is never grounded", "F1 their harmonic mean"):
        assert words in " ".join(metric.split()), words
    assert metric.count(".IP \\(bu 2") == 3


def _bash_complete(line: str) -> list[str]:
    words = line.split(" ")
    script = (f"source {ROOT / 'completions' / 'vkel.bash'}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
              f"COMP_CWORD={len(words) - 1}; _vkel; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return proc.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_walks_the_tree():
    assert {"data", "score", "env"} <= set(_bash_complete("vkel "))
    assert set(_bash_complete("vkel data import f")) >= {"fmnerg"}
    assert "--iou" in _bash_complete("vkel score --i")
    assert _bash_complete("vkel score --level ") == ["fine", "coarse"]
