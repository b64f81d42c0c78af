"""Benchmark `vkel knowledge`: 3 loopback OpenAI-compatible endpoints with a fixed 200 ms latency,
100 entities. The wall time is compared with the latency bound for the configured concurrency,
ceil(entities / concurrency) x latency (the endpoints run side by side); then the same run again
from the cache must make zero calls.

    .venv/bin/python benchmarks/bench_knowledge.py [--concurrency 4] [--entities 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from openai_server import OpenAIServer, knowledge_answer  # noqa: E402

from vkel_cli.core.errors import ErrorPolicy  # noqa: E402
from vkel_cli.knowledge.ask import run  # noqa: E402
from vkel_cli.knowledge.llm.config import open_endpoints  # noqa: E402
from vkel_cli.knowledge.llm.ledger import Ledger  # noqa: E402

LATENCY = 0.2


def records(entities: int):
    # Two entities per tweet, every sentence distinct: no cache hits within a run.
    for i in range(0, entities, 2):
        stage1 = [{"text": f"Player{i}", "coarse": "person"}]
        if i + 1 < entities:
            stage1.append({"text": f"Club{i + 1}", "coarse": "organization"})
        yield {"id": f"t{i}", "tokens": f"Player{i} joins Club{i + 1} today".split(), "stage1": stage1}, None


def one_run(servers, concurrency: int, entities: int, cache_dir: str):
    os.environ["VKEL_CACHE"] = cache_dir
    ledger = Ledger()
    inline = [f"m{i}={s.url},model=bench-{i},concurrency={concurrency}" for i, s in enumerate(servers)]
    endpoints = open_endpoints(None, inline, ledger=ledger)
    before = sum(s.calls for s in servers)
    start = time.perf_counter()
    out = list(run(records(entities), ErrorPolicy("fail"), endpoints))
    wall = time.perf_counter() - start
    assert len(out) == math.ceil(entities / 2)
    assert all(len(by_llm) == len(servers) for r in out for by_llm in r["knowledge"].values())
    return wall, sum(s.calls for s in servers) - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--entities", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    servers = [OpenAIServer(answer=knowledge_answer, latency=LATENCY).start() for _ in range(3)]
    bound = math.ceil(args.entities / args.concurrency) * LATENCY
    cold, warm, warm_calls = [], [], []
    try:
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as cache:
                wall, calls = one_run(servers, args.concurrency, args.entities, cache)
                assert calls == 3 * args.entities, calls
                cold.append(wall)
                wall, calls = one_run(servers, args.concurrency, args.entities, cache)
                warm.append(wall)
                warm_calls.append(calls)
    finally:
        for server in servers:
            server.stop()
    ratio = statistics.median(cold) / bound
    print("## `vkel knowledge`: 3 endpoints x 200 ms latency\n")
    print(f"{args.entities} entities, max_concurrency {args.concurrency} per endpoint, median of {args.runs} runs.\n")
    print("| measure | value |\n|---|---|")
    print(f"| latency bound ceil({args.entities}/{args.concurrency}) x 0.2 s | {bound:.2f} s |")
    print(f"| wall time, cold cache (median) | {statistics.median(cold):.2f} s |")
    print(f"| **ratio to the bound** (target <= 1.3) | **{ratio:.2f}x** |")
    print(f"| HTTP calls, cold run | {3 * args.entities} |")
    print(f"| HTTP calls, second run from the cache | {max(warm_calls)} |")
    print(f"| wall time, second run from the cache (median) | {statistics.median(warm):.2f} s |")
    if ratio > 1.3 or max(warm_calls):
        sys.exit(1)


if __name__ == "__main__":
    main()
