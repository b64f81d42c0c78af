"""`vkel report`: a self-contained HTML page for error analysis."""

from typing import Annotated, Literal, Optional

import typer

from ._options import ImageRoot, Inputs, OnError
from .score import _thresholds


def report_cli(
    inputs: Inputs = None,
    output: Annotated[str, typer.Option("--output", "-o", metavar="FILE", help="The HTML file to write (atomically).")]
    = "report.html",
    image_root: ImageRoot = None,
    link_images: Annotated[bool, typer.Option(
        "--link-images", help="Link images (relative to the report's folder) instead of embedding them: a "
        "smaller file that needs the images beside it.")] = False,
    iou: Annotated[float, typer.Option("--iou", help="IoU threshold of the main table and of the cards' marks.",
                                       min=0.0, max=1.0)] = 0.5,
    iou_sweep: Annotated[str, typer.Option("--iou-sweep", help="Thresholds of the sweep table, comma-separated.")]
    = "0.1,0.3,0.5,0.7,0.9,1.0",
    level: Annotated[Literal["fine", "coarse"], typer.Option("--level", help="Type granularity compared.")] = "fine",
    ignore_case: Annotated[bool, typer.Option("--ignore-case", help="Compare entity texts case-insensitively.")]
    = False,
    pred_field: Annotated[str, typer.Option("--pred-field", help="Field holding the predictions.")] = "predictions",
    max_width: Annotated[int, typer.Option("--max-width", help="Display width of each image, in pixels "
                                           "(embedded images are downscaled to it).", min=32)] = 480,
    title: Annotated[str, typer.Option("--title", help="The page's title.")] = "vkel report",
    on_error: OnError = "fail",
):
    """Write one self-contained HTML page for error analysis.

    The page holds score tables (tasks x types, IoU sweep), a
    fine-type confusion matrix, an IoU histogram, and one card per tweet with gold and predicted boxes
    drawn on its image and each entity marked correct / wrong type / wrong box / missed / spurious
    (filterable). Reads records with gold `entities` and `predictions`; writes nothing on stdout."""
    import os

    from ..core.errors import ErrorPolicy
    from ..core.progress import log
    from ..core.records import read_records
    from ..report.cards import ImageOptions
    from ..report.page import ReportOptions, build_report

    if not 0 < iou <= 1:
        raise typer.BadParameter("the IoU threshold must lie in (0, 1]", param_hint="--iou")
    images = ImageOptions(image_root=image_root, link=link_images, max_width=max_width,
                          report_dir=os.path.dirname(os.path.abspath(output)))
    opts = ReportOptions(iou=iou, sweep=tuple(_thresholds(iou_sweep)), level=level, ignore_case=ignore_case,
                         pred_field=pred_field, title=title, images=images)
    policy = ErrorPolicy(on_error)
    counts = build_report(read_records(inputs or ["-"], policy), output, opts, policy)
    log(f"{output}: {counts.records} tweet(s), {counts.images_shown} image(s) "
        f"{'linked' if link_images else 'embedded'}, {counts.images_missing} shown as an empty frame")
    if counts.without_predictions:
        log(f"{counts.without_predictions} record(s) had no `{pred_field}` field: shown as predicting nothing")
    policy.finish()
