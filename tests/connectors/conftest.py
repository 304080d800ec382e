"""A programmable HTTP target on a free local port, so connector tests exercise real sockets and real `requests`."""

import collections
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .. import factories


@dataclass
class Reply:
    """What the target answers to one request."""

    status: int = 200
    body: object = field(default_factory=lambda: {"ok": True})
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without answering (after reading the request)


@dataclass
class Received:
    """A request as the target saw it, stamped with the target's own clock on arrival."""

    method: str
    path: str
    headers: dict
    body: bytes
    at: float


class FakeTarget:
    """Answers queued replies in order (or `default`), records every request it receives."""

    def __init__(self):
        self.replies: collections.deque = collections.deque()
        self.default = Reply()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                request = Received(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length), time.time()
                )
                with target._lock:
                    target.received.append(request)
                    reply = target.replies.popleft() if target.replies else target.default
                if callable(reply):
                    reply = reply(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    return
                body = reply.body
                if isinstance(body, bytes | str):
                    payload = body.encode() if isinstance(body, str) else body
                    content_type = "text/plain"
                else:
                    payload = json.dumps(body).encode() if body is not None else b""
                    content_type = "application/json"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.headers.get("Content-Type", content_type))
                    for name, value in reply.headers.items():
                        if name != "Content-Type":
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a read timeout under test)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def queue(self, *replies):
        with self._lock:
            self.replies.extend(replies)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target():
    fake = FakeTarget()
    yield fake
    fake.stop()


@pytest.fixture
def target_system(db, target, monkeypatch):
    """A connected system pointing at the fake target, bearer auth from an environment variable."""
    monkeypatch.setenv("IC_SECRET_FAKE_TARGET_TOKEN", "tok-Sup3rS3cretValue")
    return factories.system(
        "netsuite",
        "erp",
        name="NetSuite",
        vendor="netsuite",
        base_url=f"{target.url}/services/rest/record/v1/",
        outbound_auth="bearer",
        outbound_credentials={"env": "IC_SECRET_FAKE_TARGET_TOKEN"},
        connect_timeout_seconds=Decimal("5"),
        read_timeout_seconds=Decimal("10"),
        rate_limit_per_minute=None,
    )


@pytest.fixture
def unanswering_port():
    """A port whose listen queue is full: connections are never accepted, so a connect times out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    server.close()


@pytest.fixture
def closed_port():
    """A port nobody listens on: connections are refused."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port
