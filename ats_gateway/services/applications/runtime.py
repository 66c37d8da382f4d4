"""Builders of the applications pieces, called once per process by the composition root
(:func:`ats_gateway.composition.build_services`); nothing here connects or reads at build time.
"""

from __future__ import annotations

from ats_gateway.config import Settings
from ats_gateway.metadata.contracts import ResumeRule
from ats_gateway.metadata.preflight import file_key_ready, gateway_keys_ready
from ats_gateway.metadata.service import Metadata
from ats_gateway.salesforce import SalesforceClient
from ats_gateway.services.applications.intake import ApplicationService, JobIsOpen
from ats_gateway.services.applications.org import ApplicationsDeliverer
from ats_gateway.services.applications.sources import SourceRecorder
from ats_gateway.services.applications.validation import RESOURCE, LiveSchema
from ats_gateway.services.delivery import Outbox

KIND = "applications"
CONNECTION = "job_portal"


def build_service(
    settings: Settings,
    outbox: Outbox,
    metadata: Metadata,
    *,
    job_is_open: JobIsOpen | None = None,
) -> ApplicationService:
    contract = metadata.contract(RESOURCE)
    rule = contract.resume or ResumeRule()
    service = ApplicationService(
        outbox=outbox,
        schema=LiveSchema(metadata),
        resume_rule=rule,
        idempotency_ttl=settings.idempotency_ttl_seconds,
        sources=SourceRecorder(lambda: metadata.describe(RESOURCE)),
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
        # Upsert by ATS_Gateway_Id__c where the org has it (the describe cache says so).
        keyed=lambda: gateway_keys_ready(metadata.cache.get, CONNECTION),
        # Resumes carry the key too where ContentVersion has it: a retried upload never
        # attaches a second copy; without it an unanswered upload parks for the settle time.
        files_keyed=lambda: file_key_ready(metadata.cache.get, CONNECTION),
        settle_seconds=settings.delivery_settle_seconds,
        describe_stale=lambda sobject: metadata.cache.refresh(CONNECTION, sobject, force=True),
    )
