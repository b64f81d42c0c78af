"""`vkel knowledge`: visual knowledge about each entity from several LLMs."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import typer

from ._llm_options import LLMConfig, LLMInline, MaxTokens, NoCache, request_params
from ._options import Inputs, OnError, Output


def knowledge_cli(
    inputs: Inputs = None,
    output: Output = "-",
    on_error: OnError = "fail",
    llm_config: LLMConfig = None,
    llm: LLMInline = None,
    source: Annotated[
        Literal["auto", "stage1", "gold"],
        typer.Option("--from",
                     help="Entities from `stage1` (test time) or gold `entities` (training). auto: stage1 when "
                     "the record has it, else entities."),
    ] = "auto",
    templates: Annotated[
        Optional[str], typer.Option("--templates", metavar="FILE", help="JSON file of prompt templates overriding the shipped ones "
                                    "(same format; types it lists replace the shipped ones).")
    ] = None,
    only: Annotated[
        Optional[list[str]], typer.Option("--only", help="Ask only this configured LLM (repeatable), e.g. for "
                                          "single-LLM knowledge (the paper's Table X).")
    ] = None,
    no_cache: NoCache = False,
    max_tokens: MaxTokens = None,
):
    """Ask several LLMs how each entity looks.

    Every configured LLM answers; writes knowledge[entity][llm name].

    Calls run concurrently (bounded per LLM); answers are cached, so a re-run or a resumed run makes
    no repeated calls. A token ledger is printed on stderr at the end."""
    from ..knowledge import ask as knowledge
    from ..knowledge.llm.config import open_endpoints
    from ..knowledge.llm.ledger import Ledger
    from ._options import run_stage

    ledger = Ledger()
    endpoints = open_endpoints(llm_config, llm, use_cache=not no_cache, ledger=ledger, only=only)
    table = knowledge.load_templates(templates)
    try:
        run_stage(inputs, output, on_error,
                  lambda pairs, policy: knowledge.run(pairs, policy, endpoints, table, source,
                                                      request_params(max_tokens)))
    finally:
        ledger.print_table("LLM usage (knowledge)")
