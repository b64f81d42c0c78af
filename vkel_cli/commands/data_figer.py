"""`vkel data import figer`: text-only fine-grained NER (FIGER) -> records for `vkel augment`."""

from typing import Annotated, Optional

import typer

from ._options import OnError, Output


def figer_cli(
    file: Annotated[str, typer.Argument(metavar="FILE", help="FIGER CoNLL (`token<TAB>B-/type,/type2`) or JSONL (tokens + "
                                             "entities with `types`); '-' for stdin; .gz read transparently.")],
    type_map: Annotated[Optional[str], typer.Option(
        "--type-map", metavar="FILE", help="JSON mapping FIGER types to coarse/fine types (default: the shipped map).")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1,
                                            help="Drop sentences longer than this many tokens.")] = 26,
    id_prefix: Annotated[str, typer.Option("--id-prefix", help="Record ids are PREFIX-<sentence number>.")] = "figer",
    output: Output = "-",
    on_error: OnError = "fail",
):
    """Import FIGER text-only NER as records for vkel augment.

    FIGER types are mapped to the 8/51 types; image null, boxes []; drop counts on stderr."""
    from ..data.figer import ImportCounts, import_figer, load_type_map
    from ..core.errors import ErrorPolicy
    from ..core.progress import log
    from ..core.records import open_output

    policy = ErrorPolicy(on_error)
    counts = ImportCounts()
    mapping = load_type_map(type_map)
    with open_output(output) as writer:
        writer.write_all(import_figer(file, mapping, max_tokens=max_tokens, id_prefix=id_prefix,
                                      policy=policy, counts=counts))
    log(counts.summary(max_tokens))
    policy.finish()
