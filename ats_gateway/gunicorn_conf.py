"""gunicorn settings for the gateway: `gunicorn -c python:ats_gateway.gunicorn_conf wsgi:app`.

What the server itself must get right, found by the adversarial review ([15]):

* **Access log without secrets.** Interviewer links carry a bearer token in the path
  (`/feedback/<token>`, `/v1/feedback/<token>`), and query strings carry search text; the
  access log writes the method, the path with link tokens masked, the status, size and time,
  never the query string or the Referer (which repeats both).
* **Slow clients.** Threads (`gthread`) rather than one request per process, and more of them
  than a handful of slow-body clients can hold; the app reads each body under one deadline
  (`ATS_GATEWAY_BODY_READ_TIMEOUT`, 408 past it). In production put a buffering proxy in
  front (nginx buffers request bodies by default): it absorbs slow clients before gunicorn.
* **Metrics of every worker.** Prometheus multiprocess mode: each worker writes its samples
  to `PROMETHEUS_MULTIPROC_DIR` (a private temporary folder unless the operator sets one) and
  `/metrics` aggregates them, so the answer does not depend on which worker serves it.
* **Errors gunicorn answers itself** (a broken request line, an invalid header, a header
  over `limit_request_field_size`, a bad chunk size before the app reads): gunicorn writes
  them with `gunicorn.util.write_error`, an HTML page; this module points that function at
  :func:`write_problem`, so they are problem+json like every answer of the app. gunicorn
  offers no hook for this, hence the replacement; it is checked by tests/security.
"""

from __future__ import annotations

import json
import os
import re
import tempfile

from gunicorn import util
from gunicorn.glogging import Logger

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Set before any worker imports prometheus_client (workers import the app after fork).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ats-gateway-metrics-")

worker_class = "gthread"
workers = int(os.environ.get("ATS_GATEWAY_WORKERS", "2"))
threads = int(os.environ.get("ATS_GATEWAY_THREADS", "32"))
graceful_timeout = 10
keepalive = 5
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = "-"
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'

_LINK_TOKEN = re.compile(r"(/feedback/)[^/?#]+")


def mask_path(path: str) -> str:
    """The path with interviewer-link tokens replaced by `[token]`."""
    return _LINK_TOKEN.sub(r"\1[token]", path)


class RedactingLogger(Logger):
    """gunicorn's access logger, with link tokens masked and no query string or Referer."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = mask_path(atoms.get("U", ""))
        atoms["U"] = path
        atoms["r"] = f"{atoms.get('m', '')} {path} {atoms.get('H', '')}"
        atoms["q"] = ""
        atoms["f"] = "-"
        return atoms


logger_class = RedactingLogger


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def write_problem(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answers as RFC 9457 problem+json (replaces its HTML page)."""
    body = json.dumps(
        {
            "type": "/problems/" + re.sub(r"[^a-z]+", "-", reason.lower()).strip("-"),
            "title": reason,
            "status": status_int,
            "detail": f"The server refused the request before the gateway read it: {mesg}"
            if mesg
            else "The server refused the request before the gateway read it.",
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin1")
    util.write_nonblock(sock, head + body)


util.write_error = write_problem
