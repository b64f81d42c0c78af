"""The command line as a user meets it: version, help without heavy imports, exit codes, env."""

import json
import subprocess
import sys

import pytest

from vkel_cli import __version__


def test_version(vkel):
    result = vkel("--version")
    assert result.code == 0 and result.stdout.decode().strip() == f"vkel {__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["score", "--help"], ["data", "stats", "--help"]])
def test_help_and_light_commands_never_import_heavy_libraries(argv):
    code = ("import sys; from vkel_cli.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'open_clip', 'mmdet', 'peft') if m in sys.modules]\n"
            "print('HEAVY', heavy, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in proc.stderr, proc.stderr


def test_score_and_data_never_import_torch(tmp_path):
    from conftest import FIXTURES

    code = ("import sys; from vkel_cli.cli import main\n"
            f"try:\n    main(['data', 'import', 'fmnerg', {str(FIXTURES / 'mini' / 'fmnerg.txt')!r}, '-o', "
            f"{str(tmp_path / 'r.jsonl')!r}])\nexcept SystemExit:\n    pass\n"
            f"try:\n    main(['score', '-q', {str(tmp_path / 'r.jsonl')!r}])\nexcept SystemExit:\n    pass\n"
            "print('TORCH', 'torch' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "TORCH False" in proc.stderr, proc.stderr


def test_usage_errors_exit_2_and_data_errors_exit_1(vkel, tmp_path):
    assert vkel("score", "--no-such-option").code == 2
    assert vkel("no-such-command").code == 2
    missing = vkel("data", "stats", tmp_path / "missing.jsonl")
    assert missing.code == 1 and "missing.jsonl" in missing.stderr and "cannot open" in missing.stderr


def test_env_reports_versions_and_cache(vkel, tmp_path):
    result = vkel("env", "--json", "--no-device", env={"VKEL_CACHE": str(tmp_path)})
    assert result.code == 0
    info = json.loads(result.stdout)
    assert info["vkel"] == __version__ and info["cache_dir"] == str(tmp_path)
    assert info["packages"]["typer"]


def test_internal_errors_are_one_redacted_line(tmp_path):
    code = ("import sys\nfrom vkel_cli import cli\nfrom vkel_cli.core import errors\nerrors.register_secret('sk-very-secret-key')\n"
            "@cli.app.command('boom')\ndef boom():\n    raise RuntimeError('failed with key sk-very-secret-key')\n"
            "cli.main(['boom'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "sk-very-secret-key" not in proc.stderr + proc.stdout
    assert "internal error: RuntimeError: failed with key ***" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_score_table_and_json_agree_on_units(vkel, tmp_path):
    def entity(text, start):
        return {"text": text, "start": start, "end": start + 1, "coarse": "person", "fine": "athlete", "boxes": []}

    right = {"id": "1", "tokens": ["Love", "Smith", "Irving"], "entities": [entity("Love", 0), entity("Smith", 1)],
             "predictions": [{"text": "Love", "coarse": "person", "fine": "athlete", "box": None}]}
    empty = {"id": "2", "tokens": ["Irving"], "entities": [entity("Irving", 0)], "predictions": []}
    md = tmp_path / "score.md"
    result = vkel("score", "--markdown", md, input=b"".join(json.dumps(r).encode() + b"\n" for r in (right, empty)),
                  env={"COLUMNS": "200"})
    assert result.code == 0, result.stderr
    fmner = next(r for r in result.records() if r["task"] == "FMNER")
    assert (fmner["precision"], fmner["recall"]) == (1.0, 1 / 3)  # JSON: fractions
    assert "R %" in result.stderr and "33.33" in result.stderr  # the table: percentages, and says so
    header = md.read_text().splitlines()[0]
    assert "| P % | R % | F1 % |" in header
