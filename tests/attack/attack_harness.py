"""The machinery of the attack census (tests/attack/attack_census.py): run the real CLI of one tree under a hard
timeout, the shared fixtures (tiny models, a base training run), and the judge that turns what a run left
behind into one outcome."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

# A key with characters whose URL and base64 forms differ from it, as a real provider key might have.
KEY = "sk-Cz9+q/W7=census" + "4f1d8b20a6e3c97d"


def key_fragments(key: str = KEY) -> set[str]:
    forms = [key, quote_plus(key), base64.b64encode(key.encode()).decode().rstrip("=")]
    return {form[i:i + 8] for form in forms for i in range(len(form) - 7)}


FRAGMENTS = key_fragments()


def leaked_in(data: bytes | str) -> str | None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for fragment in FRAGMENTS:
        if fragment in text:
            return fragment
    return None


@dataclass
class Run:
    rc: int | None
    out: bytes
    err: str
    seconds: float
    timed_out: bool

    def ids(self) -> list[str]:
        ids = []
        for line in self.out.splitlines():
            try:
                ids.append(json.loads(line).get("id"))
            except (ValueError, AttributeError):
                pass
        return ids

    def records(self) -> list[dict]:
        out = []
        for line in self.out.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


def clean_env(tree: Path, case_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VKEL_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(PYTHONPATH=str(tree), VKEL_CACHE=str(case_dir / "cache"), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               PYTHONDONTWRITEBYTECODE="1", COLUMNS="120")
    return env


class Shared:
    """Fixtures built once (with the first tree's CLI) and copied into the cases that need them."""

    def __init__(self, root: Path, python: str, builder: Path):
        self.root, self.python, self.builder = root, python, builder
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._built: dict[str, Path] = {}

    def _build(self, name: str, argv: list[str], timeout: float = 300) -> Path:
        with self._lock:
            if name not in self._built:
                target = self.root / name
                if not target.exists():
                    done = subprocess.run([self.python, *argv], cwd=self.root, env=clean_env(self.builder, self.root),
                                          capture_output=True, timeout=timeout)
                    if done.returncode != 0:
                        raise RuntimeError(f"building {name} failed: {done.stderr.decode()[-500:]}")
                self._built[name] = target
            return self._built[name]

    def tiny(self, backbone: str) -> Path:
        return self._build(f"tiny-{backbone}", ["-m", "vkel_cli", "models", "tiny", f"tiny-{backbone}",
                                                "--backbone", backbone])

    def rtdetr(self) -> Path:
        return self._build("tiny-rtdetr", ["-c", "from vkel_cli.detect.rtdetr import build_tiny; "
                                                 "build_tiny('tiny-rtdetr', num_queries=10)"])

    def base_run(self) -> Path:
        """A finished 2-step stage-1 run (checkpoint-1, checkpoint-2, the adapter) and its data."""
        model = self.tiny("llava")
        data = self.root / "train-data"
        if not data.exists():
            write_images(data, ["a.jpg", "b.jpg", "c.jpg"])
            (data / "train.jsonl").write_text("".join(json.dumps(good(i, image=f"{'abc'[i - 1]}.jpg")) + "\n"
                                                      for i in (1, 2, 3)))
        return self._build("base-run", ["-m", "vkel_cli", "train", "--stage", "1", "--model", str(model),
                                        "--output-dir", "base-run", "--max-steps", "2", "--save-steps", "1",
                                        "--logging-steps", "1", "--device", "cpu", "--image-root", str(data),
                                        str(data / "train.jsonl")], timeout=400)

    def close(self) -> None:
        pass


def write_images(directory: Path, names: list[str], size=(64, 48)) -> None:
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", size, (40 * i % 255, 90, 160)).save(directory / name)


def good(i: int, image: str = "img.jpg") -> dict:
    """A record that satisfies every contract field, with predictions equal to its gold."""
    entity = {"text": "Kevin Love", "start": 0, "end": 2, "coarse": "person", "fine": "athlete",
              "boxes": [[1, 1, 30, 40]]}
    return {"id": f"r{i}", "tokens": ["Kevin", "Love", "visits", "Paris"], "image": image, "image_size": [64, 48],
            "entities": [entity], "stage1": [{"text": "Kevin Love", "coarse": "person"}],
            "knowledge": {"Kevin Love": {"m1": "a tall man", "m2": "a tall man"}},
            "predictions": [{"text": "Kevin Love", "coarse": "person", "fine": "athlete", "box": [1, 1, 30, 40]}]}


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


class Context:
    """One case on one tree: its own directory, servers and runs."""

    def __init__(self, label: str, tree: Path, directory: Path, shared: Shared):
        self.label, self.tree, self.dir, self.shared = label, tree, directory, shared
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        self._servers: list = []
        self.runs: list[Run] = []

    @property
    def old(self) -> bool:
        return self.label == "before"

    def server(self, server):
        server.__enter__()
        self._servers.append(server)
        return server

    def close(self) -> None:
        for server in self._servers:
            try:
                server.__exit__(None, None, None)
            except Exception:
                pass

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
        return path

    def env(self, extra: dict | None = None) -> dict:
        env = clean_env(self.tree, self.dir)
        env.update(extra or {})
        return env

    def spawn(self, args: list[str], env: dict | None = None, stdin: bytes | None = None, stdout=None,
              umask: int = -1, shell_tail: str | None = None) -> subprocess.Popen:
        argv = [self.shared.python, "-m", "vkel_cli", *map(str, args)]
        if shell_tail:  # e.g. "| head -1": the shell reports vkel's own status
            import shlex

            argv = ["bash", "-c", " ".join(map(shlex.quote, argv)) + f" {shell_tail}; exit ${{PIPESTATUS[0]}}"]
        return subprocess.Popen(argv, cwd=self.dir, env=self.env(env), stdin=subprocess.PIPE,
                                stdout=stdout if stdout is not None else subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, umask=umask)

    def vkel(self, *args, stdin: bytes | str = b"", env: dict | None = None, timeout: float = 30,
             stdout=None, umask: int = -1, shell_tail: str | None = None) -> Run:
        if isinstance(stdin, str):
            stdin = stdin.encode()
        started = time.monotonic()
        proc = self.spawn(list(args), env, stdin, stdout, umask, shell_tail)
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
            run = Run(proc.returncode, out or b"", err.decode("utf-8", "replace"), time.monotonic() - started, False)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            run = Run(None, out or b"", err.decode("utf-8", "replace"), time.monotonic() - started, True)
        self.runs.append(run)
        return run

    def files_text(self) -> dict[str, bytes]:
        """Every file the case left (outputs, the LLM cache), for the leak check."""
        found = {}
        for path in self.dir.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 50_000_000:
                try:
                    found[str(path.relative_to(self.dir))] = path.read_bytes()
                except OSError:
                    pass
        return found

    def judge(self, runs: list[Run] | Run | None = None, *, good: list[str] | None = None, rc=(0, 1, 2),
              where: tuple[str, ...] = (), lost: str | None = None, wrong: str | None = None,
              deadline: float | None = None, leaks: bool = True) -> tuple[str, str]:
        """One outcome, the worst first: leaked > hung > crashed > lost > wrong > handled."""
        runs = self.runs if runs is None else ([runs] if isinstance(runs, Run) else runs)
        last = runs[-1] if runs else None
        if leaks:
            for i, run in enumerate(runs):
                for name, data in (("stdout", run.out), ("stderr", run.err)):
                    fragment = leaked_in(data)
                    if fragment:
                        return "leaked", f"run {i + 1} {name} holds {fragment!r}: {_around(data, fragment)}"
            for name, data in self.files_text().items():
                fragment = leaked_in(data)
                if fragment:
                    return "leaked", f"file {name} holds {fragment!r}"
        for run in runs:
            if run.timed_out:
                return "hung", f"killed after {run.seconds:.0f} s; stderr: {_tail(run.err)}"
            if deadline is not None and run.seconds > deadline:
                return "hung", f"took {run.seconds:.1f} s (> {deadline} s); stderr: {_tail(run.err)}"
        mismatch = None
        for run in runs:
            if "Traceback (most recent call last)" in run.err or "internal error" in run.err.lower():
                return "crashed", f"rc {run.rc}: {_traceback_line(run.err)}"
            if run.rc not in CLEAN:
                return "crashed", f"rc {run.rc}: {_tail(run.err)}"
            if run.rc not in rc and mismatch is None:
                mismatch = f"rc {run.rc} (expected {'/'.join(map(str, rc))}): {_tail(run.err)}"
        if lost:
            return "lost", lost
        if good is not None and last is not None:
            ids = [i for i in last.ids() if i in good]
            rest = iter(ids)
            if not all(g in rest for g in good):  # every good record, in order (a repeat is not a loss)
                return "lost", f"good records out: {ids} (expected {good}); rc {last.rc}; {_tail(last.err)}"
        if wrong:
            return "wrong", wrong
        if mismatch:
            return "wrong", mismatch
        if where and last is not None and not any(w in last.err for w in where):
            return "wrong", f"rc {last.rc}, no message naming {' or '.join(where)}: {_tail(last.err)}"
        return "handled", f"rc {last.rc if last else '-'}; {_tail(last.err) if last else ''}"


CLEAN = (0, 1, 2, 130, 143)  # any other status (a signal's, a library's own exit) is a crash


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(text: str, n: int = 200) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-2:])[-n:]


def _traceback_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line or "error" in line:
            return line.strip()[:200]
    return _tail(text)


def _around(data: bytes | str, fragment: str) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    at = text.find(fragment)
    return text[max(0, at - 40): at + 40].replace("\n", " ")
