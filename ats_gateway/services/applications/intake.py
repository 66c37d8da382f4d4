"""Intake: validate an application, guard against duplicates, store it durably, queue it.

Nothing reaches the outbox unless it passed every check that can be made without the org
(schema, job open, resume type and size), so a client learns about a bad field at once, with
a 422, instead of a failed delivery hours later. Everything the request needs to be delivered
is in Redis, and fsynced where the server supports it, before :meth:`ApplicationService.submit`
returns: the 202 that follows is a promise.

Errors (each maps to one problem+json status at the HTTP edge)::

    IntakeRejected              base; ``status``, ``detail``, ``errors``, ``extensions``
    ├── InvalidApplication      422 field errors (public names)
    ├── ResumeTooLarge          413
    ├── IdempotencyConflict     422 the Idempotency-Key was used with another body
    └── DuplicateApplication    409 same email + job already queued or in the org
    NotConfirmed                503 stored (or maybe), durability not confirmed: retry with
                                the same Idempotency-Key ([20])
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ats_gateway.metadata.contracts import ResumeRule
from ats_gateway.services.applications.receipts import first_name_key
from ats_gateway.services.applications.resume import Resume, ResumeRejected, check_resume
from ats_gateway.services.applications.sources import Attribution, SourceRecorder, extract
from ats_gateway.services.applications.validation import ApplicationSchema, FieldErrors
from ats_gateway.services.delivery import (
    DELIVERED,
    DUPLICATE,
    FAILED,
    QUEUED,
    NotDurable,
    Outbox,
)

EMAIL = "bpats__Email__c"
JOB = "bpats__Job__c"
FIRST_NAME = "bpats__First_Name__c"
MAX_BATCH = 1000

#: job id -> True (open), False (closed or unknown to the snapshot) or None (cannot tell now)
JobIsOpen = Callable[[str], "bool | None"]

log = logging.getLogger(__name__)


class IntakeRejected(Exception):
    status = 400

    def __init__(self, detail: str, *, errors: FieldErrors | None = None, **extensions: Any):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extensions = extensions


class InvalidApplication(IntakeRejected):
    status = 422

    def __init__(self, errors: FieldErrors, detail: str = "") -> None:
        super().__init__(detail or f"{len(errors)} field(s) failed validation.", errors=errors)


class ResumeTooLarge(IntakeRejected):
    status = 413


class IdempotencyConflict(IntakeRejected):
    status = 422


class DuplicateApplication(IntakeRejected):
    status = 409


class NotConfirmed(Exception):
    """503: the application was stored (or may have been: the connection broke after the
    store was sent) but Redis did not confirm that it survives the loss of a node. The same
    request with the same Idempotency-Key returns the one application, never a second."""

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = {"reason": "not_confirmed", **extensions}


_RETRY = (
    "Send the same request again with the same Idempotency-Key: the retry returns this "
    "application (stored once), never a second one."
)


def _not_confirmed(exc: Exception) -> NotConfirmed:
    if isinstance(exc, NotDurable):
        accepted = [r.id for r in exc.results if r.outcome in ("accepted", "replay")]
        detail = (
            "Stored, but Redis did not confirm in time that it is in the append-only file of "
            f"the primary and of {exc.wanted} replica(s) ({exc.local} local, {exc.replicas} "
            f"replica confirmations). {_RETRY}"
        )
        return NotConfirmed(detail, stored=accepted)
    return NotConfirmed(
        f"The store (Redis) broke off before it answered; this may have been stored. {_RETRY}"
    )


@dataclass(frozen=True)
class ResumeUpload:
    """A file as it arrived (multipart part or base64): bytes and the client's file name."""

    data: bytes
    filename: str | None = None


@dataclass(frozen=True)
class Prepared:
    """An application that passed validation: its record (API names) and checked resume."""

    record: dict[str, Any]
    resume: Resume | None
    fingerprint: str
    attribution: Attribution = field(default_factory=Attribution)

    @property
    def unique_name(self) -> str:
        """Same candidate (:func:`dedupe_address`) + same job, without PII in the key name."""
        raw = f"{self.record[JOB][:15]}|{dedupe_address(self.record[EMAIL])}"
        return hashlib.sha256(raw.encode()).hexdigest()


