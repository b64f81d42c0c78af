"""The record stream: gzip, malformed lines, skip modes, atomic output, closed pipes."""

import gzip
import subprocess
import sys

import pytest

from vkel_cli.core.errors import ErrorPolicy, VkelError
from vkel_cli.core.records import open_output, read_records

GOOD = b'{"id": "1", "tokens": ["a"], "entities": []}\n'


def test_reads_plain_gzip_and_blank_lines(tmp_path):
    plain = tmp_path / "r.jsonl"
    plain.write_bytes(GOOD + b"\n" + GOOD.replace(b'"1"', b'"2"'))
    packed = tmp_path / "r.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        pairs = list(read_records([str(path)]))
        assert [r["id"] for r, _ in pairs] == ["1", "2"]
        assert [w.line for _, w in pairs] == [1, 3]


def test_truncated_gzip_is_an_error_with_location(tmp_path):
    path = tmp_path / "r.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(GOOD.replace(b'"1"', b'"%d"' % i) for i in range(50)))[:-12])
    with pytest.raises(VkelError, match="truncated gzip") as info:
        list(read_records([str(path)]))
    assert str(path) in str(info.value)


@pytest.mark.parametrize("line, message", [
    (b"{not json", "malformed JSON"),
    (b"[1, 2]", "must hold a JSON object"),
    (b'{"tokens": []}', "`id` must be a non-empty string"),
    (b'{"id": "x", "entities": [{"text": "a", "boxes": [[1, 2, 3]]}]}', r"entities\[0\]\.boxes"),
])
def test_malformed_lines_name_source_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(GOOD + line + b"\n")
    with pytest.raises(VkelError, match=message) as info:
        list(read_records([str(path)]))
    assert f"{path}:2" in str(info.value)


def test_skip_mode_keeps_good_records_and_exits_nonzero(vkel, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(GOOD + b"{oops\n" + GOOD.replace(b'"1"', b'"3"'))
    skip = vkel("data", "stats", path, "--on-error", "skip")
    assert skip.code == 1 and f"{path}:2" in skip.stderr
    assert skip.records()[0]["tweets"] == 2
    ignore = vkel("data", "stats", path, "--on-error", "ignore")
    assert ignore.code == 0 and ignore.records()[0]["tweets"] == 2
    fail = vkel("data", "stats", path)
    assert fail.code == 1 and f"vkel: error (at {path}:2): malformed JSON" in fail.stderr


def test_policy_counts_and_finishes():
    policy = ErrorPolicy("skip")
    policy.handle(VkelError("x", "f:1"))
    assert policy.skipped == 1
    with pytest.raises(VkelError, match="1 item"):
        policy.finish()
    ErrorPolicy("ignore").finish()


def test_output_file_is_atomic(tmp_path):
    target = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError):
        with open_output(str(target)) as writer:
            writer.write({"id": "1"})
            raise RuntimeError("boom")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with open_output(str(target)) as writer:
        writer.write({"id": "1"})
    assert target.read_bytes() == b'{"id":"1"}\n'


def test_failed_command_leaves_no_half_written_output(vkel, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("IMGID:1\na\tO\tO\n\nIMGID:2\nb\tO\n")
    out = tmp_path / "out.jsonl"
    result = vkel("data", "import", "fmnerg", path, "-o", out)
    assert result.code == 1 and not out.exists()


def test_closed_pipe_ends_quietly(tmp_path):
    from conftest import FIXTURES

    text = (FIXTURES / "mini" / "fmnerg.txt").read_text()
    big = tmp_path / "big.txt"
    big.write_text("".join(text.replace("IMGID:1", f"IMGID:{i}_") + "\n" for i in range(3000)))
    pipeline = f"{sys.executable} -m vkel_cli data import fmnerg {big} | head -n 1"
    proc = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=120)
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr
