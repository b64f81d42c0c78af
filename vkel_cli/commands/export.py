"""`vkel export`: `vkel train`'s examples for LLaVA, LLaMA-Factory or ms-swift."""

from typing import Annotated, Literal, Optional

import typer

from ._options import AllowPrivateUrls, ImageRoot, Inputs, OnError, allow_private


def export_cli(
    inputs: Inputs = None,
    format: Annotated[Literal["llava", "sharegpt", "swift"], typer.Option(
        "--format", help="llava: LLaVA's conversation JSON. sharegpt: LLaMA-Factory's ShareGPT JSONL + its "
        "dataset_info.json entry. swift: ms-swift's messages/images JSONL.")] = "llava",
    output_dir: Annotated[str, typer.Option("--output-dir", metavar="DIR", help="Where the files go (created).")]
    = ...,
    name: Annotated[Optional[str], typer.Option("--name", help="Dataset name: file NAME.json(l) and the "
                                                "dataset_info.json key [default: vkel-stage1, vkel-stage2, "
                                                "vkel-joint].")] = None,
    stage: Annotated[int, typer.Option("--stage", min=1, max=2, help="As `vkel train --stage`.")] = 1,
    joint: Annotated[bool, typer.Option("--joint", help="Both stages' examples from every record.")] = False,
    no_stage1: Annotated[bool, typer.Option("--no-stage1", help="Stage 2 end to end (tweet + image -> triples).")]
    = False,
    noise: Annotated[float, typer.Option("--noise", min=0.0, max=1.0, help="Stage 2: fraction of records whose "
                                         "stage-1 input is perturbed.")] = 0.1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    top_k: Annotated[int, typer.Option("--top-k", min=0, help="Stage 2: objects in the prompt.")] = 5,
    no_knowledge: Annotated[bool, typer.Option("--no-knowledge", help="Stage 2 without visual knowledge.")] = False,
    no_objects: Annotated[bool, typer.Option("--no-objects", help="Stage 2 without detected objects.")] = False,
    image_root: ImageRoot = None,
    allow_private_urls: AllowPrivateUrls = False,
    on_error: OnError = "fail",
):
    """Training examples for LLaVA, LLaMA-Factory or ms-swift.

    The examples `vkel train` would train on (same prompts and targets, same options), in another
    trainer's layout. Reads gold records; writes files under --output-dir, nothing on stdout. Their
    generations come back through `vkel data import vkel-output`."""
    allow_private(allow_private_urls)
    from ..core.errors import ErrorPolicy
    from ..train.export import export
    from ..core.records import read_records
    from ..train.examples import ExampleOptions

    if no_stage1 and stage != 2 and not joint:
        raise typer.BadParameter("--no-stage1 exports stage 2 without stage-1 input: give it with --stage 2",
                                 param_hint="--no-stage1")
    opts = ExampleOptions(stage=stage, joint=joint, noise=noise, seed=seed, top_k=top_k, knowledge=not no_knowledge,
                          objects=not no_objects, image_root=image_root, no_stage1=no_stage1)
    policy = ErrorPolicy(on_error)
    export(read_records(inputs or ["-"], policy), opts, format, output_dir,
           name or ("vkel-joint" if joint else f"vkel-stage{stage}"), policy)
    policy.finish()
