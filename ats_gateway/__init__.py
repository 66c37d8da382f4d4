"""ATS gateway: career sites, job boards and interviewers in front of an Asymbl ATS org."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from ats_gateway.config import Settings

__all__ = ["Settings", "create_app"]


def create_app(config: Settings | Mapping[str, Any] | None = None) -> Flask:
    """Build the gateway app. `config` is a `Settings`, a mapping of overrides, or None (env)."""
    from ats_gateway import api, composition, errors, extensions, logs, security, tasks

    settings = config if isinstance(config, Settings) else Settings.from_env(**dict(config or {}))

    app = Flask(__name__)
    # `//v1//jobs` is a 404, not a redirect: Werkzeug's slash-merging redirect is absolute,
    # built from the request's own Host header, so it would send a client to any host.
    app.url_map.merge_slashes = False
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key or None,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False
    app.json.compact = True
    logs.configure_logging(settings.log_format, settings.log_level)
    services = composition.build_services(settings)  # every long-lived piece, built once

    # Start-up, top to bottom; each step binds one concern to the app.
    for init in (
        lambda a: composition.init_app(a, services),  # app.extensions["services"]
        extensions.init_request_tracking,
        errors.init_app,
        tasks.celery_init_app,
        security.init_app,
        api.init_app,
    ):
        init(app)
    return app
