"""`vkel data import e2e-gmner|riveg`: other GMNER systems' prediction files -> gold records with
`predictions`, for `vkel score --level coarse`."""

from typing import Annotated

import typer

from ._options import OnError, Output

PredictionFile = Annotated[str, typer.Argument(metavar="FILE", help="The system's prediction file; '-' for stdin.")]
Gold = Annotated[str, typer.Option("--gold", metavar="FILE", help="The gold records (from `vkel data import gmner|fmnerg`).")]


def _run(records, counts, name: str, output: str, policy) -> None:
    from ..core.progress import log
    from ..core.records import open_output

    with open_output(output) as writer:
        writer.write_all(records)
    log(counts.summary(name))
    policy.finish()


def e2e_gmner_cli(
    file: PredictionFile,
    gold: Gold,
    min_pixels: Annotated[int, typer.Option("--min-pixels", min=1, help="The Qwen2.5-VL processor's min_pixels, "
                                            "to restore boxes of answers read from `response_full`.")] = 3136,
    max_pixels: Annotated[int, typer.Option("--max-pixels", min=1, help="The Qwen2.5-VL processor's max_pixels "
                                            "(see --min-pixels).")] = 12845056,
    output: Output = "-",
    on_error: OnError = "fail",
):
    """Import E2E-GMNER predictions beside the gold records.

    One JSON line per gold record, in order; each gold record gets `predictions`."""
    from ..data.e2e_gmner import PeerCounts, import_e2e_gmner
    from ..core.errors import ErrorPolicy

    policy, counts = ErrorPolicy(on_error), PeerCounts()
    _run(import_e2e_gmner(file, gold, policy, counts, min_pixels, max_pixels), counts, "e2e-gmner", output, policy)


def riveg_cli(
    file: PredictionFile,
    gold: Gold,
    output: Output = "-",
    on_error: OnError = "fail",
):
    """Import RiVEG predictions beside the gold records.

    Lines `IMAGE###entity(TYPE)###...###&[x1, y1, x2, y2]`, joined by image id; each gold record gets
    `predictions`."""
    from ..data.e2e_gmner import PeerCounts
    from ..data.riveg import import_riveg
    from ..core.errors import ErrorPolicy

    policy, counts = ErrorPolicy(on_error), PeerCounts()
    _run(import_riveg(file, gold, policy, counts), counts, "riveg", output, policy)