#: Mailboxes where dots in the local part are ignored (Google's documented behaviour).
DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def dedupe_address(email: str) -> str:
    """The mailbox an address reaches, for the duplicate guard ([21]): case folded, and a
    `+tag` subaddress dropped (RFC 5233 subaddressing; Gmail, Outlook, iCloud, Fastmail,
    Proton and most hosts deliver `x+jobs@` to `x@`), and Gmail's dots ignored. So
    `X.Y+jobs@gmail.com` and `xy@gmail.com` are one candidate for one job; the address sent
    to the org is the one the candidate typed."""
    local, _, domain = email.strip().lower().rpartition("@")
    if not local:
        return email.strip().lower()
    local = local.split("+", 1)[0] or local
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "") or local
    return f"{local}@{domain}"


@dataclass(frozen=True)
class Accepted:
    id: str
    status: str = QUEUED
    replayed: bool = False


@dataclass
class ApplicationService:
    """The applications use cases, independent of HTTP."""

    outbox: Outbox
    schema: ApplicationSchema
    job_is_open: JobIsOpen = lambda job_id: None  # no snapshot wired: accept
    #: job id -> its title (for the candidate's receipt page), None when unknown
    job_title: Callable[[str], str | None] = lambda job_id: None
    resume_rule: ResumeRule = field(default_factory=ResumeRule)
    idempotency_ttl: int = 86400
    clock: Callable[[], float] = time.time
    sources: SourceRecorder | None = None  # source attribution (services/applications/sources)

    # ------------------------------------------------------------------ validate

    def prepare(
        self,
        data: Any,
        resume: ResumeUpload | None = None,
        *,
        default_source: str = "",
        via: str = "",
    ) -> Prepared:
        """Validate one application (raises InvalidApplication or ResumeTooLarge)."""
        if not isinstance(data, Mapping):
            raise InvalidApplication(
                [{"field": "", "code": "invalid_type", "message": "Must be a JSON object."}]
            )
        original = data
        data, attribution, source_errors = extract(data, default_source=default_source, via=via)
        record, errors = self.schema.validate(data)
        errors = capped(errors + source_errors, MAX_ERRORS_PER_ITEM)
        checked: Resume | None = None
        if resume is not None:
            try:
                checked = check_resume(
                    resume.data,
                    resume.filename,
                    max_bytes=self.resume_rule.max_bytes,
                    allowed=self.resume_rule.types,
                )
            except ResumeRejected as exc:
                error = {"field": self.resume_rule.field, "code": exc.code, "message": exc.message}
                if exc.code == "too_large":
                    raise ResumeTooLarge(
                        exc.message, errors=[error], max_bytes=self.resume_rule.max_bytes
                    ) from None
                errors.append(error)
        job_id = record.get(JOB)
        job_error = any(e["field"] == "job_id" for e in errors)
        if job_id and not job_error and self.job_is_open(job_id) is False:
            errors.append(
                {
                    "field": "job_id",
                    "code": "job_not_open",
                    "message": "This job is not open for applications.",
                }
            )
        if errors:
            raise InvalidApplication(errors)
        if self.sources is not None:
            self.sources.apply(record, attribution)
        return Prepared(record, checked, fingerprint(original, resume), attribution)

    # ------------------------------------------------------------------ accept

    def submit(
        self,
        data: Any,
        resume: ResumeUpload | None = None,
        *,
        idempotency_key: str | None = None,
        scope: str = "public",
        default_source: str = "",
        via: str = "",
    ) -> Accepted:
        """Validate, deduplicate and queue one application."""
        data, external_id = split_external_id(data)
        prepared = self.prepare(data, resume, default_source=default_source, via=via)
        return self._store(
            prepared, idempotency_key=idempotency_key, scope=scope, external_id=external_id
        )

    def _store(
        self,
        prepared: Prepared,
        *,
        idempotency_key: str | None,
        scope: str,
        wait: bool = True,
        external_id: str | None = None,
    ) -> Accepted:
        entry = self._entry(
            prepared, idempotency_key=idempotency_key, scope=scope, external_id=external_id
        )
        try:
            result = self.outbox.put(**entry, wait=wait)
        except (NotDurable, RedisConnectionError, RedisTimeoutError) as exc:
            # [20] Never a 202 that a node's loss could take back; and a broken connection may
            # have stored it: either way the client retries with its key (a full or read-only
            # Redis stored nothing: those reach the generic 503).
            raise _not_confirmed(exc) from None
        accepted = self._accepted(result, scope)
        if not accepted.replayed:
            self._keep_first_name_for_receipt(accepted.id, prepared)
        return accepted

    def _keep_first_name_for_receipt(self, application_id: str, prepared: Prepared) -> None:
        """The candidate's receipt shows the first name: kept in a key of its own that expires
        with the receipt (``status_ttl`` from now; services/applications/receipts.py)."""
        first = str(prepared.record.get(FIRST_NAME) or "")
        if not first:
            return
        try:
            self.outbox.redis.set(
                first_name_key(self.outbox, application_id), first, ex=self.outbox.status_ttl
            )
        except RedisError as exc:  # the application is stored: the receipt says "Hello there"
            log.warning("receipt first name not stored: %s", type(exc).__name__)

    def _entry(
        self,
        prepared: Prepared,
        *,
        idempotency_key: str | None,
        scope: str,
        external_id: str | None = None,
    ) -> dict[str, Any]:
        """The outbox entry (``Outbox.put`` keyword arguments) of a prepared application."""
        payload: dict[str, Any] = {"record": prepared.record}
        attachments = {}
        if prepared.resume is not None:
            payload["resume"] = {
                "filename": prepared.resume.filename,
                "kind": prepared.resume.kind,
                "bytes": len(prepared.resume.data),
            }
            attachments["resume"] = prepared.resume.data
        idem = None
        if idempotency_key:
            idem = (_idem_name(scope, idempotency_key), prepared.fingerprint)
        return {
            "payload": payload,
            "attachments": attachments,
            "idempotency": idem,
            "idempotency_ttl": self.idempotency_ttl,
            "unique": [prepared.unique_name],
            "fields": self._remembered(prepared, scope, external_id),
        }

    def _remembered(
        self, prepared: Prepared, scope: str, external_id: str | None
    ) -> dict[str, str]:
        """Beside the item (stored with it, in the same script, and expiring with it): who
        submitted it (webhooks go to that key only), the submitter's own reference, and the
        job title the candidate's receipt shows (the first name has a key of its own)."""
        fields = {OWNER_FIELD: scope}
        title = self.job_title(str(prepared.record.get(JOB, "")))
        if title:
            fields["receipt_job_title"] = title
        if external_id:
            fields["external_id"] = external_id
        if self.sources is not None:  # [16] source and job, for `ats-gateway report sources`
            fields.update(SourceRecorder.status_fields(prepared.record, prepared.attribution))
        return fields

    def _accepted(self, result: Any, scope: str) -> Accepted:
        if result.outcome == "replay":
            return Accepted(result.id, replayed=True)
        if result.outcome == "idempotency_conflict":
            raise IdempotencyConflict(
                "This Idempotency-Key was already used with a different request body.",
                errors=[
                    {
                        "field": "Idempotency-Key",
                        "code": "idempotency_key_reused",
                        "message": "Use a new key for a different application.",
                    }
                ],
            )
        if result.outcome == "duplicate":
            raise self._duplicate(result.id, scope)
        return Accepted(result.id)

    def _duplicate(self, existing_id: str, scope: str) -> DuplicateApplication:
        """409. The existing application's id, status and org id only to the key that
        submitted it (the owner rule of status reads, [21]); anyone else hears "already
        received", as a browser does."""
        owner = self.outbox.redis.hget(self.outbox.item_key(existing_id), OWNER_FIELD)
        if owner is None or owner.decode() != scope:
            return DuplicateApplication(
                "An application from this email to this job was already received.",
                reason="duplicate_application",
            )
        record = self.outbox.get(existing_id) or {}
        status = record.get("status", QUEUED)
        where = "is already in the org" if status in (DELIVERED, DUPLICATE) else "is already queued"
        extensions: dict[str, Any] = {
            "existing_application": {"id": existing_id, "status": status},
            "reason": "duplicate_application",
        }
        salesforce_id = (record.get("result") or {}).get("salesforce_id")
        if salesforce_id:
            extensions["existing_application"]["salesforce_id"] = salesforce_id
        return DuplicateApplication(
            f"An application from this email to this job {where} (application {existing_id}).",
            **extensions,
        )

    def submit_batch(
        self,
        items: Any,
        *,
        idempotency_key: str | None = None,
        scope: str = "public",
        default_source: str = "",
    ) -> dict[str, Any]:
        """Validate and queue each item on its own; one outcome per item, in order.

        An ``Idempotency-Key`` on a batch replays the whole answer for 24 h; a different body
        with the same key is an :class:`IdempotencyConflict`.
        """
        if not isinstance(items, Sequence) or isinstance(items, str | bytes):
            raise InvalidApplication(
                [{"field": "applications", "code": "invalid_type", "message": "Must be a list."}]
            )
        if not 1 <= len(items) <= MAX_BATCH:
            raise InvalidApplication(
                [
                    {
                        "field": "applications",
                        "code": "invalid_length",
                        "message": f"Send between 1 and {MAX_BATCH} applications.",
                    }
                ]
            )
        redis = self.outbox.redis
        batch_key = None
        digest = fingerprint(list(items), None)
        if idempotency_key:
            batch_key = self.outbox.idempotency_key("batch:" + _idem_name(scope, idempotency_key))
            seen = redis.get(batch_key)
            if seen is not None:
                stored = json.loads(seen)
                if stored["fingerprint"] == digest:
                    # [20] The first answer may have been a 503 (stored, not confirmed): the
                    # replay is answered only once what it names is as durable as a new store.
                    try:
                        self.outbox.confirm_durable()
                    except (NotDurable, RedisConnectionError, RedisTimeoutError) as exc:
                        raise _not_confirmed(exc) from None
                if stored["fingerprint"] != digest:
                    raise IdempotencyConflict(
                        "This Idempotency-Key was already used with a different batch.",
                        errors=[
                            {
                                "field": "Idempotency-Key",
                                "code": "idempotency_key_reused",
                                "message": "Use a new key for a different batch.",
                            }
                        ],
                    )
                return {**stored["response"], "replayed": True}
        # Every item is validated first; then the valid ones are stored in one Lua script,
        # all or nothing: a Redis that fills up (or goes away) mid-batch stores none of them
        # and the request answers 503, never a half-stored batch without its ids.
        outcomes: list[dict[str, Any] | None] = []
        entries: list[tuple[int, dict[str, Any]]] = []
        budget = [MAX_ERRORS_PER_REQUEST]  # errors one answer may still carry
        for index, item in enumerate(items):
            try:
                resume = inline_resume(item)
                data = {k: v for k, v in item.items() if k != "resume"} if resume else item
                data, external_id = split_external_id(data)
                prepared = self.prepare(data, resume, default_source=default_source)
            except IntakeRejected as exc:
                outcomes.append(_rejected(index, exc, budget))
            else:
                outcomes.append(None)
                entry = self._entry(
                    prepared, idempotency_key=None, scope=scope, external_id=external_id
                )
                if batch_key:
                    # [20] The same item of the same keyed batch gets the same id on a retry:
                    # when a first attempt stored it but its answer (and the batch's record)
                    # was lost with the primary's connection, the retry meets its own item in
                    # the duplicate guard and answers 202 with it, not a 409.
                    entry["item_id"] = hashlib.sha256(
                        f"{batch_key}|{index}|{prepared.fingerprint}".encode()
                    ).hexdigest()[:32]
                entries.append((index, entry))
        not_durable: Exception | None = None
        try:
            results = self.outbox.put_many([entry for _, entry in entries])
        except NotDurable as exc:
            # [20] Stored, not confirmed: the answer is recorded under the batch's key below
            # (a retry replays these ids, once confirmed), and this request answers 503.
            results, not_durable = exc.results, exc
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise _not_confirmed(exc) from None
        own = {entry.get("item_id") for _, entry in entries} - {None}
        if not_durable is None and any(r.outcome == "duplicate" and r.id in own for r in results):
            try:  # items of the first attempt: as durable as a new store before the 202
                self.outbox.confirm_durable()
            except (NotDurable, RedisConnectionError, RedisTimeoutError) as exc:
                raise _not_confirmed(exc) from None
        for (index, entry), result in zip(entries, results, strict=True):
            if result.outcome == "duplicate" and result.id == entry.get("item_id"):
                outcomes[index] = {"index": index, "status": 202, "id": result.id}
                continue
            try:
                accepted = self._accepted(result, scope)
            except IntakeRejected as exc:
                outcomes[index] = _rejected(index, exc, budget)
            else:
                outcomes[index] = {"index": index, "status": 202, "id": accepted.id}
        accepted_count = sum(1 for o in outcomes if o["status"] == 202)
        response = {
            "accepted": accepted_count,
            "rejected": len(outcomes) - accepted_count,
            "items": outcomes,
        }
        if batch_key:
            try:
                redis.set(
                    batch_key,
                    json.dumps({"fingerprint": digest, "response": response}),
                    nx=True,
                    ex=self.idempotency_ttl,
                )
            except RedisError as exc:
                # The items are stored: answer them. A retry with this key then meets each
                # item's duplicate guard (409 naming the stored application) instead.
                log.warning("batch idempotency record not stored: %s", type(exc).__name__)
        if not_durable is not None:
            raise _not_confirmed(not_durable)
        return response

    # ------------------------------------------------------------------ read

    def status(self, application_id: str, *, owner: str | None = None) -> dict[str, Any] | None:
        """What became of an application (never its candidate data).

        With `owner` (the reader's scope, e.g. ``key:<id>``), an application someone else
        submitted is None, exactly as an unknown one: a job board learns nothing of another
        board's applications. Operators read without `owner`.
        """
        if not application_id.isalnum() or len(application_id) > 64:
            return None
        record = self.outbox.get(application_id)
        if record is None:
            return None
        if owner is not None:
            stored = self.outbox.redis.hget(self.outbox.item_key(application_id), OWNER_FIELD)
            if stored is None or stored.decode() != owner:
                return None
        view: dict[str, Any] = {
            "id": record["id"],
            "status": record["status"],
            "submitted_at": _iso(record["created_at"]),
            "updated_at": _iso(record["updated_at"]),
            "attempts": record["attempts"],
        }
        result = record.get("result") or {}
        error = record.get("error") or {}
        if record["status"] in (DELIVERED, DUPLICATE):
            view.update({k: v for k, v in result.items() if v is not None})
        elif record["status"] == FAILED:
            view["reason"] = error.get("reason") or error.get("message", "")
            view["errors"] = error.get("errors", [])
            if "code" in error:
                view["code"] = error["code"]
        elif error:  # queued or delivering after a retryable failure
            view["last_error"] = {
                "code": error.get("code", ""),
                "message": error.get("message", ""),
            }
        if record["status"] == QUEUED and "next_attempt_at" in record and record["attempts"]:
            view["next_attempt_at"] = _iso(record["next_attempt_at"])
        if "org_status" in record:
            view["org_status"] = record["org_status"]
            view["org_status_at"] = _iso(record["org_status_at"])
        return view


