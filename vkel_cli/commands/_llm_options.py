"""Options shared by the commands that call LLMs (knowledge, vote)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

LLMConfig = Annotated[
    Optional[str],
    typer.Option("--llm-config", metavar="FILE", help="TOML file of LLM endpoints ([[llm]] or [llm.NAME] tables; see "
                 "docs/knowledge.md). Default: $VKEL_LLM_CONFIG when no --llm is given."),
]
LLMInline = Annotated[
    Optional[list[str]],
    typer.Option("--llm", help="An LLM inline: NAME=URL,model=M[,key_env=VAR,concurrency=N,PARAM=V] or "
                 "NAME=local:PATH (a transformers model directory). Repeatable; API keys only via key_env."),
]
NoCache = Annotated[
    bool, typer.Option("--no-cache", help="Do not read or write the LLM answer cache ($VKEL_CACHE/llm).")
]
MaxTokens = Annotated[
    Optional[int], typer.Option("--max-tokens", help="max_tokens of each LLM answer (default: the endpoint's).")
]


def request_params(max_tokens: int | None) -> dict:
    return {"max_tokens": max_tokens} if max_tokens else {}
