"""Options shared by the stage commands, and the read -> transform -> write loop they share."""

from __future__ import annotations

from typing import Annotated, Callable, Iterable, Iterator, Literal, Optional

import typer

def _fed(ctx: typer.Context, value: Optional[list[str]]):
    """Records come from files or a pipe: with none given and stdin a terminal, say how to feed the
    command (exit 2) instead of waiting silently for typed JSON."""
    import sys

    if (not value or "-" in value) and not ctx.resilient_parsing and _stdin_is_terminal(sys.stdin):
        command = ctx.command_path
        raise typer.BadParameter(
            f"{command} reads JSONL records (one per line) from files or stdin, and stdin is a terminal. "
            f"Give a file (`{command} records.jsonl`) or pipe records in "
            f"(`vkel data import fmnerg train.txt --xml-dir xml | {command}`).", ctx=ctx, param_hint="INPUTS")
    return value


def _stdin_is_terminal(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


Inputs = Annotated[
    Optional[list[str]],
    typer.Argument(help="Record files (JSONL; .gz read transparently). None or '-' reads stdin.", show_default=False,
                   callback=_fed, metavar="[FILE]..."),
]
Output = Annotated[str, typer.Option("--output", "-o", metavar="FILE",
                                     help="Write records here (atomically) instead of stdout.")]
OnErrorMode = Literal["fail", "skip", "ignore"]
OnError = Annotated[
    OnErrorMode,
    typer.Option(
        "--on-error",
        help="fail: stop at the first bad item (exit 1). skip: report it on stderr, go on, exit 1 at the end. "
        "ignore: like skip but exit 0.",
    ),
]
ImageRoot = Annotated[
    Optional[str],
    typer.Option("--image-root", metavar="DIR", help="Directory that relative `image` paths are resolved against."),
]
AllowPrivateUrls = Annotated[bool, typer.Option(
    "--allow-private-urls", envvar="VKEL_ALLOW_PRIVATE_URLS",
    help="Let URLs vkel fetches on its own (record `image` URLs, retrieved candidates, their redirects) reach "
         "loopback, private, link-local and other non-public addresses, refused by default.")]


def allow_private(flag: bool) -> None:
    """Apply --allow-private-urls to this process: the fetch layer checks it on every connection."""
    if flag:
        from ..fetch.net import allow_private_urls

        allow_private_urls()


def run_stage(inputs: Iterable[str] | None, output: str, on_error: str,
              transform: Callable[[Iterator, object], Iterator[dict]]) -> int:
    """Stream records from `inputs` through `transform(pairs, policy)` into `output`.

    `pairs` yields (record, Location); `transform` yields records in input order. A per-record
    failure goes to `policy.handle(VkelError)`: in skip/ignore mode the record is still written,
    unchanged but for `meta.errors[<stage>]`, so nothing downstream loses it.
    """
    from ..core.errors import ErrorPolicy
    from ..core.records import open_output, read_records

    policy = ErrorPolicy(on_error)
    with open_output(output) as writer:
        writer.write_all(transform(read_records(inputs or ["-"], policy), policy))
    policy.finish()
    return writer.count
