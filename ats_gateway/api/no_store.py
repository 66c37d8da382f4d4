"""`Cache-Control: no-store` on every answer to a write that does not set its own ([21]).

Answers to writes carry what no cache may keep: the `whsec_` secret of a new webhook endpoint
(shown once), a new interviewer link, an application id with its receipt URL. RFC 9111 lets a
cache store a POST answer that has explicit freshness, and some proxies and browsers keep
them anyway; `no-store` says plainly that none may. One rule here, rather than one header per
view, so a new endpoint that returns a secret cannot forget it.
"""

from __future__ import annotations

from flask import Flask, Response, request

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app: Flask) -> None:
    @app.after_request
    def _no_store_for_writes(response: Response) -> Response:
        if request.method not in SAFE_METHODS and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response
