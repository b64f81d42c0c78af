"""Token ledger: calls and tokens per LLM, for the stderr table at the end of a run and for each
record's meta (paper Table XI reports about 900 tokens per LLM per entity)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

from .base import Completion


@dataclass
class Usage:
    calls: int = 0  # answers that came from the LLM (a cache hit is not a call)
    cached: int = 0  # answers that came from the cache
    failed: int = 0  # requests that failed after every retry
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_unknown: int = 0  # answers whose server reported no usable token counts (not counted above)

    def add(self, completion: Completion) -> None:
        if completion.cached:
            self.cached += 1
        else:
            self.calls += 1
        if completion.prompt_tokens is None or completion.completion_tokens is None:
            self.usage_unknown += 1
        self.prompt_tokens += completion.prompt_tokens or 0
        self.completion_tokens += completion.completion_tokens or 0

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v or k in ("calls", "prompt_tokens", "completion_tokens")}


class Ledger:
    """Thread-safe totals per LLM name. Token counts include cache hits (what the answers cost
    when they were made); `calls` counts only the requests this run actually sent."""

    def __init__(self):
        self._lock = threading.Lock()
        self.usage: dict[str, Usage] = {}

    def register(self, name: str) -> None:
        """List `name` (in configuration order) even before it answers."""
        with self._lock:
            self.usage.setdefault(name, Usage())

    def add(self, name: str, completion: Completion) -> None:
        with self._lock:
            self.usage.setdefault(name, Usage()).add(completion)

    def failed(self, name: str) -> None:
        with self._lock:
            self.usage.setdefault(name, Usage()).failed += 1

    def total_calls(self) -> int:
        with self._lock:
            return sum(u.calls for u in self.usage.values())

    def as_dict(self) -> dict:
        with self._lock:
            return {name: usage.as_dict() for name, usage in self.usage.items()}

    def print_table(self, title: str = "LLM usage") -> None:
        """The totals as a table on stderr (nothing when no LLM was asked)."""
        if not any(u.calls or u.cached or u.failed for u in self.usage.values()):
            return
        from rich.table import Table

        from ...core.progress import stderr_console

        table = Table(title=title, title_justify="left")
        for column in ("LLM", "calls", "cached", "failed", "prompt tok", "completion tok", "tok/answer", "usage?"):
            table.add_column(column, justify="left" if column == "LLM" else "right")
        with self._lock:
            rows = list(self.usage.items())
        if len(rows) > 1:
            total = Usage()
            for _, u in rows:
                for key in ("calls", "cached", "failed", "prompt_tokens", "completion_tokens", "usage_unknown"):
                    setattr(total, key, getattr(total, key) + getattr(u, key))
            rows.append(("total", total))
        for name, u in rows:
            answers = u.calls + u.cached - u.usage_unknown  # those whose tokens are known
            per = f"{(u.prompt_tokens + u.completion_tokens) / answers:.0f}" if answers > 0 else "-"
            table.add_row(name, str(u.calls), str(u.cached), str(u.failed), str(u.prompt_tokens),
                          str(u.completion_tokens), per, str(u.usage_unknown) if u.usage_unknown else "-")
        stderr_console().print(table)


def usage_of(completions: dict[str, list[Completion]]) -> dict:
    """Per-LLM usage of one record's completions, for its meta."""
    out = {}
    for name, items in completions.items():
        usage = Usage()
        for completion in items:
            usage.add(completion)
        out[name] = usage.as_dict()
    return out
