"""A scriptable OpenAI-compatible /v1/chat/completions server on 127.0.0.1, in a thread, for tests
and benchmarks (importable: `from tests.openai_server import OpenAIServer, Reply` or, from a test,
`from openai_server import ...`).

    with OpenAIServer(answer=lambda req: "hello", latency=0.2) as server:
        server.queue(Reply.rate_limited(retry_after=1), Reply.error(500))  # the next two requests
        ... OpenAIEndpoint("x", server.url, "m") ...
        assert server.calls == 3

`answer(request)` gets the parsed JSON body and returns a str (the assistant message) or a Reply.
Faults: 429 with Retry-After, 5xx, a delay past the client's timeout, a truncated JSON body, a
connection cut mid-body, a wrong schema, a body trickled a byte at a time. Every request is recorded (path, headers, body, time).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass
class Reply:
    content: str | None = None  # the assistant message (None: use the server's answer function)
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes | None = None  # a raw body instead of a chat completion
    delay: float = 0.0  # seconds before the response starts
    cut: bool = False  # declare the full length, send half the body, close the connection
    trickle: float = 0.0  # seconds between single bytes of the body (a server that never quite answers)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @classmethod
    def rate_limited(cls, retry_after: float | str = 1) -> "Reply":
        return cls(status=429, headers={"Retry-After": str(retry_after)},
                   body=b'{"error": {"message": "rate limited", "type": "rate_limit"}}')

    @classmethod
    def error(cls, status: int = 500, message: str = "internal error") -> "Reply":
        return cls(status=status, body=json.dumps({"error": {"message": message}}).encode())

    @classmethod
    def slow(cls, delay: float, content: str | None = None) -> "Reply":
        return cls(content=content, delay=delay)

    @classmethod
    def trickling(cls, seconds_per_byte: float = 1.0, content: str | None = None) -> "Reply":
        return cls(content=content, trickle=seconds_per_byte)

    @classmethod
    def truncated(cls) -> "Reply":
        return cls(body=b'{"id": "x", "choices": [{"message": {"role": "assistant", "content": "he')

    @classmethod
    def cut_off(cls) -> "Reply":
        return cls(cut=True)

    @classmethod
    def wrong_schema(cls) -> "Reply":
        return cls(body=b'{"id": "x", "object": "chat.completion", "result": {"text": "hello"}}')


def completion_body(model: str, content: str, prompt_tokens: int, completion_tokens: int) -> bytes:
    return json.dumps({
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }).encode()


def _count_tokens(text: str) -> int:
    return len(text.split())


class OpenAIServer:
    def __init__(self, answer: Callable[[dict], "str | Reply"] | None = None, latency: float = 0.0,
                 api_key: str | None = None):
        self.answer = answer or (lambda request: "ok")
        self.latency = latency
        self.api_key = api_key  # when set, requests without `Bearer <key>` get 401
        self.requests: list[dict] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._active = 0
        self.max_active = 0  # the most requests handled at once
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    def queue(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order, before the answer function."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._script.clear()
            self.max_active = 0

    def start(self) -> "OpenAIServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _next(self, request: dict) -> Reply:
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        reply = scripted or self.answer(request)
        if isinstance(reply, str):
            reply = Reply(content=reply)
        if reply.status == 200 and reply.body is None and reply.content is None:
            base = self.answer(request)
            reply.content = base.content if isinstance(base, Reply) else base
        return reply

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do: the client's pool is exercised
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None, cut: bool = False,
                      trickle: float = 0.0):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if cut:
                    self.send_header("Connection", "close")
                self.end_headers()
                if trickle:
                    self.wfile.flush()
                    for i in range(len(body)):
                        time.sleep(trickle)
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                    return
                self.wfile.write(body[: len(body) // 2] if cut else body)
                if cut:
                    self.wfile.flush()
                    self.close_connection = True

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                entry = {"path": self.path, "headers": dict(self.headers), "body": body, "time": time.monotonic()}
                with server._lock:
                    server.requests.append(entry)
                    server._active += 1
                    server.max_active = max(server.max_active, server._active)
                try:
                    if not self.path.rstrip("/").endswith("/chat/completions"):
                        return self._send(404, b'{"error": {"message": "not found"}}')
                    if body is None or "messages" not in body:
                        return self._send(400, b'{"error": {"message": "bad request"}}')
                    if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                        return self._send(401, b'{"error": {"message": "invalid api key"}}')
                    reply = server._next(body)
                    time.sleep(server.latency + reply.delay)
                    if reply.body is not None:
                        return self._send(reply.status, reply.body, reply.headers, trickle=reply.trickle)
                    prompt = " ".join(str(m.get("content")) for m in body["messages"])
                    payload = completion_body(
                        body.get("model", ""), reply.content,
                        _count_tokens(prompt) if reply.prompt_tokens is None else reply.prompt_tokens,
                        _count_tokens(reply.content) if reply.completion_tokens is None else reply.completion_tokens)
                    self._send(reply.status, payload, reply.headers, cut=reply.cut, trickle=reply.trickle)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): fine
                    pass
                finally:
                    with server._lock:
                        server._active -= 1

        return Handler


def last_user_text(request: dict) -> str:
    """The text of the last user message of a recorded request body."""
    for message in reversed(request.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "\n".join(p.get("text", "") for p in content if p.get("type") == "text")
            return content or ""
    return ""


def knowledge_answer(request: dict, flavour: str = "") -> str:
    """A well-formed `vkel knowledge` answer: a JSON object with the keys the prompt asks for
    (`... exactly these keys: "fine_type", "gender", ...`), each value naming the aspect and entity."""
    import re

    text = last_user_text(request)
    entity = re.search(r"^Entity: (.*)$", text, re.M)
    entity = entity.group(1) if entity else "?"
    keys_line = re.search(r"these keys: (.*?)\.", text)
    keys = re.findall(r'"([a-z_]+)"', keys_line.group(1)) if keys_line else ["appearance"]
    fine = re.search(r"fine-grained type, one of: ([a-z_]+)", text)
    answer = {key: (fine.group(1) if key == "fine_type" and fine else f"{key} of {entity}{flavour}") for key in keys}
    return json.dumps(answer)
