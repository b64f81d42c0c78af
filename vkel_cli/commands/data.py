"""`vkel data`: import benchmark and other formats as records; corpus statistics."""

from typing import Annotated, Literal, Optional

import typer

from ._options import ImageRoot, Inputs, OnError, Output

app = typer.Typer(help="Import datasets as records; corpus statistics.", no_args_is_help=True)
import_app = typer.Typer(help="Turn a dataset file into records (JSONL on stdout).", no_args_is_help=True)
app.add_typer(import_app, name="import")

XmlDir = Annotated[
    Optional[str], typer.Option("--xml-dir", metavar="DIR", help="Twitter-GMNER v2 Pascal-VOC XML files (<IMGID>.xml).")
]


def _write(records, output: str) -> None:
    from ..core.records import open_output

    with open_output(output) as writer:
        writer.write_all(records)


def _import_benchmark(which: str, txt: str, xml_dir, image_root, output: str, on_error: str) -> None:
    from ..data.benchmark import BenchmarkCounts, import_fmnerg, import_gmner
    from ..core.errors import ErrorPolicy
    from ..core.progress import log

    policy = ErrorPolicy(on_error)
    counts = BenchmarkCounts()
    reader = import_fmnerg if which == "fmnerg" else import_gmner
    _write(reader(txt, xml_dir, image_root, policy=policy, counts=counts), output)
    log(counts.summary(which, xml_dir))
    policy.finish()


@import_app.command("fmnerg")
def fmnerg_cli(
    txt: Annotated[str, typer.Argument(metavar="FILE", help="Fine-grained CoNLL file (token, coarse BIO, fine BIO); '-' for stdin.")],
    xml_dir: XmlDir = None,
    image_root: ImageRoot = None,
    output: Output = "-",
    on_error: OnError = "fail",
):
    """Import the FMNERG benchmark (fine-grained CoNLL + XML boxes).

    Each tweet becomes a record with its entities, coarse and fine types and pixel boxes."""
    _import_benchmark("fmnerg", txt, xml_dir, image_root, output, on_error)


@import_app.command("gmner")
def gmner_cli(
    txt: Annotated[str, typer.Argument(metavar="FILE", help="Coarse GMNER CoNLL file (token, BIO of PER/LOC/ORG/OTHER).")],
    xml_dir: XmlDir = None,
    image_root: ImageRoot = None,
    output: Output = "-",
    on_error: OnError = "fail",
):
    """Import Twitter-GMNER (coarse CoNLL + XML boxes).

    Records as for fmnerg, with fine types null."""
    _import_benchmark("gmner", txt, xml_dir, image_root, output, on_error)


@import_app.command("vkel-output")
def vkel_output_cli(
    file: Annotated[str, typer.Argument(metavar="FILE", help="JSONL of generations with an `output` field, one per gold record.")],
    gold: Annotated[str, typer.Option("--gold", metavar="FILE", help="The gold records, in the same order.")],
    stage: Annotated[
        Literal["auto", "1", "2"], typer.Option("--stage", help="Which sequence format; auto decides per line.")
    ] = "auto",
    image_root: ImageRoot = None,
    output: Output = "-",
    on_error: OnError = "fail",
):
    """Import LLaVA generations beside the gold records.

    Generations of the original VKEL (LLaVA) code; each gold record gets `stage1` or `predictions`
    (parse notes in meta)."""
    from ..data.vkel_output import import_outputs
    from ..core.errors import ErrorPolicy

    policy = ErrorPolicy(on_error)
    _write(import_outputs(file, gold, stage, image_root, policy=policy), output)
    policy.finish()


from .data_figer import figer_cli  # noqa: E402  (FIGER importer, written by the augment stage)
from .data_peers import e2e_gmner_cli, riveg_cli  # noqa: E402  (other systems' prediction files)

import_app.command("figer")(figer_cli)
import_app.command("e2e-gmner")(e2e_gmner_cli)
import_app.command("riveg")(riveg_cli)


@app.command("stats")
def stats_cli(inputs: Inputs = None, on_error: OnError = "fail"):
    """Corpus statistics as one JSON line.

    tweets, entities, groundable, boxes, by_coarse (the paper's Table II/III)."""
    import orjson

    from ..data.stats import stats
    from ..core.errors import ErrorPolicy
    from ..core.records import read_records

    policy = ErrorPolicy(on_error)
    result = stats(record for record, _ in read_records(inputs or ["-"], policy))
    print(orjson.dumps(result).decode(), flush=True)
    policy.finish()
