"""Slow and idle clients against the real ``relaygate serve`` (issue 14 item 16), over raw sockets: a
connection that sends nothing, a request head trickled, a body trickled, an idle keep-alive connection and
more connections than the cap. Each is closed in its time; a client that behaves is served throughout.

The timeouts are set small in the config (a second or two) so that the test takes seconds; the bounds the
test waits for are generous, and say only that the server does close, not how fast it is.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.servers import relaygate_serve

CONFIG = """\
providers:
  mock: {kind: mock}
server:
  header_timeout: 1
  body_timeout: 1.5
  keep_alive_timeout: 1
  max_connections: 20
database: null
"""
# How long a test waits for the server to close a connection it should close: well past each timeout.
PATIENCE = 8.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    directory = tmp_path_factory.mktemp("serve-timeouts")
    (directory / "relaygate.yaml").write_text(CONFIG)
    with relaygate_serve(["--config", "relaygate.yaml"], cwd=directory) as base:
        yield base, int(base.rsplit(":", 1)[1])


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took; fails if it never closes."""
    started = time.monotonic()
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {PATIENCE} s; it sent {data!r}")
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - started


def healthy(base: str) -> None:
    assert httpx.get(base + "/health", timeout=5).status_code == 200


def test_a_connection_that_sends_nothing_is_closed(served: tuple[str, int]) -> None:
    base, port = served
    with connect(port) as sock:
        data, _ = read_until_closed(sock)
    assert data == b""
    healthy(base)


def test_a_trickled_request_head_gets_a_408_and_is_closed(served: tuple[str, int]) -> None:
    base, port = served
    with connect(port) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: relaygate\r\n")
        for _ in range(3):  # a header line now and then, never the blank line that ends the head
            time.sleep(0.4)
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
        data, _ = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 ")
    healthy(base)


def test_a_trickled_body_gets_a_408_in_the_openai_shape(served: tuple[str, int]) -> None:
    base, port = served
    body = orjson.dumps({"model": "mock/echo", "messages": [{"role": "user", "content": "Hi"}]})
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: relaygate\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with connect(port) as sock:
        sock.sendall(head + body[:10])
        data, _ = read_until_closed(sock)
    status, _, rest = data.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 408 "), data
    headers, _, payload = rest.partition(b"\r\n\r\n")
    assert b"connection: close" in headers.lower()
    assert orjson.loads(payload)["error"]["code"] == "request_timeout"
    healthy(base)


def test_a_body_nobody_reads_cannot_hold_the_connection(served: tuple[str, int]) -> None:
    base, port = served
    # /health answers without reading the body; the rest of the body never comes.
    with connect(port) as sock:
        sock.sendall(b"POST /health HTTP/1.1\r\nHost: relaygate\r\ncontent-length: 1000\r\n\r\nabc")
        data, _ = read_until_closed(sock)
    assert b" 200 " in data.split(b"\r\n", 1)[0] or data.startswith(b"HTTP/1.1 4")
    healthy(base)


def test_an_idle_keep_alive_connection_is_closed(served: tuple[str, int]) -> None:
    base, port = served
    with connect(port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: relaygate\r\n\r\n")
        data, _ = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 ")
    healthy(base)


def test_connections_beyond_the_cap_are_closed_and_the_server_keeps_serving(served: tuple[str, int]) -> None:
    base, port = served
    socks = [connect(port) for _ in range(40)]
    try:
        time.sleep(0.3)
        closed = 0
        for sock in socks:
            sock.settimeout(0.05)
            try:
                if sock.recv(1) == b"":
                    closed += 1
            except TimeoutError:
                pass
            except ConnectionResetError:
                closed += 1
        assert closed >= 20  # the cap is 20 open connections
    finally:
        for sock in socks:
            sock.close()
    deadline = time.monotonic() + PATIENCE
    while True:  # the refused and the idle are gone: a client is served again
        try:
            healthy(base)
            break
        except (httpx.TransportError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
