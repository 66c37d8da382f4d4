"""Slow parties on 127.0.0.1 for the work-class tests and bench/isolation.py.

* :class:`DripReceiver`: a webhook receiver that reads the whole request, then answers one
  byte every ``interval`` seconds (urllib3's read timeout is per read, so a client without a
  wall-clock deadline waits for ever). ``recover()`` cuts the connections in flight and answers
  every later request 200 at once, recording the ``webhook-id`` it answered, by path.
* :class:`DripProxy`: a TCP proxy in front of the sandbox org; while ``dripping``, the answer to
  a request that writes (a body holding ``"PATCH"``: the sObject Collections upserts) reaches
  the gateway one byte every ``interval`` seconds, after the org has committed it.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections import defaultdict

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _read_request(conn: socket.socket) -> tuple[bytes, bytes] | None:
    """One HTTP request's head and body (by Content-Length), or None at end of stream."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head, body


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class DripReceiver:
    def __init__(self, interval: float = 2.0) -> None:
        self.interval = interval
        self.dripping = True
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.drip_requests = 0
        self.answered: dict[str, list[str]] = defaultdict(list)  # path -> webhook-ids (200)
        self._stop = threading.Event()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._handle(self.request)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> DripReceiver:
        self.thread.start()
        return self

    def recover(self) -> None:
        """From now on answer at once; the drips in flight are cut (the client sees a reset)."""
        self.dripping = False

    def stop(self) -> None:
        self._stop.set()
        self.dripping = False
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, conn: socket.socket) -> None:
        request = _read_request(conn)
        if request is None:
            return
        head, _ = request
        path = head.split(b" ", 2)[1].decode()
        webhook_id = ""
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"webhook-id":
                webhook_id = value.strip().decode()
        if self.dripping:
            with self.lock:
                self.in_flight += 1
                self.drip_requests += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                for byte in ANSWER:
                    if not self.dripping or self._stop.is_set():
                        return  # cut: the client gets a connection closed mid-answer
                    conn.sendall(bytes([byte]))
                    self._stop.wait(self.interval)
            except OSError:
                return
            finally:
                with self.lock:
                    self.in_flight -= 1
        with self.lock:
            self.answered[path].append(webhook_id)
        conn.sendall(ANSWER)


class DripProxy:
    def __init__(self, upstream_port: int, interval: float = 0.5) -> None:
        self.upstream_port = upstream_port
        self.interval = interval
        self.dripping = False
        self.dripped = 0  # answers dripped so far
        self._stop = threading.Event()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._handle(self.request)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> DripProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        writes = threading.Event()  # the request now being answered writes records

        def forward_requests() -> None:
            try:
                while True:
                    chunk = client.recv(65536)
                    if not chunk:
                        break
                    if b'"PATCH"' in chunk:
                        writes.set()
                    upstream.sendall(chunk)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    upstream.shutdown(socket.SHUT_WR)

        threading.Thread(target=forward_requests, daemon=True).start()
        try:
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                if self.dripping and writes.is_set():
                    self.dripped += 1
                    for i in range(len(chunk)):
                        if not self.dripping or self._stop.is_set():
                            client.sendall(chunk[i:])
                            break
                        client.sendall(chunk[i : i + 1])
                        time.sleep(self.interval)
                else:
                    client.sendall(chunk)
                writes.clear()
        except OSError:
            pass
        finally:
            upstream.close()
            client.close()
