"""`vkel --help` reads well: pipeline order, whole one-line summaries, path metavars, examples that run."""

from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from conftest import run_vkel

PIPELINE = ["data", "augment", "models", "train", "predict", "detect", "knowledge", "vote", "score",
            "report", "export", "ceiling", "env"]


@pytest.fixture(scope="module")
def tree():
    import typer.main

    from vkel_cli.cli import register

    return typer.main.get_command(register())


def _help(*path: str) -> str:
    from vkel_cli.cli import register

    result = CliRunner().invoke(register(), [*path, "--help"], prog_name="vkel")
    assert result.exit_code == 0, result.output
    return result.output


def _commands_section(text: str) -> list[str]:
    section = text.split("\nCommands:\n", 1)[1]
    return section.split("\n\n", 1)[0].splitlines()


def test_top_level_help_lists_the_pipeline_in_order_with_whole_one_line_summaries():
    from vkel_cli.commands import COMMANDS

    result = run_vkel("--help")  # as a user runs it: a fresh process
    assert result.code == 0
    lines = _commands_section(result.stdout.decode())
    names = [line.split()[0] for line in lines]
    registered = {name for name, _, _ in COMMANDS}
    assert names == [name for name in PIPELINE if name in registered]
    assert registered <= set(PIPELINE), "place the new command in PIPELINE (and COMMANDS) at its pipeline step"
    for line in lines:  # one line each, never cut with "..."
        assert line.startswith("  ") and not line.startswith("   "), line
        assert not line.rstrip().endswith("..."), line
    assert dict(line.split(None, 1) for line in lines)["score"] == "FMNERG/FMNER/EEG precision, recall and F1"


def test_every_group_lists_whole_summaries(tree):
    from vkel_cli.commands._help import first_sentence, walk

    groups = [path for path, command in walk(tree) if getattr(command, "commands", None)]
    assert ("data",) in groups and ("data", "import") in groups
    for path in groups:
        lines = _commands_section(_help(*path))
        for line in lines:
            name, summary = line.split(None, 1)
            command = tree
            for step in path + (name,):
                command = command.commands[step]
            assert summary == first_sentence(command.help), (path, line)
            assert len(summary) <= 64 and not summary.endswith("..."), (path, line)
    assert [line.split()[0] for line in _commands_section(_help("data"))] == ["import", "stats"]


PATH_OPTIONS = {
    ("score",): {"--gold": "FILE", "--markdown": "FILE"},
    ("train",): {"--model": "DIR|ID", "--output-dir": "DIR", "--eval-file": "FILE", "--image-root": "DIR"},
    ("predict",): {"--model": "DIR|ID", "--adapter": "DIR", "--image-root": "DIR", "--output": "FILE"},
    ("detect",): {"--config": "FILE|NAME", "--checkpoint": "PATH|URL", "--model": "DIR|ID", "--image-root": "DIR"},
    ("augment",): {"--index": "FILE", "--image-dir": "DIR", "--output": "FILE"},
    ("knowledge",): {"--llm-config": "FILE", "--templates": "FILE"},
    ("vote",): {"--llm-config": "FILE", "--templates": "FILE"},
    ("data", "import", "fmnerg"): {"--xml-dir": "DIR", "--image-root": "DIR", "--output": "FILE"},
    ("data", "import", "vkel-output"): {"--gold": "FILE"},
    ("data", "import", "figer"): {"--type-map": "FILE"},
    ("data", "import", "riveg"): {"--gold": "FILE"},
}


@pytest.mark.parametrize("path", list(PATH_OPTIONS), ids=" ".join)
def test_path_options_show_path_metavars(path):
    text = _help(*path)
    for option, metavar in PATH_OPTIONS[path].items():
        assert re.search(rf"(^ +|, ){re.escape(option)} {re.escape(metavar)}\s", text, re.M), (option, text)
    assert "<str>" not in " ".join(line for line in text.splitlines() if any(o in line for o in PATH_OPTIONS[path]))


def test_record_inputs_and_file_arguments_show_file(tree):
    from vkel_cli.commands._help import walk

    for path, command in walk(tree):
        for param in command.params:
            if param.param_type_name == "argument":
                assert re.search(r"FILE|DIR|PATH", param.metavar or ""), (path, param.name)
    assert "Usage: vkel score [OPTIONS] [FILE]..." in _help("score")
    assert "Usage: vkel models tiny [OPTIONS] {DIR}" in _help("models", "tiny")


def _vkel_commands(line: str) -> list[list[str]]:
    """Each `vkel ...` of a shell line (pipes and redirections split off)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|<>")
    lexer.whitespace_split = True
    segments, current, skip = [], [], False
    for token in lexer:
        if token == "|":
            segments.append(current)
            current, skip = [], False
        elif token in ("<", ">", ">>"):
            skip = True
        elif not skip:
            current.append(token)
    segments.append(current)
    return [segment[1:] for segment in segments if segment and segment[0] == "vkel"]


def _parse(tree, argv: list[str]) -> tuple[tuple[str, ...], dict]:
    """Parse argv exactly as `vkel` would, without running anything: (command path, its parameters)."""
    ctx = tree.make_context("vkel", list(argv))
    command, path = tree, ()
    while getattr(command, "commands", None):
        if not (ctx._protected_args or ctx.args):  # `vkel data` alone: the group's own help
            return path, ctx.params
        name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        path += (name,)
        ctx = command.make_context(name, rest, parent=ctx)
    return path, ctx.params


def test_every_command_has_examples_that_parse(tree):
    from vkel_cli.commands._help import EXAMPLES, walk

    paths = {" ".join(path) for path, _ in walk(tree)}
    assert paths - set(EXAMPLES) == set(), "every command needs examples in vkel_cli/commands/_help.py"
    named = set()
    for key in paths:
        for _, line in EXAMPLES[key]:
            commands = _vkel_commands(line)
            assert commands, line
            for argv in commands:
                if argv == ["--help"] or argv[-1:] == ["--help"]:
                    continue
                path, _ = _parse(tree, argv)
                named.add(" ".join(path))
    assert {"score", "train", "predict", "data import fmnerg", "vote"} <= named


def test_a_broken_example_is_caught(tree):
    """The parser above fails on what a stale example would contain."""
    import typer

    with pytest.raises(typer._click.exceptions.NoSuchOption):
        _parse(tree, ["score", "--no-such-option", "x.jsonl"])
    with pytest.raises(typer._click.exceptions.UsageError):
        _parse(tree, ["scores", "x.jsonl"])
    with pytest.raises(typer._click.exceptions.BadParameter):
        _parse(tree, ["score", "--level", "finest", "x.jsonl"])
    assert _parse(tree, ["data", "import", "fmnerg", "t.txt", "--xml-dir", "x"])[1]["xml_dir"] == "x"


def test_examples_show_in_the_commands_help():
    from vkel_cli.commands._help import EXAMPLES

    text = _help("score")
    assert "Examples:" in text
    for _, command in EXAMPLES["score"]:
        assert f"  {command}\n" in text  # whole, not re-wrapped
