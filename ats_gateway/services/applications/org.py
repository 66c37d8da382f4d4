"""Delivering a micro-batch of applications to the org in as few API calls as possible.

Per batch (up to 1,000 applications), with the ``job_portal`` connection, when the org has the
gateway's External ID ``ATS_Gateway_Id__c`` (Text(64), External ID, Unique) on Contact and on
``bpats__Job_Board_Application__c`` (*keyed* mode, the default of the gateway's setup):

1. one ``/composite`` of up to 5 SOQL queries (``query_many``): every candidate email ->
   its Contact, and with a child subquery the applications that Contact already has for the
   batch's jobs, with their ``ATS_Gateway_Id__c``. An application found with the item's own id
   is ours (an earlier attempt committed); one without it is someone else's (``duplicate``);
2. one ``/composite`` of sObject Collections *upserts* (``PATCH
   /composite/sobjects/{object}/ATS_Gateway_Id__c``): first the new candidates' Contacts (key:
   a digest of the normalized email, so every attempt and every batch names the same Contact),
   then the applications (key: the gateway's application id), each new candidate's application
   pointing at its Contact by that key (``bpats__Contact__r: {ATS_Gateway_Id__c: ...}``), so
   both collections travel in one call. A retry after any ambiguous failure (read timeout,
   connection reset after the org committed) updates what the first attempt created instead of
   creating it again. 2 calls per batch of up to 500 new candidates (1,000 records per call);
3. resumes as ``ContentVersion`` with ``FirstPublishLocationId`` = the application, packed
   into collections by size.

Without the fields (*unkeyed* mode) step 2 is two plain creates (Contacts, then applications:
3 calls), and an ambiguous failure of a create is not retried blind: the batch is parked for
``settle_seconds``, then the dedupe query re-reads the org and only what is really missing is
created (exactly once as long as the org finishes a write within the settle time).

Per-record failures map back to their application. Retryable ones (``Unavailable``,
``RecordLocked``, ``RequestLimitExceeded``, rolled back, an upsert race on the key) go back to
the queue with backoff; permanent ones fail the application with the org's reason naming the
object and field. A refusal for a restricted picklist or a field length means the org's
describe changed: ``describe_stale(object)`` refreshes it at once, so intake refuses the value
with 422 from then on.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from ats_gateway.metadata.preflight import GATEWAY_KEY
from ats_gateway.salesforce import (
    AuthenticationFailed,
    ErrorDetail,
    OperationNotAllowed,
    PermissionDenied,
    RecordOutcome,
    SalesforceError,
    Subrequest,
    SubResponse,
    Unavailable,
    soql,
)
from ats_gateway.salesforce.errors import from_record_errors
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
SETTLE_SECONDS = 120.0  # unkeyed mode: how long an ambiguous write may take to become visible
COLLECTION_SIZE = 200  # records per sObject Collections request
HEAVY_PER_COMPOSITE = 5  # collections (or queries) per /composite call
#: Upsert races on the key (two attempts at once): the next attempt finds the record.
KEY_RACE_CODES = ("DUPLICATE_VALUE", "DUPLICATE_EXTERNAL_ID")
#: The org refused a value its describe (as cached) allowed: the describe changed.
STALE_DESCRIBE_CODES = ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "STRING_TOO_LONG")


class OrgClient(Protocol):
    """What delivery needs of :class:`~ats_gateway.salesforce.SalesforceClient`."""

    def may_spend(self, calls: int = 1) -> bool: ...

    def query_many(self, queries: Sequence[str]) -> list[list[dict[str, Any]]]: ...

    def bulk_create(
        self, sobject: str, records: Sequence[dict[str, Any]], *, all_or_none: bool = False
    ) -> list[RecordOutcome]: ...

    def composite(
        self, subrequests: Sequence[Subrequest], *, all_or_none: bool = False
    ) -> list[SubResponse]: ...


def contact_key(email: str) -> str:
    """A new candidate's Contact key (``ATS_Gateway_Id__c``): the same for every attempt and
    batch of that email, without the email itself in the field."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


_SELECT = "SELECT Id, Email, (SELECT Id, bpats__Job__c FROM bpats__Job_Board_Applications__r"
_KEYED_SELECT = (
    "SELECT Id, Email, (SELECT Id, bpats__Job__c, ATS_Gateway_Id__c "
    "FROM bpats__Job_Board_Applications__r"
)


