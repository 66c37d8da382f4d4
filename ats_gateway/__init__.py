"""ATS gateway: career sites, job boards and interviewers in front of an Asymbl ATS org."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from ats_gateway.config import Settings

__all__ = ["Settings", "create_app"]


def create_app(config: Settings | Mapping[str, Any] | None = None) -> Flask:
    """Build the gateway app. `config` is a `Settings`, a mapping of overrides, or None (env)."""
    from ats_gateway import (
        api,
        connections,
        errors,
        events,
        extensions,
        logs,
        metadata,
        security,
        tasks,
    )
    from ats_gateway.services import jobs

    settings = config if isinstance(config, Settings) else Settings.from_env(**dict(config or {}))

    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key or None,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False
    app.json.compact = True

    # Start-up, top to bottom; each step binds one concern to the app.
    for init in (
        lambda a: logs.configure_logging(settings.log_format, settings.log_level),
        extensions.init_request_tracking,
        errors.init_app,
        extensions.init_redis,
        extensions.init_readiness,
        connections.init_app,
        tasks.celery_init_app,
        metadata.init_app,
        jobs.init_app,
        events.init_app,
        security.init_app,
        api.init_app,
    ):
        init(app)
    return app
