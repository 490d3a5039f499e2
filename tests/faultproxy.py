"""A fault-injecting HTTP proxy for tests: a loopback server in front of one upstream server.

    with FaultProxy("http://127.0.0.1:8000", plan=["500", "429", "drop", "delay"]) as proxy:
        client(base_url=proxy.base_url)        # http://127.0.0.1:<port>/v1
        proxy.received, proxy.forwarded, proxy.injected   # 6, 2, Counter({"500": 1, ...})

Faults, one per request:
    "500", "429", any status code   answer it with an OpenAI-style JSON error body
    "drop"                          close the connection without a reply
    "delay"                         wait `delay` seconds (past the client's timeout), then do
                                    `after_delay` ("drop", or "forward" the request late)
    None                            forward the request unchanged

The first requests take their faults from `plan`, in arrival order; after the plan, `rule(body)`
picks the fault from the request's parsed JSON body (None when it has none); no rule: forward.

Not handled: streaming responses (the upstream reply is read whole), HTTPS, chunked requests.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
UPSTREAM_TIMEOUT_S = 600

Rule = Callable[[Any], "str | None"]


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        plan: Iterable[str | None] = (),
        rule: Rule | None = None,
        delay: float = 5.0,
        after_delay: str = "drop",
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.plan = list(plan)
        self.rule = rule
        self.delay, self.after_delay = delay, after_delay
        self.received = self.forwarded = 0
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self, plan: Iterable[str | None] = (), rule: Rule | None = None) -> None:
        """A new plan and rule, counters back to zero (to reuse one proxy across tests)."""
        with self._lock:
            self.plan, self.rule = list(plan), rule
            self.received = self.forwarded = 0
            self.injected = Counter()

    @property
    def faults(self) -> int:
        """Faults injected so far, all kinds together."""
        return sum(self.injected.values())

    def choose(self, body: bytes) -> str | None:
        """Count the request and pick its fault."""
        with self._lock:
            self.received += 1
            if self.plan:
                fault = self.plan.pop(0)
            elif self.rule is not None:
                fault = self.rule(_json_or_none(body))
            else:
                fault = None
            if fault is not None:
                self.injected[fault] += 1
            return fault

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes):
        """Send the request upstream; returns (status, headers, body)."""
        conn = http.client.HTTPConnection(*self.upstream, timeout=UPSTREAM_TIMEOUT_S)
        try:
            conn.request(method, path, body=body, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
            with self._lock:
                self.forwarded += 1
            return reply.status, reply.getheaders(), data
        finally:
            conn.close()


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the clients under test

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fault = proxy.choose(body)
            if fault == "delay":
                proxy._stopping.wait(proxy.delay)
                fault = None if proxy.after_delay == "forward" else proxy.after_delay
            if fault == "drop":
                self._drop()
            elif fault is not None:
                self._error(int(fault))
            else:
                self._relay(body)

        def _drop(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client is gone already

        def _error(self, status: int) -> None:
            payload = {"error": {"message": f"injected {status}", "type": "fault", "code": status}}
            self._send(status, [("Content-Type", "application/json")], json.dumps(payload).encode())

        def _relay(self, body: bytes) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            try:
                status, reply_headers, data = proxy.forward(self.command, self.path, headers, body)
            except OSError:
                self._error(502)
                return
            kept = [(k, v) for k, v in reply_headers if k.lower() not in HOP_BY_HOP]
            self._send(status, kept, data)

        def _send(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            try:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                self.close_connection = True  # the client timed out and left

    return Handler
