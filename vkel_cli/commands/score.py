"""`vkel score`: FMNERG / FMNER / EEG precision, recall and F1."""

from typing import Annotated, Literal, Optional

import typer

from ._options import Inputs, OnError


def _thresholds(value: str) -> list[float]:
    try:
        values = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated numbers, got {value!r}") from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise typer.BadParameter("IoU thresholds must lie in (0, 1]")
    return values


def score_cli(
    inputs: Inputs = None,
    gold: Annotated[Optional[str], typer.Option("--gold", metavar="FILE", help="Gold records; then inputs are predictions "
                                                "joined by `id`.")] = None,
    pred_field: Annotated[str, typer.Option("--pred-field", help="Field holding the predictions "
                                            "(`predictions`, or `stage1`).")] = "predictions",
    level: Annotated[Optional[Literal["fine", "coarse"]], typer.Option(
        "--level", help="Type granularity compared [default: fine; coarse for --pred-field stage1].")] = None,
    iou: Annotated[str, typer.Option("--iou", help="IoU threshold(s), comma-separated "
                                     "(e.g. 0.1,0.3,0.5,0.7,0.9,1.0).")] = "0.5",
    by_type: Annotated[bool, typer.Option("--by-type", help="Add rows per coarse type.")] = False,
    ignore_case: Annotated[bool, typer.Option("--ignore-case", help="Compare entity texts case-insensitively.")] = False,
    markdown: Annotated[Optional[str], typer.Option("--markdown", metavar="FILE", help="Also write a Markdown table here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table on stderr.")] = False,
    on_error: OnError = "fail",
):
    """FMNERG/FMNER/EEG precision, recall and F1.

    Scores predictions against gold: one JSON line per task, IoU threshold and type on stdout;
    a table on stderr. `man vkel-score` defines the metric."""
    from ..core.errors import ErrorPolicy
    from ..core.records import read_records
    from ..metric.score import Scorer, load_gold, score_stream
    from ..metric.tables import SCORE, emit

    thresholds = _thresholds(iou)
    level = level or ("coarse" if pred_field == "stage1" else "fine")
    policy = ErrorPolicy(on_error)
    scorer = Scorer(level=level, ious=thresholds, by_type=by_type, ignore_case=ignore_case)
    gold_entities = load_gold(gold, policy) if gold else None
    stats = score_stream(read_records(inputs or ["-"], policy), scorer, pred_field, gold_entities, policy)
    notes = []
    if stats["without_predictions"]:
        notes.append(f"{stats['without_predictions']} record(s) had no `{pred_field}` field: scored as predicting "
                     "nothing")
    if stats["unseen_gold"]:
        notes.append(f"{stats['unseen_gold']} gold record(s) had no usable prediction record: scored as predicting "
                     "nothing")
    emit(scorer.results(), SCORE, title=f"vkel score ({level} types, {stats['records']} records)",
         markdown=markdown, quiet=quiet, notes=notes)
    policy.finish()