def dedupe_queries(
    emails: Sequence[str], jobs: Sequence[str], *, api_version: str = "62.0", keyed: bool = False
) -> list[str]:
    """SOQL resolving ``emails`` to Contacts with their applications to ``jobs``.

    Emails are split so that each query's URL (``/services/data/vXX.X/query?q=`` + the
    percent-encoded SOQL, as the client sends it) stays under the 16,384-byte URI limit.
    """
    job_list = ",".join(literal(j) for j in sorted(set(jobs)))
    # Values are typed literals (escaped by the SOQL builder); no user text is concatenated.
    select = _KEYED_SELECT if keyed else _SELECT
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
    """A :class:`~ats_gateway.services.delivery.Deliverer` for applications.

    ``keyed``: whether the org has the gateway's External IDs (a bool, or a callable asked per
    batch, e.g. from the describe cache); ``describe_stale(object)``: called when the org
    refused a value its cached describe allowed.
    """

    def __init__(
        self,
        client: OrgClient,
        *,
        org_errors: Callable[[Sequence[ErrorDetail]], list[dict[str, str]]] | None = None,
        api_version: str = "62.0",
        max_jobs_per_query: int = 100,
        budget_defer_seconds: float = BUDGET_DEFER_SECONDS,
        keyed: bool | Callable[[], bool] = False,
        files_keyed: bool | Callable[[], bool] = False,
        settle_seconds: float = SETTLE_SECONDS,
        describe_stale: Callable[[str], Any] | None = None,
    ) -> None:
        self.client = client
        self.budget_defer_seconds = budget_defer_seconds
        self.org_errors = org_errors or _raw_errors
        self.api_version = api_version
        self.max_jobs_per_query = max_jobs_per_query
        self.keyed = keyed
        self.files_keyed = files_keyed
        self.settle_seconds = settle_seconds
        self.describe_stale = describe_stale
        self._stale: set[str] = set()

    def is_keyed(self) -> bool:
        return bool(self.keyed() if callable(self.keyed) else self.keyed)

    def files_are_keyed(self) -> bool:
        return bool(self.files_keyed() if callable(self.files_keyed) else self.files_keyed)

    def call_bound(self, items: Sequence[Item]) -> int:
        """The most org calls one :meth:`deliver` of ``items`` can make with this plan.

        The pacer learns a batch's cost from what it really cost; this bound keeps one outlier
        (a miscount, a storm of retries) from teaching it that a batch of one costs hundreds.
        Per 500 new candidates: the dedupe composite (more when the batch names more jobs than
        one query holds), Contacts and applications (two creates when unkeyed); files packed by
        size, and the look-up a retried upload makes first; one replay after a re-login."""
        n = len(items)
        jobs = len({str(item.payload.get(JOB, "")) for item in items})
        create = math.ceil(n / 500) * (2 + math.ceil(jobs / self.max_jobs_per_query))
        files = [item for item in items if "resume" in item.attachments]
        encoded = sum((_size(item.attachments, "resume") + 2) // 3 * 4 for item in files)
        uploads = max(math.ceil(encoded / FILES_BYTES_PER_CALL), math.ceil(len(files) / 1000))
        lookups = math.ceil(len(files) / 1500)
        return create + uploads + lookups + 1

    # ------------------------------------------------------------------ entry point

    def deliver(self, items: Sequence[Item], progress: ProgressRecorder) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        # Applications already created in an earlier attempt only lack their resume.
        fresh = [i for i, item in enumerate(items) if not item.progress.get("salesforce_id")]
        files = [i for i, item in enumerate(items) if item.progress.get("salesforce_id")]
        keyed = self.is_keyed() if fresh else False
        if not self.client.may_spend((2 if keyed else 3) if fresh else 1):
            why = {"code": "API_BUDGET_RESERVE", "message": "Waiting for the org's API budget."}
            return [Outcome.defer(self.budget_defer_seconds, **why) for _ in items]
        self._stale = set()
        if fresh:
            files.extend(self._create(items, fresh, outcomes, progress, keyed=keyed))
        if files:
            self._upload_resumes(items, files, outcomes, progress)
        for sobject in sorted(self._stale):
            self._refresh_describe(sobject)
        return [outcomes[i] for i in range(len(items))]

    def _refresh_describe(self, sobject: str) -> None:
        if self.describe_stale is None:
            return
        try:
            self.describe_stale(sobject)
        except Exception:  # the refusal is recorded either way; the next refresh catches up
            log.warning("could not refresh the describe of %s", sobject, exc_info=True)

    # ------------------------------------------------------------------ contacts + applications

    def _create(
        self,
        items: Sequence[Item],
        indexes: list[int],
        outcomes: dict[int, Outcome],
        progress: ProgressRecorder,
        *,
        keyed: bool = False,
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
            contacts, existing = self._lookup(items, work, keyed=keyed)
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
                app_id, contact_id, gateway_id = found
                ours = gateway_id == item.id or (
                    not gateway_id and bool(item.progress.get("create_attempted"))
                )
                if ours:
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
        if keyed:
            return self._upsert(items, pending, contacts, outcomes, progress)
        return self._create_unkeyed(items, pending, contacts, outcomes, progress)

    def _upsert(
        self,
        items: Sequence[Item],
        pending: list[int],
        contacts: dict[str, str],
        outcomes: dict[int, Outcome],
        progress: ProgressRecorder,
    ) -> list[int]:
        """Keyed mode: new Contacts and the applications upserted by ``ATS_Gateway_Id__c``,
        both collections in one ``/composite`` call (per 1,000 records)."""
        needs_file = [i for i in pending if items[i].progress.get("salesforce_id")]
        to_create = [i for i in pending if not items[i].progress.get("salesforce_id")]
        if not to_create:
            return needs_file
        new_contacts: dict[str, int] = {}  # email -> the item whose data makes the Contact
        for i in to_create:
            email = _key(items[i])[0]
            if email not in contacts and email not in new_contacts:
                new_contacts[email] = i
        contact_records = [
            {**self._contact(items[i]), GATEWAY_KEY: contact_key(email)}
            for email, i in new_contacts.items()
        ]
        app_records = []
        for i in to_create:
            email = _key(items[i])[0]
            record = dict(items[i].payload["record"])
            record[GATEWAY_KEY] = items[i].id
            if email in contacts:
                record["bpats__Contact__c"] = contacts[email]
            else:  # the Contact upserted just before, in the same call, by its key
                record["bpats__Contact__r"] = {GATEWAY_KEY: contact_key(email)}
            app_records.append(record)
        progress.many([(items[i], {"create_attempted": True}) for i in to_create])
        contact_results, app_results = self._upsert_calls(contact_records, app_records)

        contact_outcome: dict[str, RecordOutcome] = dict(
            zip(new_contacts, contact_results, strict=True)
        )
        created = []
        for i, result in zip(to_create, app_results, strict=True):
            item = items[i]
            email = _key(item)[0]
            made = contact_outcome.get(email)
            if result.success and result.id:
                contact_id = contacts.get(email) or (made.id if made and made.success else None)
                created.append((i, {"salesforce_id": result.id, "contact_id": contact_id}))
            elif made is not None and not made.success:
                outcomes[i] = self._on_error(made.error, sobject="Contact")
            else:
                outcomes[i] = self._on_error(result.error)
        progress.many([(items[i], change) for i, change in created])
        for i, _ in created:
            if "resume" in items[i].attachments:
                needs_file.append(i)
            else:
                outcomes[i] = self._delivered(items[i])
        return needs_file

    def _upsert_calls(
        self, contacts: list[dict[str, Any]], applications: list[dict[str, Any]]
    ) -> tuple[list[RecordOutcome], list[RecordOutcome]]:
        """Contacts, then applications, as upsert collections of 200, five per ``/composite``
        (a call runs its subrequests in order, and each call after the one before)."""
        chunks: list[tuple[str, list[dict[str, Any]]]] = []
        for sobject, records in (("Contact", contacts), (APPLICATION, applications)):
            for start in range(0, len(records), COLLECTION_SIZE):
                chunks.append((sobject, records[start : start + COLLECTION_SIZE]))
        results: dict[str, list[RecordOutcome]] = {"Contact": [], APPLICATION: []}
        for start in range(0, len(chunks), HEAVY_PER_COMPOSITE):
            group = chunks[start : start + HEAVY_PER_COMPOSITE]
            subrequests = [
                Subrequest(
                    "PATCH",
                    f"/composite/sobjects/{sobject}/{GATEWAY_KEY}",
                    f"u{start + n}",
                    {
                        "allOrNone": False,
                        "records": [{"attributes": {"type": sobject}, **r} for r in records],
                    },
                )
                for n, (sobject, records) in enumerate(group)
            ]
            try:
                answers: list[Any] = list(self.client.composite(subrequests, all_or_none=False))
            except SalesforceError as exc:
                answers = [exc] * len(group)
            for (sobject, records), answer in zip(group, answers, strict=True):
                first = len(results[sobject])
                error = answer if isinstance(answer, SalesforceError) else answer.error
                if error is None:
                    results[sobject].extend(_collection_results(answer.body, first, len(records)))
                else:
                    results[sobject].extend(
                        RecordOutcome(first + n, False, error=error) for n in range(len(records))
                    )
        return results["Contact"], results[APPLICATION]

    def _create_unkeyed(
        self,
        items: Sequence[Item],
        pending: list[int],
        contacts: dict[str, str],
        outcomes: dict[int, Outcome],
        progress: ProgressRecorder,
    ) -> list[int]:
        """Without the gateway's External IDs: plain creates; an ambiguous failure parks."""
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
                    failed_emails[email] = self._on_write_error(result.error, sobject="Contact")
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
                    outcomes[i] = self._on_write_error(result.error)
        return needs_file

    def _on_write_error(self, error: SalesforceError | None, *, sobject: str = APPLICATION):
        """Unkeyed mode: a create whose outcome is unknown (no answer: read timeout, reset)
        may have committed. Retrying at once would re-read the org before that write is
        visible and create it again, so the batch is parked for the settle time first."""
        if _ambiguous(error):
            return Outcome.defer(
                self.settle_seconds,
                code="AMBIGUOUS_WRITE",
                message=f"No answer to a {sobject} create; re-reading the org before retrying.",
            )
        return self._on_error(error, sobject=sobject)

    def _lookup(
        self, items: Sequence[Item], indexes: list[int], *, keyed: bool = False
    ) -> tuple[dict[str, str], dict[tuple[str, str], tuple[str, str, str]]]:
        """(email -> Contact id, (email, job id15) -> (application id, contact id, its
        ATS_Gateway_Id__c or ""))."""
        emails = sorted({_key(items[i])[0] for i in indexes})
        jobs = sorted({items[i].payload["record"][JOB] for i in indexes})
        queries: list[str] = []
        for start in range(0, len(jobs), self.max_jobs_per_query):
            group = jobs[start : start + self.max_jobs_per_query]
            queries.extend(dedupe_queries(emails, group, api_version=self.api_version, keyed=keyed))
        contacts: dict[str, str] = {}
        existing: dict[tuple[str, str], tuple[str, str, str]] = {}
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
                    gateway_id = str(app.get(GATEWAY_KEY) or "")
                    existing.setdefault((email, job), (app["Id"], contact["Id"], gateway_id))
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
        keyed = self.files_are_keyed() if todo else False
        # An earlier attempt may have uploaded the file and died, or timed out, before
        # recording it: look in the org first. Keyed, the look-up is by the file's own key and
        # the key is unique, so even an upload still in flight cannot become a second file
        # (a second create of the key fails DUPLICATE_VALUE once the first commits). Unkeyed,
        # the look-up is by the application, and an unanswered upload parks first (below).
        retried = [i for i in todo if items[i].progress.get("resume_attempted")]
        if retried:
            try:
                found = self._uploaded_resumes([items[i] for i in retried], keyed=keyed)
            except SalesforceError as exc:
                for i in todo:
                    outcomes[i] = self._on_error(exc)
                return
            done = [i for i in retried if _file_ref(items[i], keyed) in found]
            progress.many(
                [(items[i], {"resume_id": found[_file_ref(items[i], keyed)]}) for i in done]
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
                record = {
                    "Title": filename,
                    "PathOnClient": filename,
                    "VersionData": base64.b64encode(item.attachments["resume"]).decode(),
                    "FirstPublishLocationId": item.progress["salesforce_id"],
                }
                if keyed:
                    record[GATEWAY_KEY] = item.id
                records.append(record)
            # Noted before the call, as for applications: a retry first looks for the file.
            progress.many([(items[i], {"resume_attempted": True}) for i in group])
            try:
                results = self.client.bulk_create("ContentVersion", records, all_or_none=False)
            except SalesforceError as exc:
                for i in group:
                    outcomes[i] = (
                        self._on_error(exc, sobject="ContentVersion")
                        if keyed
                        else self._on_write_error(exc, sobject="ContentVersion")
                    )
                continue
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
                elif not keyed and _ambiguous(result.error):
                    outcomes[i] = self._on_write_error(result.error, sobject="ContentVersion")
                elif result.error is not None and (
                    result.error.retryable or result.error.error_code in KEY_RACE_CODES
                ):
                    # KEY_RACE_CODES: an earlier attempt's upload of this file committed
                    # meanwhile; the next attempt's look-up finds it.
                    outcomes[i] = self._on_error(result.error)
                else:
                    # The application is in the org; only its file was refused. Say so.
                    error = result.error
                    outcomes[i] = self._delivered(
                        item,
                        resume_error=(error.message if error else "The file was refused."),
                    )

    def _uploaded_resumes(self, items: Sequence[Item], *, keyed: bool) -> dict[str, str]:
        """(:func:`_file_ref` -> ContentVersion id) of files already in the org for these
        applications: by the files' own key when ``keyed``, else by the application they were
        published to. One composite of up to 5 queries per 1,500 applications."""
        per_query = 300  # 300 quoted, URL-encoded ids stay far below the URI limit
        column = GATEWAY_KEY if keyed else "FirstPublishLocationId"
        refs = [_file_ref(item, keyed) for item in items]
        queries = [
            soql.select("Id", column)
            .from_("ContentVersion")
            .where(soql.field(column).in_(refs[start : start + per_query]))
            for start in range(0, len(refs), per_query)
        ]
        found: dict[str, str] = {}
        for records in self.client.query_many(queries):
            for record in records:
                ref = str(record[column])
                found.setdefault(ref if keyed else ref[:15], record["Id"])
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

    def _on_error(self, error: SalesforceError | None, *, sobject: str = APPLICATION) -> Outcome:
        if error is None:
            return Outcome.retry(code="UNKNOWN", message="The org gave no outcome for the record.")
        code = error.error_code or type(error).__name__
        if error.retryable or isinstance(error, AuthenticationFailed) or code in KEY_RACE_CODES:
            # KEY_RACE_CODES: two upserts of one key at once; the next attempt finds the record.
            return Outcome.retry(code=code, message=error.message)
        details = list(error.errors or ())
        if any(d.error_code in STALE_DESCRIBE_CODES for d in details) or (
            code in STALE_DESCRIBE_CODES
        ):
            self._stale.add(sobject)
        named = sorted({f for d in details for f in d.fields})
        if sobject == "Contact":
            # A Contact's field errors are the candidate's: report them under the application's.
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
        if sobject == "Contact":
            # Refused on the candidate's Contact, not on the application: say so publicly too.
            reason = "The org refused the candidate's Contact: " + reason
            for entry in errors:
                for name in ("field", "message"):
                    entry[name] = entry[name].replace("(record)", "(contact)")
        if isinstance(error, OperationNotAllowed | PermissionDenied):
            reason = "The gateway's integration user may not do this in the org: " + reason
        # For operators (dead-letter list): the object and the fields the org named, API names.
        return Outcome.failed(
            code=code, reason=reason, errors=errors, object=sobject, org_fields=named
        )


def _collection_results(body: Any, first: int, count: int) -> list[RecordOutcome]:
    """The SaveResult / UpsertResult array of one collections subresponse, in record order."""
    if not isinstance(body, list) or len(body) != count:
        error = Unavailable(f"expected {count} results in a collections answer")
        return [RecordOutcome(first + n, False, error=error) for n in range(count)]
    out = []
    for n, item in enumerate(body):
        if isinstance(item, Mapping) and item.get("success") is True:
            out.append(RecordOutcome(first + n, True, item.get("id"), created=item.get("created")))
        else:
            errors = item.get("errors") if isinstance(item, Mapping) else None
            error = from_record_errors(errors or []) if errors else Unavailable("no outcome")
            out.append(RecordOutcome(first + n, False, error=error))
    return out


def _key(item: Item) -> tuple[str, str]:
    record = item.payload["record"]
    return str(record[EMAIL]).strip().lower(), str(record[JOB])


def _ambiguous(error: SalesforceError | None) -> bool:
    """No answer (read timeout, connection reset): the write may have committed in the org."""
    return isinstance(error, Unavailable) and error.status is None


def _file_ref(item: Item, keyed: bool) -> str:
    """How a retry finds an item's file in the org: its key (the application's gateway id), or
    unkeyed the application it was published to (the id's first 15 characters)."""
    return item.id if keyed else str(item.progress["salesforce_id"])[:15]


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
