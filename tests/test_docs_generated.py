"""completions/ and man/ come from the command tree; stale committed copies fail here."""

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


def test_every_man_page_has_exit_status_and_environment():
    for page in (ROOT / "man").glob("*.1"):
        text = page.read_text()
        assert ".SH EXIT STATUS" in text and ".SH ENVIRONMENT" in text, page.name


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
