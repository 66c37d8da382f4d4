"""The HTTP edge: one blueprint per resource; views parse, authorize, call a service, render."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from ats_gateway.api import meta

    app.register_blueprint(meta.bp)
