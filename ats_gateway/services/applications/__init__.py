"""Applications: validated intake, durable queue, batched exactly-once delivery to the org.

Others use: :class:`ApplicationService` (intake, batch, status), the intake errors, and
:class:`ApplicationsDeliverer`; the composition root builds them once per process with
:mod:`ats_gateway.services.applications.runtime`.
"""

from ats_gateway.services.applications.intake import (
    Accepted,
    ApplicationService,
    DuplicateApplication,
    IdempotencyConflict,
    IntakeRejected,
    InvalidApplication,
    NotConfirmed,
    ResumeTooLarge,
    ResumeUpload,
)
from ats_gateway.services.applications.org import ApplicationsDeliverer, dedupe_queries

__all__ = [
    "Accepted",
    "ApplicationService",
    "ApplicationsDeliverer",
    "DuplicateApplication",
    "IdempotencyConflict",
    "IntakeRejected",
    "InvalidApplication",
    "NotConfirmed",
    "ResumeTooLarge",
    "ResumeUpload",
    "dedupe_queries",
]
