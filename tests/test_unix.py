"""Unix manners: BOM and CRLF input, a full or closed stdout, a reader that goes away, umask modes, a
terminal on stdin, dataset files given where records are expected, quiet stderr when not a terminal."""

from __future__ import annotations

import gzip
import os
import pty
import select
import subprocess
import sys
import time

import orjson
import pytest

from conftest import FIXTURES

VKEL = [sys.executable, "-m", "vkel_cli"]
RECORDS = b'{"id":"1","tokens":["a"],"entities":[]}\r\n{"id":"2","tokens":["b"],"entities":[]}\r\n'
BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("packed", [False, True])
def test_bom_and_crlf_are_accepted_in_files_and_on_stdin(vkel, tmp_path, packed):
    data = BOM + RECORDS
    path = tmp_path / ("r.jsonl.gz" if packed else "r.jsonl")
    path.write_bytes(gzip.compress(data) if packed else data)
    from_file = vkel("data", "stats", path)
    from_stdin = vkel("data", "stats", input=data)
    for result in (from_file, from_stdin):
        assert result.code == 0, result.stderr
        assert result.records()[0]["tweets"] == 2


def test_a_bom_is_only_taken_off_the_first_line(vkel, tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(RECORDS + BOM + b'{"id":"3"}\n')
    result = vkel("data", "stats", path)
    assert result.code == 1 and f"{path}:3" in result.stderr


def test_a_full_stdout_is_an_error_not_a_silent_success(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(RECORDS)
    for args in (["data", "stats", str(path)], ["score", "-q", str(path)], ["vote", "--method", "majority",
                                                                             str(path)]):
        with open("/dev/full", "wb") as full:
            proc = subprocess.run(VKEL + args, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stderr.strip().splitlines() == [
            "vkel: error (at <stdout>): cannot write records: No space left on device"], proc.stderr


def test_a_closed_stdout_is_an_error(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(RECORDS)
    proc = subprocess.run(["bash", "-c", f"{sys.executable} -m vkel_cli data stats {path} >&-"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "vkel: error (at <stdout>): stdout is closed" in proc.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly_with_0(tmp_path):
    text = (FIXTURES / "mini" / "fmnerg.txt").read_text()
    big = tmp_path / "big.txt"
    big.write_text("".join(text.replace("IMGID:", f"IMGID:{i}_") + "\n" for i in range(3000)))
    records = tmp_path / "big.jsonl"
    subprocess.run(VKEL + ["data", "import", "fmnerg", str(big), "-o", str(records)], check=True,
                   capture_output=True, timeout=300)
    for stage in (f"data import fmnerg {big}", f"vote --method majority {records}"):
        pipeline = f"{sys.executable} -m vkel_cli {stage} | head -n 1; echo \"status=${{PIPESTATUS[0]}}\" >&2"
        proc = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=300)
        assert proc.stdout.count("\n") == 1 and orjson.loads(proc.stdout)["id"]
        assert "status=0" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "rror" not in proc.stderr


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_output_files_get_the_mode_of_the_umask(tmp_path, umask, mode):
    out, md = tmp_path / "r.jsonl", tmp_path / "score.md"
    source = str(FIXTURES / "mini" / "fmnerg.txt")
    code = (f"import os, sys; os.umask({umask}); from vkel_cli.cli import main\n"
            f"try:\n    main(['data', 'import', 'fmnerg', {source!r}, '-o', {str(out)!r}])\n"
            "except SystemExit:\n    pass\n"
            f"main(['score', '-q', '--markdown', {str(md)!r}, {str(out)!r}])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (out.stat().st_mode & 0o777, md.stat().st_mode & 0o777) == (mode, mode)


def test_rewriting_a_file_keeps_its_mode(vkel, tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text("")
    out.chmod(0o640)
    assert vkel("data", "import", "fmnerg", FIXTURES / "mini" / "fmnerg.txt", "-o", out).code == 0
    assert out.stat().st_mode & 0o777 == 0o640 and out.read_text().count("\n") == 3


def _run_on_a_terminal(args: list[str], timeout: float = 60) -> tuple[int, str]:
    """Run vkel with stdin (and stdout/stderr) on a pseudo-terminal; (exit status, what it printed)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(VKEL + args, stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    output, deadline = b"", time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            output += chunk
        elif proc.poll() is not None:
            break
    else:
        proc.kill()
    os.close(leader)
    return proc.wait(timeout=10), output.decode("utf-8", "replace")


@pytest.mark.parametrize("args", [["score"], ["data", "stats"], ["vote", "--method", "majority"], ["score", "-"]])
def test_no_input_on_a_terminal_says_how_to_feed_the_command(args):
    code, output = _run_on_a_terminal(args)
    assert code == 2, output
    flat = " ".join(output.split())
    assert "reads JSONL records" in flat and "stdin is a terminal" in flat
    assert "vkel data import fmnerg" in flat


def test_a_file_argument_is_read_even_on_a_terminal(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(RECORDS)
    code, output = _run_on_a_terminal(["data", "stats", str(path)])
    assert code == 0 and '"tweets":2' in output


@pytest.mark.parametrize("name, words", [("fmnerg.txt", "looks like a CoNLL file"), ("xml/101.xml", "looks like XML")])
def test_a_dataset_file_given_as_records_names_the_importer(vkel, name, words):
    path = FIXTURES / "mini" / name
    assert path.exists()
    result = vkel("score", path)
    assert result.code == 1 and words in result.stderr and "vkel data import fmnerg" in result.stderr


def test_stderr_that_is_not_a_terminal_gets_no_library_warnings_unless_verbose(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(RECORDS)
    code = ("import warnings, sys\nfrom vkel_cli import cli\n@cli.app.command('warn')\ndef warn():\n"
            "    warnings.warn('a library deprecation', FutureWarning)\n    import logging\n"
            "    logging.getLogger('somelib').warning('a library log warning')\n"
            "cli.main(sys.argv[1:])")
    quiet = subprocess.run([sys.executable, "-c", code, "warn"], capture_output=True, text=True, timeout=60)
    loud = subprocess.run([sys.executable, "-c", code, "--verbose", "warn"], capture_output=True, text=True,
                          timeout=60)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert "a library deprecation" in loud.stderr and "a library log warning" in loud.stderr


def test_progress_without_a_total_shows_a_count(monkeypatch, capsys):
    from vkel_cli.core import progress

    monkeypatch.setenv("VKEL_VERBOSE", "1")
    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.0)
    with progress.progress_bar("detect") as advance:
        for _ in range(3):
            advance(4)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["vkel: detect: 4", "vkel: detect: 8", "vkel: detect: 12", "vkel: detect: 12"]
    with progress.progress_bar("train", total=10) as advance:
        advance(5)
    assert capsys.readouterr().err.splitlines()[-1] == "vkel: train: 5/10"


def test_the_rich_count_column_never_shows_none():
    from types import SimpleNamespace

    from vkel_cli.core.progress import _count

    assert _count(SimpleNamespace(completed=8, total=None)) == "8"
    assert _count(SimpleNamespace(completed=8, total=20)) == "8/20"
