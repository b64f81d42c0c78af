"""The layout is the architecture (docs/development.md's map): the core knows no stage, fetching knows no
stage, nothing imports in a circle, and `vkel --help` stays light. Read from the source with `ast`, every
import counted (those inside functions too: a lazy import is still a dependency)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import re

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "vkel_cli"


def read_map() -> dict[str, set[str] | None]:
    """The map of docs/development.md: folder -> the rooms it may import (None: any room)."""
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    allowed: dict[str, set[str] | None] = {}
    for folder, may in re.findall(r"^\| `(\w+)/` \|[^|]*\| ([^|]*) \|$", text, flags=re.M):
        may = may.strip()
        allowed[folder] = None if may == "any room" else (set() if may == "nothing" else
                                                          {r.strip() for r in may.split(",")})
    return allowed


ALLOWED = read_map()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [source] + [f"{source}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_top_level_holds_only_the_entry_points():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "cli.py"]


def test_the_map_names_every_folder():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert set(ALLOWED) == folders
    assert ALLOWED["core"] == set() and ALLOWED["fetch"] == {"core"}


def test_lower_layers_import_only_what_is_below_them():
    wrong = []
    for module, targets in import_graph().items():
        may = ALLOWED.get(room(module))
        if may is None:
            continue
        for target in targets:
            if room(target) not in may | {room(module), ""}:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_import_circle():
    graph = import_graph()
    # A package's __init__ importing its own children is not a circle of dependencies.
    edges = {m: {t for t in ts if not t.startswith(m + ".") and t != "vkel_cli"} for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in list(edges):
        if node not in index:
            visit(node)
    assert circles == []


def test_the_checker_sees_a_forbidden_arrow(tmp_path, monkeypatch):
    """The direction test can fail: a core module that imports a stage is reported."""
    fake = tmp_path / "vkel_cli"
    (fake / "core").mkdir(parents=True)
    (fake / "train").mkdir()
    for path in (fake / "__init__.py", fake / "core" / "__init__.py", fake / "train" / "__init__.py",
                 fake / "train" / "run.py"):
        path.write_text("")
    (fake / "core" / "records.py").write_text("def f():\n    from ..train import run\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert "vkel_cli.core.records" in import_graph()
    assert "vkel_cli.train.run" in import_graph()["vkel_cli.core.records"]
    try:
        test_lower_layers_import_only_what_is_below_them()
    except AssertionError:
        return
    raise AssertionError("a core -> train import was not reported")


def test_help_imports_nothing_heavy():
    code = ("import sys\nfrom vkel_cli.cli import main\nsys.argv = ['vkel', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'PIL', 'requests', 'numpy') if m in sys.modules]\n"
            "print('HEAVY', heavy, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in done.stderr, done.stderr[-2000:]
