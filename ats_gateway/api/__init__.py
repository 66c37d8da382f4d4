"""The HTTP edge: one blueprint per resource; views parse, authorize, call a service, render."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from ats_gateway.api import (
        applications,
        demo,
        feedback,
        jobs,
        meta,
        receipts,
        schemas,
        webhooks,
    )

    app.register_blueprint(meta.bp)
    schemas.init_app(app)
    app.register_blueprint(applications.bp)
    jobs.init_app(app)
    feedback.init_app(app)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(receipts.bp)
    demo.init_app(app)  # /demo, only in dev mode or when enabled
