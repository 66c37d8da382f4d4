"""A webhook receiver for tests and the bench, run as its own process.

    python tests/webhooks/receiver.py PORT LOG_FILE

Appends one JSON line per POST to LOG_FILE: {path, headers (lower-case), body, answered, at}.
``POST /__control__ {"fail": N}`` makes it answer 500 to the next N requests.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"fail": 0}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    log_path = ""

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        if self.path == "/__control__":
            with LOCK:
                STATE.update(json.loads(body))
            self.send_response(204)
            self.end_headers()
            return
        with LOCK:
            answer = 500 if STATE["fail"] > 0 else 200
            if STATE["fail"] > 0:
                STATE["fail"] -= 1
            record = {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
                "answered": answer,
                "at": time.time(),
            }
            with open(self.log_path, "a") as log:
                log.write(json.dumps(record) + "\n")
        self.send_response(answer)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main() -> None:
    port, Handler.log_path = int(sys.argv[1]), sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
