"""The census cases that need servers, signals or training: secrets, LLM answers, deadlines and hangs, the
address and path policy, Ctrl-C, and the training run directory."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time

from attack_cases import case, llm_server
from attack_harness import KEY, Context, good, jsonl, kill_group, write_images

KEYED = {"CENSUS_KEY": KEY}


def _stage1(i: int, **extra) -> dict:
    return dict({"id": f"t{i}", "tokens": ["Visit", f"Town{i}"], "stage1": [{"text": f"Town{i}", "coarse": "location"}]},
                **extra)


def _knowledge(ctx: Context, server, *extra, env=None, stdin=None, opts=",retries=0", timeout=30):
    records = stdin if stdin is not None else jsonl([_stage1(i) for i in range(4)])
    return ctx.vkel("knowledge", "--llm", f"m={server.url},model=m,key_env=CENSUS_KEY{opts}", *extra,
                    stdin=records, env=dict(KEYED, **(env or {})), timeout=timeout)


# -- secrets --------------------------------------------------------------------------------------------------
def _echo_error(request, status=500):
    """Record TownN fails with an error body whose key starts at 150 + 6N: across the records the key
    lies before, across and after a cut near 200 characters (wherever the message adds its prefix)."""
    import re

    from openai_server import Reply, knowledge_answer

    n = int(re.search(r"Town(\d+)", json.dumps(request)).group(1))
    if n > 0:
        return Reply(status=status, body=b"." * (150 + 6 * n) + KEY.encode() + b"." * 300)
    return knowledge_answer(request)


STRADDLE = jsonl([_stage1(i) for i in range(14)])
ALL = [f"t{i}" for i in range(14)]


@case("secrets", "key straddling the cut of an error body (fail: first error)")
def key_cut_fail(ctx: Context):
    server = llm_server(ctx, answer=_echo_error, api_key=KEY)
    return ctx.judge(_knowledge(ctx, server, "--no-cache", stdin=jsonl([_stage1(8)])), rc=(1,))


@case("secrets", "key at 13 offsets around the cut, skip, VKEL_DEBUG=1: stderr, stdout")
def key_cut_debug(ctx: Context):
    server = llm_server(ctx, answer=_echo_error, api_key=KEY)
    r = _knowledge(ctx, server, "--no-cache", "--on-error", "skip", env={"VKEL_DEBUG": "1"}, stdin=STRADDLE)
    return ctx.judge(r, rc=(1,), good=ALL)


@case("secrets", "key at 13 offsets around the cut of a 4xx body, skip: meta.errors in -o")
def key_cut_skip(ctx: Context):
    server = llm_server(ctx, answer=lambda req: _echo_error(req, 400), api_key=KEY)
    r = _knowledge(ctx, server, "--on-error", "skip", "-o", "out.jsonl", stdin=STRADDLE)
    ctx.runs[-1].out = (ctx.dir / "out.jsonl").read_bytes() if (ctx.dir / "out.jsonl").exists() else b""
    return ctx.judge(r, rc=(1,), good=ALL)


@case("secrets", "key echoed in successful answers: stdout, -o, cache, re-run from cache")
def key_in_answer(ctx: Context):
    from openai_server import Reply, knowledge_answer

    b64 = base64.b64encode(KEY.encode()).decode()

    def answer(request):
        text = knowledge_answer(request)
        return Reply(content=text[:-1] + f', "note": "asked with {KEY} ({b64})"}}', headers={"X-Echo": f"Bearer {KEY}"})

    server = llm_server(ctx, answer=answer, api_key=KEY)
    first = _knowledge(ctx, server, "-o", "out.jsonl", env={"VKEL_DEBUG": "1"})
    again = _knowledge(ctx, server)  # from the cache, to stdout
    return ctx.judge([first, again], rc=(0,), good=["t0", "t1", "t2", "t3"])


@case("secrets", "key in the answer's id/model fields and headers of a 500, VKEL_DEBUG=1")
def key_in_fields(ctx: Context):
    from openai_server import Reply, knowledge_answer

    def answer(request):
        if "Town1" in json.dumps(request):
            return Reply(status=503, headers={"X-Echo": f"Bearer {KEY}", "Retry-After": "0"},
                         body=json.dumps({"error": {"message": "busy", "auth": f"Bearer {KEY}"}}).encode())
        body = {"id": KEY, "object": "chat.completion", "model": f"m-{KEY}", "system_fingerprint": KEY,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": knowledge_answer(request)},
                             "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
        return Reply(body=json.dumps(body).encode(), headers={"X-Echo": f"Bearer {KEY}"})

    server = llm_server(ctx, answer=answer, api_key=KEY)
    r = _knowledge(ctx, server, "--on-error", "skip", env={"VKEL_DEBUG": "1"})
    return ctx.judge(r, rc=(1,), good=["t0", "t1", "t2", "t3"])


@case("secrets", "predict --engine openai: key echoed in the answer and in an error")
def key_in_predict(ctx: Context):
    from openai_server import Reply

    def answer(request):
        if "Town1" in json.dumps(request):
            return Reply(status=400, body=b"x" * 185 + f" bad key {KEY}".encode())
        return f"Town <location> (auth {KEY})"

    server = llm_server(ctx, answer=answer, api_key=KEY)
    write_images(ctx.dir, ["img.jpg"])
    recs = [dict(_stage1(i), image="img.jpg") for i in range(3)]
    r = ctx.vkel("predict", "--stage", "1", "--engine", "openai", "--base-url", server.url, "--served-model", "m",
                 "--api-key-env", "CENSUS_KEY", "--image-root", ".", "--on-error", "skip", "-o", "out.jsonl",
                 stdin=jsonl(recs), env=dict(KEYED, VKEL_DEBUG="1"))
    ctx.runs[-1].out = (ctx.dir / "out.jsonl").read_bytes() if (ctx.dir / "out.jsonl").exists() else b""
    return ctx.judge(r, rc=(1,), good=["t0", "t1", "t2"])


@case("secrets", "augment --retriever google: search API 403 echoing the key", heavy=True)
def key_in_search(ctx: Context):
    from image_server import ImageServer

    srv = ctx.server(ImageServer())
    srv.search_status = 403
    clip = ctx.shared.tiny("clip")
    r = ctx.vkel("augment", "--search-url", srv.url + "/customsearch/v1", "--clip-model", clip, "--on-error", "skip",
                 "--retries", "0", "--image-dir", "imgs", "-o", "out.jsonl", stdin=jsonl([good(1, image=None)]),
                 env={"VKEL_GOOGLE_API_KEY": KEY, "VKEL_GOOGLE_CSE_ID": "cse", "VKEL_DEBUG": "1"}, timeout=180)
    return ctx.judge(r, rc=(0, 1))


# -- LLM answers ---------------------------------------------------------------------------------------------
def _usage_case(usage):
    def run(ctx: Context):
        from openai_server import Reply, knowledge_answer

        def answer(request):
            body = {"id": "x", "object": "chat.completion", "model": "m", "usage": usage,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": knowledge_answer(request)},
                                 "finish_reason": "stop"}]}
            return Reply(body=json.dumps(body).encode())

        server = llm_server(ctx, answer=answer)
        r = _knowledge(ctx, server, "--on-error", "skip")
        answered = [x["id"] for x in r.records() if (x.get("knowledge") or {}).get("Town0" if x["id"] == "t0" else
                                                                                   f"Town{x['id'][1:]}")]
        lost = None if len(answered) == 4 else f"answers kept for {answered} of t0..t3; rc {r.rc}; {r.err[-150:]}"
        return ctx.judge(r, rc=(0,), good=["t0", "t1", "t2", "t3"], lost=lost)
    return run


for _name, _usage in (("a string", "many"), ("prompt_tokens a string", {"prompt_tokens": "many", "completion_tokens": 2}),
                      ("a list", [1, 2]), ("negative/float counts", {"prompt_tokens": -3, "completion_tokens": 2.5})):
    case("malformed LLM usage", f"usage is {_name}")(_usage_case(_usage))


# -- deadlines and hangs -------------------------------------------------------------------------------------
@case("deadlines and hangs", "LLM trickling 1 byte/s, timeout=3: the others do not wait")
def llm_trickle(ctx: Context):
    from openai_server import Reply, knowledge_answer

    def answer(request):
        if "Town1" in json.dumps(request):
            return Reply(content=knowledge_answer(request), trickle=1.0)
        return knowledge_answer(request)

    server = llm_server(ctx, answer=answer)
    r = _knowledge(ctx, server, "--on-error", "skip", opts=",retries=0,timeout=3,concurrency=2", timeout=30)
    return ctx.judge(r, rc=(1,), good=["t0", "t1", "t2", "t3"], deadline=12, where=("t1", "Town1"))


def _predict_urls(ctx: Context, images: list[str | None], env=None, timeout=45, root="."):
    server = llm_server(ctx, answer=lambda req: "Town <location>")
    recs = [dict(_stage1(i), image=image) for i, image in enumerate(images)]
    r = ctx.vkel("predict", "--stage", "1", "--engine", "openai", "--base-url", server.url, "--served-model", "m",
                 "--image-root", root, "--on-error", "skip", stdin=jsonl(recs), env=env, timeout=timeout)
    return r, server


@case("deadlines and hangs", "record image URL trickling 1 byte/s (predict, default 30 s deadline)")
def image_trickle_predict(ctx: Context):
    from image_server import ImageServer

    srv = ctx.server(ImageServer())
    url = srv.image("/slow.jpg", "red")
    srv.trickle["/slow.jpg"] = 1.0
    write_images(ctx.dir, ["img.jpg"])
    r, _ = _predict_urls(ctx, ["img.jpg", url, "img.jpg"], env={"VKEL_ALLOW_PRIVATE_URLS": "1"}, timeout=50)
    return ctx.judge(r, rc=(1,), good=["t0", "t1", "t2"], deadline=42, where=("t1",))


@case("deadlines and hangs", "augment --retriever urls: candidate trickling 1 byte/s, --timeout 3", heavy=True)
def image_trickle_augment(ctx: Context):
    from image_server import ImageServer

    srv = ctx.server(ImageServer())
    slow, fine = srv.image("/slow.jpg", "red"), srv.image("/fine.jpg", "blue")
    srv.trickle["/slow.jpg"] = 1.0
    ctx.write("index.tsv", f"r1\t{slow}\nr2\t{fine}\n")
    r = ctx.vkel("augment", "--retriever", "urls", "--index", "index.tsv", "--clip-model", ctx.shared.tiny("clip"),
                 "--threshold", "-1", "--timeout", "3", "--retries", "0", "--image-dir", "imgs", "--on-error", "skip",
                 stdin=jsonl([good(1, image=None), good(2, image=None)]), env={"VKEL_ALLOW_PRIVATE_URLS": "1"},
                 timeout=100)
    return ctx.judge(r, rc=(0, 1), good=["r2"])


@case("deadlines and hangs", "a FIFO given as an image (predict)")
def fifo_image(ctx: Context):
    write_images(ctx.dir, ["img.jpg"])
    os.mkfifo(ctx.dir / "fifo.jpg")
    r, _ = _predict_urls(ctx, ["img.jpg", "fifo.jpg", "img.jpg"], timeout=25)
    return ctx.judge(r, rc=(1,), good=["t0", "t2"], where=("t1", "fifo"))


@case("deadlines and hangs", "huge 5xx body (300 MB) for a record image, with retries (predict)")
def huge_error_body(ctx: Context):
    from image_server import ImageServer

    srv = ctx.server(ImageServer())
    srv.streams["/huge.jpg"] = (503, {"Content-Type": "text/plain", "Retry-After": "0"}, 300_000_000)
    write_images(ctx.dir, ["img.jpg"])
    r, _ = _predict_urls(ctx, ["img.jpg", srv.url + "/huge.jpg"], env={"VKEL_ALLOW_PRIVATE_URLS": "1"}, timeout=90)
    read = sum(srv.sent.get("/huge.jpg", []))
    wrong = None if read < 50_000_000 else f"{read / 1e6:.0f} MB of error bodies read over {len(srv.sent['/huge.jpg'])} tries"
    return ctx.judge(r, rc=(1,), good=["t0", "t1"], wrong=wrong)


# -- signals --------------------------------------------------------------------------------------------------
def _signal_case(signum: int, expect: int):
    def run(ctx: Context):
        server = llm_server(ctx, latency=30)
        ctx.write("in.jsonl", jsonl([_stage1(i) for i in range(6)]))
        proc = ctx.spawn(["knowledge", "--llm", f"m={server.url},model=m,concurrency=3,retries=0", "-o", "out.jsonl",
                          "in.jsonl"])
        proc.stdin.close()
        proc.stdin = None
        deadline = time.monotonic() + 40
        while server.calls < 1 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3)
        sent = time.monotonic()
        os.killpg(proc.pid, signum)
        from attack_harness import Run

        try:
            out, err = proc.communicate(timeout=10)
            run = Run(proc.returncode, out, err.decode("utf-8", "replace"), time.monotonic() - sent, False)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            run = Run(None, out, err.decode("utf-8", "replace"), time.monotonic() - sent, True)
        ctx.runs.append(run)
        left = sorted(p.name for p in ctx.dir.iterdir() if p.name not in ("in.jsonl", "cache"))
        lost = None if not left else f"left behind: {left}"
        return ctx.judge(run, rc=(expect,), deadline=2.5, lost=lost)
    return run


case("signals", "SIGINT with 3 LLM calls in flight, -o")(_signal_case(signal.SIGINT, 130))
case("signals", "SIGTERM with 3 LLM calls in flight, -o")(_signal_case(signal.SIGTERM, 143))


# -- address and path policy ------------------------------------------------------------------------------------
def _policy_case(host: str):
    def run(ctx: Context):
        from image_server import ImageServer

        srv = ctx.server(ImageServer())
        srv.image("/x.jpg", "red")
        port = srv.url.rsplit(":", 1)[1]
        write_images(ctx.dir, ["img.jpg"])
        r, _ = _predict_urls(ctx, ["img.jpg", f"http://{host}:{port}/x.jpg", "img.jpg"])
        if srv.hits["/x.jpg"]:
            return ctx.judge(r, good=["t0", "t1", "t2"], wrong=f"fetched http://{host}:{port}/x.jpg without opt-in")
        return ctx.judge(r, rc=(1,), good=["t0", "t1", "t2"], where=("t1",))
    return run


for _host in ("127.0.0.1", "localhost", "2130706433", "[::ffff:127.0.0.1]"):
    case("address and path policy", f"record image URL on {_host} without opt-in (predict)")(_policy_case(_host))


@case("address and path policy", "redirect (302) from a loopback URL to another loopback path, without opt-in")
def redirect_loopback(ctx: Context):
    from image_server import ImageServer

    srv = ctx.server(ImageServer())
    target = srv.image("/inner.jpg", "red")
    srv.files["/hop"] = (302, {"Location": target}, b"")
    write_images(ctx.dir, ["img.jpg"])
    r, _ = _predict_urls(ctx, ["img.jpg", srv.url + "/hop"])
    if srv.hits["/inner.jpg"] or srv.hits["/hop"]:
        return ctx.judge(r, good=["t0", "t1"], wrong=f"hits without opt-in: {dict(srv.hits)}")
    return ctx.judge(r, rc=(1,), good=["t0", "t1"], where=("t1",))


@case("address and path policy", "augment --retriever urls: loopback candidate without opt-in", heavy=True)
def augment_loopback(ctx: Context):
    from image_server import ImageServer

    srv = ctx.server(ImageServer())
    ctx.write("index.tsv", f"r1\t{srv.image('/a.jpg', 'red')}\n")
    r = ctx.vkel("augment", "--retriever", "urls", "--index", "index.tsv", "--clip-model", ctx.shared.tiny("clip"),
                 "--threshold", "-1", "--retries", "0", "--image-dir", "imgs", "--on-error", "skip",
                 stdin=jsonl([good(1, image=None)]), timeout=150)
    if srv.hits["/a.jpg"]:
        return ctx.judge(r, wrong="fetched a loopback candidate without opt-in")
    return ctx.judge(r, rc=(0, 1), where=("loopback", "private", "blocked"))


@case("address and path policy", "image path ../secret.jpg climbing out of --image-root (predict)")
def path_climb(ctx: Context):
    write_images(ctx.dir, ["secret.jpg"])
    write_images(ctx.dir / "root", ["img.jpg"])
    r, server = _predict_urls(ctx, ["img.jpg", "../secret.jpg"], root="root")
    sent = sum("image_url" in json.dumps(q["body"]) and "Town1" in json.dumps(q["body"]) for q in server.requests)
    if sent:
        return ctx.judge(r, good=["t0", "t1"], wrong="../secret.jpg (outside --image-root) read and sent to the LLM")
    return ctx.judge(r, rc=(1,), good=["t0", "t1"], where=("t1",))


# -- the training run directory ---------------------------------------------------------------------------------
def _train(ctx: Context, run: str, data: str, *extra, timeout=240):
    return ctx.vkel("train", "--stage", "1", "--model", ctx.shared.tiny("llava"), "--output-dir", run,
                    "--max-steps", "2", "--save-steps", "1", "--logging-steps", "1", "--device", "cpu",
                    "--image-root", ctx.shared.root / "train-data", *extra, data, timeout=timeout)


@case("training runs", "train --overwrite that fails mid-way keeps the old run", heavy=True)
def overwrite_fails(ctx: Context):
    shutil.copytree(ctx.shared.base_run(), ctx.dir / "run")
    before = (ctx.dir / "run" / "adapter_model.safetensors").read_bytes()
    recs = [good(1, image="a.jpg"), good(2, image="missing.jpg"), good(3, image="c.jpg")]
    ctx.write("bad.jsonl", jsonl(recs))
    r = _train(ctx, str(ctx.dir / "run"), "bad.jsonl", "--overwrite")
    adapter = ctx.dir / "run" / "adapter_model.safetensors"
    lost = None if adapter.exists() and adapter.read_bytes() == before else "the previous run's adapter is gone"
    return ctx.judge(r, rc=(1,), lost=lost, where=("missing.jpg", "'r2'"))


@case("training runs", "--resume after the newest checkpoint was cut mid-save", heavy=True)
def resume_cut(ctx: Context):
    run = ctx.dir / "run"
    shutil.copytree(ctx.shared.base_run(), run)
    for name in os.listdir(run):  # killed during the save of checkpoint-2: no final adapter, a partial checkpoint
        if not name.startswith("checkpoint-") and name not in ("train_args.json", "metrics.jsonl"):
            path = run / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    cut = run / "checkpoint-2"
    for name in os.listdir(cut):
        if name in ("trainer_state.json", "scheduler.pt", "rng_state.pth"):
            (cut / name).unlink()
    optimizer = cut / "optimizer.pt"
    if optimizer.exists():
        optimizer.write_bytes(optimizer.read_bytes()[: optimizer.stat().st_size // 2])
    r = _train(ctx, str(run), str(ctx.shared.root / "train-data" / "train.jsonl"), "--resume")
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()] \
        if (run / "metrics.jsonl").exists() else []
    steps = [row.get("step") for row in rows if "loss" in row]  # the training-loss rows (not the end-of-run summary)
    if r.rc == 0 and not (run / "adapter_model.safetensors").exists():
        return ctx.judge(r, lost="exit 0 without an adapter")
    wrong = None if len(steps) == len(set(steps)) else f"metrics.jsonl repeats steps: {steps}"
    return ctx.judge(r, rc=(0,), wrong=wrong)


@case("training runs", "train --on-error skip with a zero-byte image", heavy=True)
def train_zero_byte(ctx: Context):
    write_images(ctx.dir / "imgs", ["a.jpg", "c.jpg"])
    ctx.write("imgs/empty.jpg", b"")
    ctx.write("d.jsonl", jsonl([good(1, image="a.jpg"), good(2, image="empty.jpg"), good(3, image="c.jpg")]))
    r = ctx.vkel("train", "--stage", "1", "--model", ctx.shared.tiny("llava"), "--output-dir", "run", "--max-steps", "1",
                 "--device", "cpu", "--image-root", "imgs", "--on-error", "skip", "d.jsonl", timeout=240)
    lost = None if (ctx.dir / "run" / "adapter_model.safetensors").exists() else "no adapter written"
    return ctx.judge(r, rc=(1,), lost=lost, where=("'r2'", "empty.jpg", "d.jsonl:2"))
