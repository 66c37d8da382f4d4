"""A webhook receiver for tests and the bench, run as its own process (HTTP/1.1, keep-alive).

    python tests/webhooks/receiver.py PORT LOG_FILE [HOST [CERT_FILE KEY_FILE]]

With a certificate and key it speaks HTTPS.

Appends one JSON line per POST to LOG_FILE: {path, headers (lower-case), body, answered, at}.
``POST /__control__`` with a JSON object changes how it answers the next POSTs:

* ``{"fail": N}``: 500 to the next N requests;
* ``{"status": 410, "retry_after": "2", "times": N}``: that status (with ``Retry-After``) to the
  next N requests (default: all);
* ``{"body": "..."}``: 2xx answers carry this body (a receiver saying ``{"ok":true}``);
* ``{"drip": 0.5}``: read the request, then answer one byte every 0.5 s (a slow-loris
  receiver) until the client hangs up.

``GET /__state__`` answers ``{"max_open": n}``: the most POSTs it held open at once.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE: dict = {"fail": 0, "status": 0, "times": 0, "body": "", "drip": 0.0}
COUNTS = {"open": 0, "max_open": 0}
LOCK = threading.Lock()
DRIP = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 10000


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_path = ""

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        body = json.dumps({"max_open": COUNTS["max_open"]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        if self.path == "/__control__":
            with LOCK:
                STATE.update(json.loads(body))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with LOCK:
            COUNTS["open"] += 1
            COUNTS["max_open"] = max(COUNTS["max_open"], COUNTS["open"])
            drip = STATE["drip"]
            retry_after = None
            if STATE["fail"] > 0:
                answer = 500
                STATE["fail"] -= 1
            elif STATE["status"]:
                answer = STATE["status"]
                retry_after = STATE.get("retry_after")
                if STATE["times"]:
                    STATE["times"] -= 1
                    if not STATE["times"]:
                        STATE["status"] = 0
            else:
                answer = 200
            record = {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
                "answered": "drip" if drip else answer,
                "at": time.time(),
            }
            with open(self.log_path, "a") as log:
                log.write(json.dumps(record) + "\n")
        try:
            if drip:
                self.close_connection = True
                for byte in DRIP:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    # wait, but notice at once when the client hangs up (EOF), so that
                    # "open" counts what the client holds, not what a write finds out later
                    readable, _, _ = select.select([self.connection], [], [], drip)
                    if readable and not self.connection.recv(1, socket.MSG_PEEK):
                        return
                return
            payload = STATE["body"].encode() if answer < 300 else b""
            self.send_response(answer)
            if retry_after is not None:
                self.send_header("Retry-After", str(retry_after))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client hung up (a deadline passed)
            self.close_connection = True
        finally:
            with LOCK:
                COUNTS["open"] -= 1


def main() -> None:
    port, Handler.log_path = int(sys.argv[1]), sys.argv[2]
    host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
    server_class = ThreadingHTTPServer
    if ":" in host:

        class V6Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6

        server_class = V6Server
    server = server_class((host, port), Handler)
    server.daemon_threads = True
    if len(sys.argv) > 5:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
