"""scripts/build_mmcv.sh, the slow first-install step: its job count follows the machine, its wheel is
reused from the per-user cache, and a failed build shows its whole log (the real build is ~12 min, so the
failure is injected by giving pip no index)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "build_mmcv.sh"
VENV = Path(os.environ.get("VIRTUAL_ENV") or ROOT / ".venv")
needs_venv = pytest.mark.skipif(not (VENV / "bin" / "python").exists(), reason="no .venv to build against")


def _expected_jobs() -> int:
    cores = len(os.sched_getaffinity(0))
    mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemAvailable:"))
    return max(1, min(cores, mem_kb // 614400))


def _run(tmp_path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "VENV": str(VENV), "VKEL_WHEEL_CACHE": str(tmp_path / "wheels"), "PROGRESS_EVERY": "1",
            **env}
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=full, cwd=ROOT, timeout=600)


@needs_venv
def test_a_failed_build_prints_its_whole_log_and_publishes_no_wheel(tmp_path):
    result = _run(tmp_path, PIP_NO_INDEX="1")  # pip can fetch nothing: the build fails at its first step
    assert result.returncode != 0
    assert f"with {_expected_jobs()} parallel jobs" in result.stderr  # cores, bounded by memory
    assert "the build FAILED" in result.stderr and "build/mmcv-build.log" in result.stderr
    log = (ROOT / "build" / "mmcv-build.log").read_text()
    assert log.strip() and log.strip().splitlines()[-1] in result.stderr  # the log, shown in full
    assert not list((tmp_path / "wheels").rglob("*.whl"))


@needs_venv
def test_an_explicit_job_count_wins(tmp_path):
    result = _run(tmp_path, PIP_NO_INDEX="1", MAX_JOBS="7")
    assert "with 7 parallel jobs" in result.stderr


@needs_venv
def test_a_cached_wheel_is_reused_without_building(tmp_path):
    key = subprocess.run([str(VENV / "bin" / "python"), "-c",
                          "import sys, sysconfig, torch; print(torch.__version__.replace('+', '_'), "
                          "f'cp{sys.version_info[0]}{sys.version_info[1]}', "
                          "sysconfig.get_platform().replace('-', '_').replace('.', '_'))"],
                         capture_output=True, text=True, check=True).stdout.split()
    folder = tmp_path / "wheels" / "mmcv-2.1.0" / f"torch-{key[0]}-{key[1]}-{key[2]}-cpu"
    folder.mkdir(parents=True)
    (folder / f"mmcv-2.1.0-{key[1]}-{key[1]}-linux_x86_64.whl").write_bytes(b"not really a wheel")
    result = _run(tmp_path, PIP_NO_INDEX="1")
    # It goes straight to installing the cached file (which, being fake, pip then refuses).
    assert f"reusing {folder}" in result.stderr
    assert "building mmcv" not in result.stderr
