"""`torchrun --nproc-per-node N -m vkel_cli predict ...`: every process loads the model, rank 0 reads the
input and writes the output, the records travel between them.

Rank 0 reads N x batch-size records at a time (a stream: stdin works, memory stays bounded), scatters
one batch to each process, runs its own, gathers the finished records and writes them in input order.
Each record is prepared, generated and parsed by the same code as in one process (local.local_outcomes),
so the output is the same bytes. The objects travel through a gloo group (CPU, a few kB a record)
whatever backend the GPUs use. A None in the scatter means "no more records".
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator

from ..core.errors import ErrorPolicy, VkelError
from ..core.records import batched
from .local import LocalGenerator, local_outcomes


def world_size() -> int:
    """The number of processes torchrun started (1 outside torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _group():
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
        return None  # the default group, gloo
    if dist.get_backend() == "gloo":
        return None
    return dist.new_group(backend="gloo")  # object collectives on CPU beside an NCCL training group


def predict_distributed(opts, pairs: Iterable, policy: ErrorPolicy, generator=None) -> Iterator[dict[str, Any]]:
    """run._local over torchrun's processes; rank 0 yields every record in input order, the others
    yield nothing (and never read `pairs`)."""
    import torch.distributed as dist

    group = _group()
    size, me = dist.get_world_size(group), dist.get_rank(group)
    batch = max(1, opts.batch_size)
    generator = generator or LocalGenerator(opts)

    def run(records: list[dict[str, Any]]) -> list:
        outcomes = local_outcomes(generator, records, opts)
        return [(record, None if err is None else (err.message, err.where)) for record, err in outcomes]

    def exchange(slices: list | None):
        """Scatter one slice to each rank (None from the others), run ours, gather the results on rank 0."""
        mine = [None]
        dist.scatter_object_list(mine, slices, src=0, group=group)
        if mine[0] is None:
            return None
        results = run(mine[0])
        gathered = [None] * size if me == 0 else None
        dist.gather_object(results, gathered, dst=0, group=group)
        return gathered if me == 0 else []

    if me != 0:
        while exchange(None) is not None:
            pass
        return
    try:
        for chunk in batched((record for record, _where in pairs), batch * size):
            # A short last chunk leaves some ranks an empty slice: they run nothing but take part.
            gathered = exchange([chunk[i * batch:(i + 1) * batch] for i in range(size)])
            for results in gathered:
                for record, error in results:
                    if error is not None:
                        policy.handle(VkelError(*error))
                    yield record
    finally:
        dist.scatter_object_list([None], [None] * size, src=0, group=group)  # stop the other ranks
