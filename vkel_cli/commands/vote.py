"""`vkel vote`: reconcile the LLMs' knowledge into visual_knowledge."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import typer

from ._llm_options import LLMConfig, LLMInline, MaxTokens, NoCache, request_params
from ._options import Inputs, OnError, Output


def vote_cli(
    inputs: Inputs = None,
    output: Output = "-",
    on_error: OnError = "fail",
    method: Annotated[
        Literal["llm", "majority"],
        typer.Option("--method",
                     help="llm: a voter LLM votes per aspect, then summarises. majority: offline token-overlap "
                     "vote per aspect, summary by joining."),
    ] = "llm",
    voter: Annotated[
        Optional[str], typer.Option("--voter", help="Name of the configured LLM that votes (default: the first).")
    ] = None,
    llm_config: LLMConfig = None,
    llm: LLMInline = None,
    templates: Annotated[
        Optional[str], typer.Option("--templates", metavar="FILE", help="The --templates file given to `vkel knowledge`, if any.")
    ] = None,
    no_cache: NoCache = False,
    max_tokens: MaxTokens = None,
):
    """Reconcile the LLMs' answers into visual knowledge.

    knowledge[entity][llm] -> visual_knowledge[entity] (votes kept in meta.vote)."""
    from ..knowledge import vote
    from ..core.errors import VkelError
    from ..knowledge.ask import load_templates
    from ..knowledge.llm.config import open_endpoints, resolve
    from ..knowledge.llm.ledger import Ledger
    from ._options import run_stage

    ledger = Ledger()
    endpoint = None
    if method == "llm":
        specs = resolve(llm_config, llm)
        chosen = [s for s in specs if s.name == voter] if voter else specs[:1]
        if not chosen:
            raise VkelError(f"--voter {voter!r} is not a configured LLM (configured: "
                            f"{', '.join(s.name for s in specs)})")
        endpoint = open_endpoints(None, None, use_cache=not no_cache, ledger=ledger, specs=chosen)[0]
    table = load_templates(templates)
    try:
        run_stage(inputs, output, on_error,
                  lambda pairs, policy: vote.run(pairs, policy, method, endpoint, table, request_params(max_tokens)))
    finally:
        ledger.print_table("LLM usage (vote)")
