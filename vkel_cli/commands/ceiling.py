"""`vkel ceiling`: the grounding ceiling of a detector's objects (the paper's Table I)."""

from typing import Annotated, Optional

import typer

from ._options import Inputs, OnError
from .score import _thresholds


def _ks(value: str) -> list[int]:
    try:
        values = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated whole numbers, got {value!r}") from None
    if not values or any(v < 1 for v in values):
        raise typer.BadParameter("K values must be at least 1")
    return values


def ceiling_cli(
    inputs: Inputs = None,
    k: Annotated[str, typer.Option("--k", "-k", help="Numbers of top-scoring objects, comma-separated.")]
    = "2,5,10,15,20",
    iou: Annotated[str, typer.Option("--iou", help="IoU threshold(s), comma-separated.")] = "0.5",
    by_type: Annotated[bool, typer.Option("--by-type", help="Add rows per coarse type.")] = False,
    markdown: Annotated[Optional[str], typer.Option("--markdown", metavar="FILE", help="Also write a Markdown table here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table on stderr.")] = False,
    on_error: OnError = "fail",
):
    """Grounding ceiling of detected objects (Table I).

    For each K and IoU threshold, the share of
    groundable gold entities with an object among the top K (by score) at IoU >= the threshold. One JSON
    line per (IoU, type, K) on stdout; a table on stderr."""
    from ..metric.ceiling import LAYOUT, Ceiling, ceiling_stream
    from ..core.errors import ErrorPolicy
    from ..core.records import read_records
    from ..metric.tables import emit

    ks, thresholds = _ks(k), _thresholds(iou)
    policy = ErrorPolicy(on_error)
    ceiling = Ceiling(ks=ks, ious=thresholds, by_type=by_type)
    ceiling_stream(read_records(inputs or ["-"], policy), ceiling, policy)
    notes = [f"{ceiling.without_objects} record(s) had no `objects` field (run `vkel detect`): counted as detecting "
             "nothing"] if ceiling.without_objects else []
    emit(ceiling.results(), LAYOUT, title=f"vkel ceiling ({ceiling.records} records, {ceiling.objects} objects)",
         markdown=markdown, quiet=quiet, notes=notes)
    policy.finish()
