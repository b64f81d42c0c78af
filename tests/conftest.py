"""Shared test fixtures: the real benchmark data (skipped when absent) and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("VKEL_SHARED_DATA", ROOT.parent / "shared" / "data"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"

needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")


@dataclass
class CliResult:
    code: int
    stdout: bytes
    stderr: str

    @property
    def lines(self) -> list[bytes]:
        return [line for line in self.stdout.splitlines() if line.strip()]

    def records(self) -> list[dict]:
        import orjson

        return [orjson.loads(line) for line in self.lines]


def run_vkel(*args: str, input: bytes | str | None = None, env: dict | None = None, cwd=None,
             timeout: float = 600) -> CliResult:
    """Run `python -m vkel_cli ARGS` as a user would, in a fresh process."""
    if isinstance(input, str):
        input = input.encode()
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "vkel_cli", *map(str, args)], input=input, capture_output=True,
                          env=full_env, cwd=cwd, timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


@pytest.fixture
def vkel():
    return run_vkel


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _environment_restored():
    """A test that runs the CLI in-process (cli.main) lets it set process-wide variables (PYTHONWARNINGS,
    TRANSFORMERS_VERBOSITY, ...) as a real run does; they must not reach later tests' subprocesses."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache directory, so no test sees another's cache."""
    monkeypatch.setenv("VKEL_CACHE", str(tmp_path_factory.mktemp("vkel-cache")))


@pytest.fixture
def one_thread():
    """One torch thread: on 2 shared cores more threads only contend (a step gets ~10x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