def split_external_id(data: Any) -> tuple[Any, str | None]:
    """The submitter's own reference (``external_id``): kept by the gateway and echoed in
    webhooks, never sent to the org. Returns (the rest of the data, the reference)."""
    if not isinstance(data, Mapping) or "external_id" not in data:
        return data, None
    value = data["external_id"]
    if value is not None and (
        not isinstance(value, str) or not 1 <= len(value) <= 255 or not value.isprintable()
    ):
        raise InvalidApplication(
            [
                {
                    "field": "external_id",
                    "code": "invalid_type",
                    "message": "Must be 1 to 255 printable characters.",
                }
            ]
        )
    return {k: v for k, v in data.items() if k != "external_id"}, value


#: Bounds on the errors one answer carries, so a hostile body cannot make a huge answer
#: (a batch of 1,000 items with 700 unknown fields each once answered 130 MB).
MAX_ERRORS_PER_ITEM = 20
MAX_ERRORS_PER_REQUEST = 1000


def capped(errors: FieldErrors, limit: int) -> FieldErrors:
    """At most `limit` errors, the last one saying how many more there were."""
    if len(errors) <= limit:
        return errors
    more = len(errors) - (limit - 1)
    return [
        *errors[: limit - 1],
        {"field": "", "code": "too_many_errors", "message": f"And {more} more errors."},
    ]


