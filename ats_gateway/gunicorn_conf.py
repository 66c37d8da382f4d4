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
  Two more things of [21] there: gunicorn answers an unknown `Transfer-Encoding`
  (`xchunked`) with 501, a client's mistake reported as the server's, so it is a 400 here;
  and its refusals of a duplicate `Content-Length`, CL with TE, two `Host` headers or a
  `Content-Length` of `+5`/`0x5`/`-1` used to close the connection without an answer, since
  the access logger failed on a request without a path (PATH_INFO unset): fixed below.
* **Host is required** on HTTP/1.1 (RFC 9112 3.2: "A server MUST respond with a 400 (Bad
  Request) status code to any HTTP/1.1 request message that lacks a Host header field");
  gunicorn does not check it, so :func:`post_worker_init` wraps the loaded app in
  :func:`require_host`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile

from gunicorn import util
from gunicorn.glogging import Logger

from ats_gateway.printable import escape_nonprintable

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

#: Capability tokens in paths: interviewer links and candidates' receipts ([21]).
_LINK_TOKEN = re.compile(r"(/(?:feedback|receipts)/)[^/?#]+")


def mask_path(path: str) -> str:
    """The path with interviewer-link and receipt tokens replaced by `[token]`."""
    return _LINK_TOKEN.sub(r"\1[token]", path)


def _utf8(wsgi_text: str) -> str:
    """A WSGI string (bytes as latin-1, PEP 3333) read as the UTF-8 it usually is."""
    try:
        return wsgi_text.encode("latin-1").decode("utf-8", errors="backslashreplace")
    except UnicodeEncodeError:
        return wsgi_text


class RedactingLogger(Logger):
    """gunicorn's access logger, with link tokens masked, no query string or Referer, and
    every field's non-printable characters escaped: a path's `%0d%0a` decodes to CR LF and
    once wrote a forged line of its own ([21])."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = mask_path(_utf8(atoms.get("U") or ""))
        atoms["U"] = path
        atoms["r"] = f"{atoms.get('m', '')} {path} {atoms.get('H', '')}"
        atoms["q"] = ""
        atoms["f"] = "-"
        return {
            name: escape_nonprintable(value) if isinstance(value, str) else value
            for name, value in atoms.items()
        }


logger_class = RedactingLogger


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def write_problem(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answers as RFC 9457 problem+json (replaces its HTML page)."""
    if status_int == 501:  # an unknown Transfer-Encoding: the client's mistake ([21])
        status_int, reason = 400, "Bad Request"
    body = _problem_body(
        status_int,
        reason,
        f"The server refused the request before the gateway read it: {mesg}"
        if mesg
        else "The server refused the request before the gateway read it.",
    )
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin1")
    util.write_nonblock(sock, head + body)


util.write_error = write_problem


def _problem_body(status: int, title: str, detail: str) -> bytes:
    return json.dumps(
        {
            "type": "/problems/" + re.sub(r"[^a-z]+", "-", title.lower()).strip("-"),
            "title": title,
            "status": status,
            "detail": detail,
        }
    ).encode()


def require_host(app):
    """WSGI middleware: an HTTP/1.1 request without `Host` is a 400 problem (RFC 9112 3.2)."""

    def guarded(environ, start_response):
        if environ.get("SERVER_PROTOCOL") == "HTTP/1.1" and not environ.get("HTTP_HOST"):
            body = _problem_body(
                400, "Bad Request", "An HTTP/1.1 request must carry a Host header."
            )
            start_response(
                "400 Bad Request",
                [
                    ("Content-Type", "application/problem+json"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        return app(environ, start_response)

    return guarded


def post_worker_init(worker) -> None:
    """gunicorn's hook "called just after a worker has initialized the application"
    (https://docs.gunicorn.org/en/stable/settings.html#post-worker-init; in
    `Worker.init_process` it runs after `load_wsgi`): put :func:`require_host` in front."""
    worker.wsgi = require_host(worker.wsgi)
