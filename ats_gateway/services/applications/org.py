"""Delivering a micro-batch of applications to the org in as few API calls as possible.

Per batch (up to 1,000 applications), with the ``job_portal`` connection:

1. one ``/composite`` of up to 5 SOQL queries (``query_many``): every candidate email ->
   its Contact, and with a child subquery the applications that Contact already has for the
   batch's jobs. This *dedupe query* runs at the start of every attempt, so an attempt that
   follows a crash (even one after the org committed) finds what was created and creates
   nothing twice;
2. one ``/composite`` of sObject Collections (``bulk_create``) for the Contacts not found;
3. one ``/composite`` of sObject Collections for the ``bpats__Job_Board_Application__c``
   records (allOrNone false: one bad record does not sink the batch);
4. resumes as ``ContentVersion`` with ``FirstPublishLocationId`` = the application, packed
   into collections by size.

Per-record failures map back to their application. Retryable ones (``Unavailable``,
``RecordLocked``, ``RequestLimitExceeded``, rolled back) go back to the queue with backoff;
permanent ones fail the application with the org's reason, in public field names.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from ats_gateway.salesforce import (
    AuthenticationFailed,
    ErrorDetail,
    OperationNotAllowed,
    PermissionDenied,
    RecordOutcome,
    SalesforceError,
    soql,
)
from ats_gateway.salesforce.soql import literal
from ats_gateway.services.applications.intake import EMAIL, JOB
from ats_gateway.services.delivery import Item, Outcome, ProgressRecorder

log = logging.getLogger(__name__)

APPLICATION = "bpats__Job_Board_Application__c"
CONTACT_FIELDS = {  # application field -> Contact field, for a new candidate
    "bpats__First_Name__c": "FirstName",
    "bpats__Last_Name__c": "LastName",
    EMAIL: "Email",
    "bpats__Phone__c": "Phone",
}
# A Contact's field errors are the candidate's: report them under the application's fields.
CONTACT_TO_APPLICATION = {target: source for source, target in CONTACT_FIELDS.items()}
URI_LIMIT = 16_384  # bytes Salesforce accepts in a request URI
URI_MARGIN = 512  # room for the instance host and the API version
FILES_BYTES_PER_CALL = 30 * 1024 * 1024  # base64 bytes per composite of ContentVersions
BUDGET_DEFER_SECONDS = 60.0


class OrgClient(Protocol):
    """What delivery needs of :class:`~ats_gateway.salesforce.SalesforceClient`."""

    def may_spend(self, calls: int = 1) -> bool: ...

    def query_many(self, queries: Sequence[str]) -> list[list[dict[str, Any]]]: ...

    def bulk_create(
        self, sobject: str, records: Sequence[dict[str, Any]], *, all_or_none: bool = False
    ) -> list[RecordOutcome]: ...


def dedupe_queries(
    emails: Sequence[str], jobs: Sequence[str], *, api_version: str = "62.0"
) -> list[str]:
    """SOQL resolving ``emails`` to Contacts with their applications to ``jobs``.

    Emails are split so that each query's URL (``/services/data/vXX.X/query?q=`` + the
    percent-encoded SOQL, as the client sends it) stays under the 16,384-byte URI limit.
    """
    job_list = ",".join(literal(j) for j in sorted(set(jobs)))
    # Values are typed literals (escaped by the SOQL builder); no user text is concatenated.
    select = "SELECT Id, Email, (SELECT Id, bpats__Job__c FROM bpats__Job_Board_Applications__r"
    head = f"{select} WHERE bpats__Job__c IN ({job_list})) FROM Contact WHERE Email IN ("
    tail = ") ORDER BY CreatedDate"
    prefix = len(f"/services/data/v{api_version}/query?q=")
    budget = URI_LIMIT - URI_MARGIN - prefix - _encoded_len(head + tail)
    if budget < 200:
        raise ValueError("too many jobs in one batch for a query URL")
    queries, chunk, used = [], [], 0
    for email in emails:
        piece = literal(email)
        size = _encoded_len(piece) + 3  # the encoded comma
        if chunk and used + size > budget:
            queries.append(head + ",".join(chunk) + tail)
            chunk, used = [], 0
        chunk.append(piece)
        used += size
    if chunk:
        queries.append(head + ",".join(chunk) + tail)
    return queries


def _encoded_len(text: str) -> int:
    return len(quote(text, safe=""))


class ApplicationsDeliverer:
    """A :class:`~ats_gateway.services.delivery.Deliverer` for applications."""

    def __init__(
        self,
        client: OrgClient,
        *,
        org_errors: Callable[[Sequence[ErrorDetail]], list[dict[str, str]]] | None = None,
        api_version: str = "62.0",
        max_jobs_per_query: int = 100,
        budget_defer_seconds: float = BUDGET_DEFER_SECONDS,
    ) -> None:
        self.client = client
        self.budget_defer_seconds = budget_defer_seconds
        self.org_errors = org_errors or _raw_errors
        self.api_version = api_version
        self.max_jobs_per_query = max_jobs_per_query

    # ------------------------------------------------------------------ entry point

    def deliver(self, items: Sequence[Item], progress: ProgressRecorder) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        # Applications already created in an earlier attempt only lack their resume.
        fresh = [i for i, item in enumerate(items) if not item.progress.get("salesforce_id")]
        files = [i for i, item in enumerate(items) if item.progress.get("salesforce_id")]
        if not self.client.may_spend(3 if fresh else 1):
            why = {"code": "API_BUDGET_RESERVE", "message": "Waiting for the org's API budget."}
            return [Outcome.defer(self.budget_defer_seconds, **why) for _ in items]
        if fresh:
            files.extend(self._create(items, fresh, outcomes, progress))
        if files:
            self._upload_resumes(items, files, outcomes, progress)
        return [outcomes[i] for i in range(len(items))]

    # ------------------------------------------------------------------ contacts + applications

    def _create(
        self,
        items: Sequence[Item],
        indexes: list[int],
        outcomes: dict[int, Outcome],
        progress: ProgressRecorder,
    ) -> list[int]:
        """Create what is missing; returns the indexes that still need their resume uploaded."""
        # One application per (email, job) per attempt; a twin in the same batch waits one
        # round and then finds the first in the org.
        seen: dict[tuple[str, str], int] = {}
        work: list[int] = []
        for i in indexes:
            key = _key(items[i])
            if key in seen:
                outcomes[i] = Outcome.defer(1.0, code="SAME_BATCH", message="Waiting for a twin.")
            else:
                seen[key] = i
                work.append(i)

        try:
            contacts, existing = self._lookup(items, work)
        except SalesforceError as exc:
            for i in work:
                outcomes[i] = self._on_error(exc)
            return []

        pending: list[int] = []
        for i in work:
            item = items[i]
            email, job = _key(item)
            found = existing.get((email, job[:15]))
            if found is not None:
                app_id, contact_id = found
                if item.progress.get("create_attempted"):
                    # Our own earlier attempt committed before its worker could record it.
                    progress(item, salesforce_id=app_id, contact_id=contact_id)
                    if "resume" in item.attachments and not item.progress.get("resume_id"):
                        pending.append(i)
                        continue
                    outcomes[i] = self._delivered(item)
                else:
                    outcomes[i] = Outcome.duplicate(
                        reason="An application from this email to this job is already in the org.",
                        salesforce_id=app_id,
                        contact_id=contact_id,
                    )
                continue
            pending.append(i)

        # Contacts for candidates the org does not know yet, one per email.
        missing: dict[str, int] = {}
        for i in pending:
            email = _key(items[i])[0]
            if (
                email not in contacts
                and email not in missing
                and not items[i].progress.get("salesforce_id")
            ):
                missing[email] = i
        if missing:
            records = [self._contact(items[i]) for i in missing.values()]
            results = self.client.bulk_create("Contact", records, all_or_none=False)
            failed_emails: dict[str, Outcome] = {}
            for (email, _i), result in zip(missing.items(), results, strict=True):
                if result.success and result.id:
                    contacts[email] = result.id
                else:
                    failed_emails[email] = self._on_error(result.error, contact=True)
            still: list[int] = []
            for i in pending:
                email = _key(items[i])[0]
                if email in failed_emails:
                    outcomes[i] = failed_emails[email]
                else:
                    still.append(i)
            pending = still

        to_create = [i for i in pending if not items[i].progress.get("salesforce_id")]
        needs_file = [i for i in pending if items[i].progress.get("salesforce_id")]
        if to_create:
            records = []
            for i in to_create:
                record = dict(items[i].payload["record"])
                record["bpats__Contact__c"] = contacts[_key(items[i])[0]]
                records.append(record)
            # Noted before the call: if this worker dies after the org commits, the next
            # attempt knows the application it finds is its own, not someone else's.
            progress.many([(items[i], {"create_attempted": True}) for i in to_create])
            results = self.client.bulk_create(APPLICATION, records, all_or_none=False)
            created = [
                (items[i], {"salesforce_id": result.id, "contact_id": record["bpats__Contact__c"]})
                for i, record, result in zip(to_create, records, results, strict=True)
                if result.success and result.id
            ]
            progress.many(created)
            for i, result in zip(to_create, results, strict=True):
                item = items[i]
                if result.success and result.id:
                    if "resume" in item.attachments:
                        needs_file.append(i)
                    else:
                        outcomes[i] = self._delivered(item)
                else:
                    outcomes[i] = self._on_error(result.error)
        return needs_file

    def _lookup(
        self, items: Sequence[Item], indexes: list[int]
    ) -> tuple[dict[str, str], dict[tuple[str, str], tuple[str, str]]]:
        """(email -> Contact id, (email, job id15) -> (application id, contact id))."""
        emails = sorted({_key(items[i])[0] for i in indexes})
        jobs = sorted({items[i].payload["record"][JOB] for i in indexes})
        queries: list[str] = []
        for start in range(0, len(jobs), self.max_jobs_per_query):
            group = jobs[start : start + self.max_jobs_per_query]
            queries.extend(dedupe_queries(emails, group, api_version=self.api_version))
        contacts: dict[str, str] = {}
        existing: dict[tuple[str, str], tuple[str, str]] = {}
        if not queries:
            return contacts, existing
        for records in self.client.query_many(queries):
            for contact in records:
                email = str(contact.get("Email") or "").strip().lower()
                if not email:
                    continue
                contacts.setdefault(email, contact["Id"])  # oldest Contact wins (ORDER BY)
                children = contact.get("bpats__Job_Board_Applications__r") or {}
                for app in children.get("records") or ():
                    job = str(app.get("bpats__Job__c") or "")[:15]
                    existing.setdefault((email, job), (app["Id"], contact["Id"]))
        return contacts, existing

    def _contact(self, item: Item) -> dict[str, Any]:
        record = item.payload["record"]
        return {
            target: record[source]
            for source, target in CONTACT_FIELDS.items()
            if record.get(source) not in (None, "")
        }

    # ------------------------------------------------------------------ resumes

    def _upload_resumes(
        self,
        items: Sequence[Item],
        indexes: list[int],
        outcomes: dict[int, Outcome],
        progress: ProgressRecorder,
    ) -> None:
        todo = [i for i in indexes if "resume" in items[i].attachments]
        for i in indexes:
            if i not in todo:
                outcomes[i] = self._delivered(items[i])
        # An earlier attempt may have uploaded the file and died before recording it: look
        # in the org first, so a redelivery never attaches the same resume twice.
        retried = [i for i in todo if items[i].progress.get("resume_attempted")]
        if retried:
            try:
                found = self._uploaded_resumes(
                    [items[i].progress["salesforce_id"] for i in retried]
                )
            except SalesforceError as exc:
                for i in todo:
                    outcomes[i] = self._on_error(exc)
                return
            done = [i for i in retried if items[i].progress["salesforce_id"][:15] in found]
            progress.many(
                [
                    (items[i], {"resume_id": found[items[i].progress["salesforce_id"][:15]]})
                    for i in done
                ]
            )
            for i in done:
                outcomes[i] = self._delivered(items[i])
            todo = [i for i in todo if i not in done]
        # Pack ContentVersions into calls by size (bulk_create puts 1,000 in one composite).
        groups: list[list[int]] = []
        size = 0
        for i in todo:
            encoded = (_size(items[i].attachments, "resume") + 2) // 3 * 4
            if not groups or size + encoded > FILES_BYTES_PER_CALL or len(groups[-1]) >= 1000:
                groups.append([])
                size = 0
            groups[-1].append(i)
            size += encoded
        for group in groups:
            keepalive = getattr(progress, "keepalive", None)
            if keepalive is not None and len(groups) > 1:
                keepalive(items)
            records = []
            for i in group:
                item = items[i]
                meta = item.payload.get("resume") or {}
                filename = meta.get("filename") or "resume.txt"
                records.append(
                    {
                        "Title": filename,
                        "PathOnClient": filename,
                        "VersionData": base64.b64encode(item.attachments["resume"]).decode(),
                        "FirstPublishLocationId": item.progress["salesforce_id"],
                    }
                )
            # Noted before the call, as for applications: a retry first looks for the file.
            progress.many([(items[i], {"resume_attempted": True}) for i in group])
            results = self.client.bulk_create("ContentVersion", records, all_or_none=False)
            progress.many(
                [
                    (items[i], {"resume_id": result.id})
                    for i, result in zip(group, results, strict=True)
                    if result.success and result.id
                ]
            )
            for i, result in zip(group, results, strict=True):
                item = items[i]
                if result.success and result.id:
                    outcomes[i] = self._delivered(item)
                elif result.error is not None and result.error.retryable:
                    outcomes[i] = self._on_error(result.error)
                else:
                    # The application is in the org; only its file was refused. Say so.
                    error = result.error
                    outcomes[i] = self._delivered(
                        item,
                        resume_error=(error.message if error else "The file was refused."),
                    )

    def _uploaded_resumes(self, application_ids: list[str]) -> dict[str, str]:
        """(application id15 -> ContentVersion id) of files already linked to these
        applications; one composite of up to 5 queries per 1,500 applications."""
        per_query = 300  # 300 quoted, URL-encoded ids stay far below the URI limit
        queries = [
            soql.select("Id", "FirstPublishLocationId")
            .from_("ContentVersion")
            .where(
                soql.field("FirstPublishLocationId").in_(application_ids[start : start + per_query])
            )
            for start in range(0, len(application_ids), per_query)
        ]
        found: dict[str, str] = {}
        for records in self.client.query_many(queries):
            for record in records:
                found.setdefault(str(record["FirstPublishLocationId"])[:15], record["Id"])
        return found

    # ------------------------------------------------------------------ outcomes

    def _delivered(self, item: Item, **extra: Any) -> Outcome:
        result = {
            "salesforce_id": item.progress.get("salesforce_id"),
            "contact_id": item.progress.get("contact_id"),
        }
        if item.progress.get("resume_id"):
            result["resume_id"] = item.progress["resume_id"]
        result.update(extra)
        return Outcome.delivered(**result)

    def _on_error(self, error: SalesforceError | None, *, contact: bool = False) -> Outcome:
        if error is None:
            return Outcome.retry(code="UNKNOWN", message="The org gave no outcome for the record.")
        code = error.error_code or type(error).__name__
        if error.retryable or isinstance(error, AuthenticationFailed):
            return Outcome.retry(code=code, message=error.message)
        details = list(error.errors or ())
        if contact:
            details = [
                ErrorDetail(
                    d.error_code,
                    d.message,
                    tuple(CONTACT_TO_APPLICATION.get(f, f) for f in d.fields),
                )
                for d in details
            ]
        errors = self.org_errors(details)
        reason = error.message or code
        if isinstance(error, OperationNotAllowed | PermissionDenied):
            reason = "The gateway's integration user may not do this in the org: " + reason
        return Outcome.failed(code=code, reason=reason, errors=errors)


def _key(item: Item) -> tuple[str, str]:
    record = item.payload["record"]
    return str(record[EMAIL]).strip().lower(), str(record[JOB])


def _size(attachments: Any, name: str) -> int:
    size = getattr(attachments, "size", None)
    return size(name) if size is not None else len(attachments[name])


def _raw_errors(details: Sequence[ErrorDetail]) -> list[dict[str, str]]:
    """Without the metadata layer: the org's own codes and API names (tests, tools)."""
    return [
        {"field": f, "code": d.error_code, "message": d.message}
        for d in details
        for f in d.fields or ("",)
    ]