def _rejected(index: int, exc: IntakeRejected, budget: list[int]) -> dict[str, Any]:
    """One refused batch item. The answer stays bounded whatever the body: past the request's
    error budget (``budget[0]``, spent here), an item says how many errors it had, not what
    they were."""
    outcome: dict[str, Any] = {"index": index, "status": exc.status, "detail": exc.detail}
    if exc.errors:
        shown = exc.errors[: max(0, budget[0])]
        budget[0] -= len(shown)
        if shown:
            outcome["errors"] = shown
        if len(shown) < len(exc.errors):
            outcome["errors_omitted"] = len(exc.errors) - len(shown)
    outcome.update(exc.extensions)
    return outcome


def fingerprint(data: Any, resume: ResumeUpload | None) -> str:
    """A digest of the request body: same body, same fingerprint, whatever the key order."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode())
    if resume is not None:
        digest.update(b"\0resume\0" + hashlib.sha256(resume.data).digest())
    return digest.hexdigest()


OWNER_FIELD = "owner"


def _idem_name(scope: str, key: str) -> str:
    return hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()


def inline_resume(item: Any) -> ResumeUpload | None:
    """A batch item may carry ``resume: {filename, content_base64}``."""
    if not isinstance(item, Mapping) or "resume" not in item:
        return None
    raw = item["resume"]
    if not isinstance(raw, Mapping) or not isinstance(raw.get("content_base64"), str):
        raise InvalidApplication(
            [
                {
                    "field": "resume",
                    "code": "invalid_type",
                    "message": "Must be an object {filename, content_base64}.",
                }
            ]
        )
    try:
        data = base64.b64decode(raw["content_base64"], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidApplication(
            [{"field": "resume", "code": "invalid_base64", "message": "Not valid base64."}]
        ) from None
    return ResumeUpload(data, raw.get("filename"))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
