"""The composition root builds every long-lived piece once, shares it, and connects to nothing
while building; the app keeps that one object; service errors map to problem types in one
table."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from ats_gateway import create_app
from ats_gateway.api import PROBLEMS, problem_for
from ats_gateway.composition import Services, build_services
from ats_gateway.config import Settings
from ats_gateway.extensions import services
from ats_gateway.metadata import InvalidInput, PermissionMissing
from ats_gateway.services.applications import (
    DuplicateApplication,
    IdempotencyConflict,
    InvalidApplication,
    ResumeTooLarge,
)
from ats_gateway.services.feedback import (
    AlreadySubmitted,
    FeedbackUnavailable,
    InterviewGone,
    InvalidFeedback,
    InvalidLinkRequest,
    LinkNotFound,
)
from ats_gateway.services.jobs import (
    CursorGone,
    JobNotFound,
    QueryInvalid,
    RefreshFailed,
    SnapshotUnavailable,
)

#: A port nothing listens on: building must not need Redis (or anything) to be up.
UNREACHABLE = "redis://127.0.0.1:9/0"


@pytest.fixture(scope="module")
def built() -> Services:
    return build_services(Settings.from_env({}, redis_url=UNREACHABLE))


def test_building_connects_to_nothing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("build_services opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    found = build_services(
        Settings.from_env({}, redis_url=UNREACHABLE, secret_key="composition-test")
    )
    assert all(getattr(found, f.name) is not None for f in dataclasses.fields(found))
    # receipts are signed: without a secret there are none (and no receipt_url)
    assert build_services(Settings.from_env({}, redis_url=UNREACHABLE)).receipts is None


def test_pieces_are_built_once_and_shared(built):
    assert built.applications.outbox is built.applications_outbox
    assert built.feedback.outbox is built.feedback_outbox
    assert built.link_issuer.links is built.links
    assert built.link_issuer.contexts is built.feedback_contexts
    assert built.origin_index.store is built.key_store
    assert built.jobs.store.redis is built.redis
    assert built.events_state.redis is built.redis
    assert built.jobs.kept_current == built.events_state.live  # the subscriber's heartbeat
    assert built.applications_deliverer.inner.client is built.connections.client("job_portal")
    assert built.feedback_deliverer.client is built.connections.client("interview_feedback")
    assert built.applications_outbox.kind == "applications"
    assert built.feedback_outbox.kind == "feedback"
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.redis = None  # type: ignore[misc]


def test_readiness_checks_are_registered_in_one_place(built):
    assert list(built.readiness.checks) == [
        "redis",
        "salesforce",
        "describe",
        "permissions",
        "jobs_snapshot",
        "events",
        "key_store",
        "applications_queue",
        "api_budget",
        "work_queues",
    ]
    names = {metric.name for metric in built.metrics.registry.collect()}
    assert {"ats_gateway_jobs_snapshot_age_seconds", "ats_gateway_jobs_snapshot_jobs"} <= names


def test_the_app_keeps_one_services_object(base_settings):
    app = create_app(base_settings)
    found = services(app)
    assert isinstance(found, Services)
    assert found.settings is base_settings
    assert app.extensions["services"] is found
    with app.app_context():
        assert services() is found


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput([{"field": "x", "code": "invalid", "message": "m"}]), 422),
        (PermissionMissing("no grant"), 503),
        (DuplicateApplication("dup"), 409),
        (ResumeTooLarge("big"), 413),
        (InvalidApplication([]), 422),
        (IdempotencyConflict("other body"), 422),
        (QueryInvalid([]), 422),
        (CursorGone("old"), 410),
        (JobNotFound("none"), 404),
        (SnapshotUnavailable("none yet"), 503),
        (RefreshFailed("org down"), 503),
        (InvalidFeedback([]), 422),
        (InvalidLinkRequest([]), 422),
        (AlreadySubmitted("twice"), 409),
        (InterviewGone("gone"), 410),
        (LinkNotFound("no link"), 404),
        (FeedbackUnavailable("later"), 503),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_one_table_maps_each_service_error_to_its_problem(error, status):
    assert any(isinstance(error, cls) for cls in PROBLEMS)
    assert problem_for(error).status == status
