"""Building the applications services from :class:`~ats_gateway.config.Settings` and the
process-wide pieces the app factory made (Redis, the Metadata service, the org connections).

The HTTP edge and the worker each build these once per process (and keep them on the app);
nothing here connects at import time.
"""

from __future__ import annotations

import redis

from ats_gateway.config import Settings
from ats_gateway.metadata.service import Metadata
from ats_gateway.salesforce import SalesforceClient
from ats_gateway.services.applications.intake import ApplicationService, JobIsOpen, ResumeRule
from ats_gateway.services.applications.org import ApplicationsDeliverer
from ats_gateway.services.applications.validation import RESOURCE, LiveSchema
from ats_gateway.services.delivery import Outbox

KIND = "applications"
CONNECTION = "job_portal"


def build_outbox(settings: Settings, redis_client: redis.Redis) -> Outbox:
    return Outbox.from_settings(redis_client, KIND, settings)


def build_service(
    settings: Settings,
    redis_client: redis.Redis,
    metadata: Metadata,
    *,
    job_is_open: JobIsOpen | None = None,
) -> ApplicationService:
    contract = metadata.contract(RESOURCE)
    rule = ResumeRule()
    if contract.resume is not None:
        rule = ResumeRule(contract.resume.max_bytes, contract.resume.types, contract.resume.field)
    service = ApplicationService(
        outbox=build_outbox(settings, redis_client),
        schema=LiveSchema(metadata),
        resume_rule=rule,
        idempotency_ttl=settings.idempotency_ttl_seconds,
    )
    if job_is_open is not None:
        service.job_is_open = job_is_open
    return service


def build_deliverer(
    settings: Settings, client: SalesforceClient, metadata: Metadata
) -> ApplicationsDeliverer:
    return ApplicationsDeliverer(
        client,
        org_errors=LiveSchema(metadata).org_errors,
        api_version=settings.connections[CONNECTION].api_version,
        budget_defer_seconds=settings.delivery_budget_defer_seconds,
    )
