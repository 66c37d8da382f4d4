"""The HTTP edge: one blueprint per resource; views parse, authorize, call a service, render.

Services raise their own errors (no Flask below this layer); :data:`PROBLEMS` is the one
table that turns each of them into the gateway's problem type, so views let them propagate
instead of catching them. Flask picks the most specific entry along the exception's MRO.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, g, has_request_context

from ats_gateway.errors import (
    Conflict,
    GatewayError,
    Gone,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    ValidationFailed,
)
from ats_gateway.metadata import InvalidInput, PermissionMissing
from ats_gateway.services.applications import (
    DuplicateApplication,
    IntakeRejected,
    NotConfirmed,
    ResumeTooLarge,
)
from ats_gateway.services.delivery import NotDurable
from ats_gateway.services.feedback import (
    AlreadySubmitted,
    FeedbackError,
    InterviewGone,
    InvalidFeedback,
)
from ats_gateway.services.feedback.issuing import LinkNotFound
from ats_gateway.services.jobs import (
    CursorGone,
    JobGone,
    JobNotFound,
    JobsError,
    QueryInvalid,
    SnapshotUnavailable,
)


def _duplicate(exc: DuplicateApplication) -> GatewayError:
    """409. A browser (publishable key, readable on any career page) hears only "already
    received": the application id and the org's ids would tell anyone that a named person
    applied ([15]). A job board's secret key gets the details."""
    key = g.get("api_key") if has_request_context() else None
    if key is None or key.publishable:
        return Conflict(
            "An application from this email to this job was already received.",
            reason="duplicate_application",
        )
    return Conflict(exc.detail, **exc.extensions)


def _retry_soon(exc: Exception) -> GatewayError:
    return ServiceUnavailable(str(exc), headers={"Retry-After": "5"})


#: service error -> the problem it is answered with (exception -> GatewayError).
PROBLEMS: dict[type[Exception], Callable[[Any], GatewayError]] = {
    # metadata
    InvalidInput: lambda e: ValidationFailed(e.errors, e.detail),
    PermissionMissing: lambda e: ServiceUnavailable(
        e.reason, reason="permission_missing", missing=[f.as_dict() for f in e.findings]
    ),
    # applications
    DuplicateApplication: lambda e: _duplicate(e),
    ResumeTooLarge: lambda e: PayloadTooLarge(e.detail, errors=e.errors, **e.extensions),
    IntakeRejected: lambda e: ValidationFailed(e.errors, e.detail, **e.extensions),
    NotConfirmed: lambda e: ServiceUnavailable(  # [20] retry with the same Idempotency-Key
        e.detail, headers={"Retry-After": "1"}, **e.extensions
    ),
    # [20] any other outbox (interviewer feedback): stored, durability not confirmed
    NotDurable: lambda e: ServiceUnavailable(
        "Stored, but the store (Redis) did not confirm in time that it survives the loss of a "
        "node. Send it again.",
        headers={"Retry-After": "1"},
        reason="not_confirmed",
    ),
    # jobs
    QueryInvalid: lambda e: ValidationFailed(e.errors, "Some query parameters are invalid."),
    CursorGone: lambda e: Gone(f"This cursor can no longer be continued ({e}); start again."),
    JobGone: lambda e: Gone(str(e)),  # was public, left (closed) in the last 30 days
    JobNotFound: lambda e: NotFound(str(e)),
    SnapshotUnavailable: _retry_soon,
    JobsError: _retry_soon,
    # feedback
    InvalidFeedback: lambda e: ValidationFailed(e.errors, e.detail),
    AlreadySubmitted: lambda e: Conflict(e.detail, **e.extensions),
    InterviewGone: lambda e: Gone(e.detail, **e.extensions),
    LinkNotFound: lambda e: NotFound(e.detail),
    FeedbackError: lambda e: ServiceUnavailable(e.detail, **e.extensions),
}


def problem_for(exc: Exception) -> GatewayError:
    """The problem a service error is answered with (the most specific entry of the table)."""
    for cls in type(exc).__mro__:
        if cls in PROBLEMS:
            return PROBLEMS[cls](exc)
    raise LookupError(f"no problem type for {type(exc).__name__}")


def init_problems(app: Flask) -> None:
    """Answer every service error of :data:`PROBLEMS` with its problem+json."""

    def render(exc: Exception):
        return app.handle_user_exception(problem_for(exc))

    for cls in PROBLEMS:
        app.register_error_handler(cls, render)


def init_app(app: Flask) -> None:
    from ats_gateway.api import (
        applications,
        demo,
        feedback,
        feedback_page,
        jobs,
        meta,
        no_store,  # [21] answers to writes are never cached
        receipts,
        schemas,
        webhooks,
    )
    from ats_gateway.api import boards as boards  # [16] Indeed Apply
    from ats_gateway.api import feeds as feeds  # [16] feeds, sitemap, JSON-LD
    from ats_gateway.api import indexnow as indexnow  # [22] the IndexNow key file

    init_problems(app)
    no_store.init_app(app)
    app.register_blueprint(meta.bp)
    schemas.init_app(app)
    app.register_blueprint(applications.bp)
    jobs.init_app(app)
    feedback.init_app(app)
    app.register_blueprint(feedback_page.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(receipts.bp)
    feeds.init_app(app)
    boards.init_app(app)
    indexnow.init_app(app)
    demo.init_app(app)  # /demo, only in dev mode or when enabled
