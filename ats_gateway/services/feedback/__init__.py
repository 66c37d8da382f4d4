"""Interview feedback from external interviewers: form context, validated intake, delivery.

Others use :class:`FeedbackService` (``form``, ``submit``, ``submission``), its errors, the
:class:`Grant` a verified link gives, :class:`FeedbackDeliverer` (one sObject Tree call per
feedback, over the shared outbox of :mod:`ats_gateway.services.delivery`) and
:class:`LinkIssuer` (issuing interviewer links). The composition root builds them once per
process with :mod:`ats_gateway.services.feedback.runtime`.
"""

from ats_gateway.services.feedback.context import (
    ContextReader,
    InterviewContext,
    InterviewNotFound,
    Topic,
)
from ats_gateway.services.feedback.issuing import InvalidLinkRequest, LinkIssuer, LinkNotFound
from ats_gateway.services.feedback.org import FeedbackDeliverer
from ats_gateway.services.feedback.service import (
    KIND,
    Accepted,
    AlreadySubmitted,
    FeedbackError,
    FeedbackService,
    FeedbackUnavailable,
    Grant,
    InterviewGone,
    InvalidFeedback,
)

__all__ = [
    "KIND",
    "Accepted",
    "AlreadySubmitted",
    "ContextReader",
    "FeedbackDeliverer",
    "FeedbackError",
    "FeedbackService",
    "FeedbackUnavailable",
    "Grant",
    "InterviewContext",
    "InterviewGone",
    "InterviewNotFound",
    "InvalidFeedback",
    "InvalidLinkRequest",
    "LinkIssuer",
    "LinkNotFound",
    "Topic",
]
