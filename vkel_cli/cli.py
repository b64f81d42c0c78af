"""The `vkel` command: a typer app assembled from vkel_cli.commands.COMMANDS."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated, Optional

import typer

from . import __version__
from .commands import COMMANDS
from .commands._help import PipelineGroup

app = typer.Typer(
    name="vkel",
    cls=PipelineGroup,  # pipeline order, one-line summaries, examples
    help="Fine-grained multimodal named entity recognition and grounding (FMNERG) with VKEL.\n\n"
    "Every subcommand reads JSONL records (one tweet each) and writes them on stdout, adding its own "
    "fields and passing every other field through untouched.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        print(f"vkel {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Progress and libraries' warnings on stderr even when it is not a terminal "
        "(also VKEL_VERBOSE=1).")] = False,
):
    """Fine-grained multimodal NER and grounding with VKEL."""
    from .core.progress import quiet_libraries

    if verbose:
        os.environ["VKEL_VERBOSE"] = "1"
    quiet_libraries()


_registered: set[str] = set()


def register(names: list[str] | None = None) -> typer.Typer:
    """Add the subcommands (all, or only `names`) to the app; returns the app.

    `vkel CMD ...` registers CMD alone: building every command's parser costs more start-up time
    than the command itself for light ones (`vkel score --help`). Help and docs register all."""
    for name, module_name, attribute in COMMANDS:
        if name in _registered or (names is not None and name not in names):
            continue
        module = importlib.import_module(f"vkel_cli.commands.{module_name}")
        target = getattr(module, attribute)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
        _registered.add(name)
    return app


def _requested_command(args: list[str]) -> str | None:
    first = next((a for a in args if not a.startswith("-")), None)
    return first if first in {name for name, _, _ in COMMANDS} else None


def main(argv: list[str] | None = None) -> None:
    """Console entry point: exit 0 ok, 1 data/runtime error, 2 usage error, 130 interrupted (SIGINT),
    143 terminated (SIGTERM); a reader that goes away (`vkel ... | head`) ends it quietly with 0."""
    from .core.errors import VkelError, redact
    from .core.unix import Interrupted, ReaderGone, force_exit, guard_stdout, install_signal_handlers, silence_stdout

    args = sys.argv[1:] if argv is None else argv
    command = _requested_command(args)
    register([command] if command else None)
    install_signal_handlers()
    original_stdout = guard_stdout()
    try:
        try:
            app(args=args, prog_name="vkel")
        finally:
            sys.stdout.flush()  # inside the guard: a full disk or a gone reader is reported here
    except Interrupted as interrupted:
        force_exit(interrupted)  # does not wait for in-flight calls in other threads
    except ReaderGone:
        # The reader went away (`vkel ... | head`): nothing went wrong. Exit at once: worker threads may
        # still be waiting on calls whose results nobody will read.
        silence_stdout()
        sys.stderr.flush()
        os._exit(0)
    except VkelError as err:
        if err.where == "<stdout>":
            silence_stdout()  # keep the interpreter's last flush from failing again
        print(f"vkel: error {err}" if err.where else f"vkel: error: {err}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:  # an unexpected failure: one redacted line, the traceback on request
        if os.environ.get("VKEL_DEBUG"):
            import traceback

            print(redact(traceback.format_exc()), file=sys.stderr)
        print(f"vkel: internal error: {type(err).__name__}: {redact(str(err))} "
              "(set VKEL_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(1)
    finally:
        sys.stdout = original_stdout
