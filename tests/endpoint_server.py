"""A real OpenAI-compatible server for the endpoint tests, and a small fault-injecting proxy in front of it.

- `serve(model_dir)`: `transformers serve` on a free local port (offline, CPU), up within a deadline,
  stopped when the block ends;
- `FaultProxy(upstream, script)`: answers each POST to /v1/chat/completions with the next fault of its
  script (429 with Retry-After, 500, a reply slower than the client's timeout, a dropped connection, a 401 that echoes the key) and
  forwards everything else to the upstream server; it counts every request body it saw and every reply it
  delivered, which is how the resume test proves no request was sent twice.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(model_dir: str, deadline_s: float = 240.0):
    """`transformers serve MODEL_DIR` on 127.0.0.1, yielding its /v1 base URL."""
    port = free_port()
    exe = Path(sys.executable).with_name("transformers")
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"transformers-serve-{port}.log", "w")
    proc = subprocess.Popen([str(exe), "serve", model_dir, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "float32"],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        began = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {proc.returncode}; see {log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() - began > deadline_s:
                raise TimeoutError(f"transformers serve was not up after {deadline_s:.0f} s; see {log.name}")
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class FaultProxy:
    """script: faults for the first requests, in order ("429", "500", "slow", "drop", "401-echo"), then "pass"
    (forward); `always` repeats one fault for every request; `hold_after`: the request after that many
    forwarded replies blocks until `release` is set (so a test can kill its client mid-run)."""

    def __init__(self, upstream: str | None, script: list[str] = (), always: str | None = None, slow_s: float = 3.0,
                 hold_after: int | None = None):
        self.upstream = urlsplit(upstream) if upstream else None
        self.script, self.always, self.slow_s, self.hold_after = list(script), always, slow_s, hold_after
        self.seen: Counter = Counter()
        """Request bodies (canonical JSON) received, with their counts."""
        self.delivered: Counter = Counter()
        """Bodies whose upstream reply was written back to the client."""
        self.faults: Counter = Counter()
        self.echoed: list[str] = []
        """What the 401-echo fault sent back (the Authorization header the client sent)."""
        self.release = threading.Event()
        self.held = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _next(self) -> str:
        with self._lock:
            if self.always:
                return self.always
            return self.script.pop(0) if self.script else "pass"

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=600)
        conn.request("POST", handler.path, body, {"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] = {}) -> None:
                self.send_response(status)
                for k, v in {"content-type": "application/json", "content-length": str(len(body)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                canonical = json.dumps(json.loads(body), sort_keys=True)
                with proxy._lock:
                    proxy.seen[canonical] += 1
                fault = proxy._next()
                proxy.faults[fault] += 1
                if fault == "429":
                    return self._send(429, b'{"error": {"message": "rate limited"}}', {"retry-after": "1"})
                if fault == "500":
                    return self._send(500, b'{"error": {"message": "upstream broke"}}')
                if fault == "401-echo":  # a hostile or careless server repeating the key it was sent
                    echoed = json.dumps({"error": {"message": f"bad key: {self.headers.get('authorization')}"}})
                    proxy.echoed.append(echoed)
                    return self._send(401, echoed.encode())
                if fault == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                if fault == "slow":  # no reply before the client's timeout
                    time.sleep(proxy.slow_s)
                    return None
                if proxy.hold_after is not None and sum(proxy.delivered.values()) >= proxy.hold_after:
                    proxy.held.set()
                    proxy.release.wait()
                    return None
                status, reply = proxy._forward(self, body)
                self._send(status, reply)
                with proxy._lock:
                    proxy.delivered[canonical] += 1

        return Handler
