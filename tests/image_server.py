"""A loopback HTTP server for the retrieval tests: a fake Custom Search JSON API and generated images.

`server.files[path] = (status, headers, body)` serves anything; `server.results[query] = [links]` answers
`/customsearch/v1?q=...`; `server.hits` counts requests per path (so tests can show a re-run fetches nothing);
`server.search_params` keeps the query parameters of each search request.
Faults: `server.trickle[path] = seconds` sends that file's body a byte at a time; `server.streams[path] =
(status, headers, size)` streams `size` bytes and counts in `server.sent[path]` what actually left before the
client hung up (so a test can show a client did not read a huge body whole).
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def image_bytes(color, size=(48, 32), fmt="JPEG", noise: bool = False) -> bytes:
    from PIL import Image

    if noise:
        import os

        img = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        img = Image.new("RGB", size, color)
    buffer = io.BytesIO()
    img.save(buffer, format=fmt)
    return buffer.getvalue()


class ImageServer:
    def __init__(self):
        self.files: dict[str, tuple[int, dict, bytes]] = {}
        self.results: dict[str, list[str]] = {}
        self.search_status = 200
        self.search_params: list[dict] = []
        self.hits: Counter = Counter()
        self.trickle: dict[str, float] = {}
        self.streams: dict[str, tuple[int, dict, int]] = {}
        self.sent: dict[str, list[int]] = {}  # bytes written per request, for streamed paths
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                with server._lock:
                    server.hits[parts.path] += 1
                if parts.path == "/customsearch/v1":
                    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    server.search_params.append(params)
                    if server.search_status != 200:
                        body = json.dumps({"error": {"code": server.search_status,
                                                     "message": f"denied for key {params.get('key')}"}})
                        return self._send(server.search_status, {"Content-Type": "application/json"}, body.encode())
                    links = server.results.get(params.get("q", ""), [])
                    items = [{"link": link, "mime": "image/jpeg"} for link in links][: int(params.get("num", 10))]
                    body = json.dumps({"kind": "customsearch#search", "items": items} if items else {})
                    return self._send(200, {"Content-Type": "application/json"}, body.encode())
                if parts.path in server.streams:
                    return self._stream(parts.path, *server.streams[parts.path])
                status, headers, body = server.files.get(parts.path, (404, {"Content-Type": "text/plain"}, b"nope"))
                self._send(status, headers, body, server.trickle.get(parts.path, 0.0))

            def _send(self, status, headers, body, trickle=0.0):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if not trickle:
                        return self.wfile.write(body)
                    self.wfile.flush()
                    for i in range(len(body)):
                        time.sleep(trickle)
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up: fine
                    pass

            def _stream(self, path, status, headers, size):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                chunk, sent = b"x" * 65536, 0
                try:
                    while sent < size:
                        part = chunk[: size - sent]
                        self.wfile.write(part)
                        sent += len(part)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                with server._lock:
                    server.sent.setdefault(path, []).append(sent)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    # helpers
    def image(self, path: str, color, size=(48, 32), fmt="JPEG", **kw) -> str:
        ctype = {"JPEG": "image/jpeg", "PNG": "image/png"}[fmt]
        self.files[path] = (200, {"Content-Type": ctype}, image_bytes(color, size, fmt, **kw))
        return self.url + path

    def add_bad_ones(self) -> dict[str, str]:
        """The classic failures; returns {reason: url}."""
        good = image_bytes("red")
        self.files["/bad/html"] = (200, {"Content-Type": "text/html"}, b"<html>not an image</html>")
        self.files["/bad/octet-html"] = (200, {"Content-Type": "application/octet-stream"}, b"<html>hidden</html>")
        self.files["/bad/truncated.jpg"] = (200, {"Content-Type": "image/jpeg"}, good[: len(good) // 2])
        self.files["/bad/big.png"] = (200, {"Content-Type": "image/png"},
                                      image_bytes(None, (256, 256), "PNG", noise=True))
        self.files["/bad/ftp"] = (302, {"Location": "ftp://127.0.0.1/secret.jpg"}, b"")
        self.files["/bad/file"] = (301, {"Location": "file:///etc/passwd"}, b"")
        return {"http_404": self.url + "/bad/missing.jpg", "not_image": self.url + "/bad/html",
                "not_image_octet": self.url + "/bad/octet-html", "corrupt": self.url + "/bad/truncated.jpg",
                "too_large": self.url + "/bad/big.png", "bad_scheme": self.url + "/bad/ftp",
                "bad_scheme_file": self.url + "/bad/file"}
