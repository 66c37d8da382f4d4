"""Candidate receipts: a capability URL that shows one application's status to whoever holds it.

The token is ``itsdangerous``-signed (HMAC with the gateway's secret key, its own salt) and
carries only the application id; it expires with the status record (``max_age`` = the status
TTL). Holding it is the authorization, so what it shows is limited to what a candidate may
see on a shared screen: the status, the first name and the job title (stored beside the item
at intake), and times. Never the email, the resume or the org's ids.

The first name is candidate data, and the rest of the candidate's data leaves Redis once the
application is delivered; the first name is kept for the receipt alone, in a key of its own
(:func:`first_name_key`) that expires with the receipt: ``status_ttl`` after submission,
whatever becomes of the application ([21]; it used to stay in the status record, which
outlives the receipt by the delivery time).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ats_gateway.services.delivery import Outbox

SALT = "ats-gateway.receipt.v1"


def first_name_key(outbox: Outbox, application_id: str) -> str:
    """The receipt's copy of the candidate's first name (expires with the receipt)."""
    return f"{outbox.prefix}receipt:{application_id}"


class Receipts:
    def __init__(self, secret_key: str, outbox: Outbox, *, max_age: int) -> None:
        if not secret_key:
            raise ValueError("receipts need the gateway's secret_key")
        self.serializer = URLSafeTimedSerializer(secret_key, salt=SALT)
        self.outbox = outbox
        self.max_age = max_age

    def token(self, application_id: str) -> str:
        return self.serializer.dumps(application_id)

    def open(self, token: str) -> dict[str, Any] | None:
        """The receipt's view, or None (bad signature, expired, or the record is gone)."""
        try:
            application_id = self.serializer.loads(token, max_age=self.max_age)
        except BadSignature:  # SignatureExpired is a BadSignature
            return None
        if not isinstance(application_id, str):
            return None
        record = self.outbox.get(application_id)
        if record is None:
            return None
        pipe = self.outbox.redis.pipeline(transaction=False)
        pipe.get(first_name_key(self.outbox, application_id))
        # receipt_first_name: where applications accepted before [21] keep it
        pipe.hmget(self.outbox.item_key(application_id), "receipt_first_name", "receipt_job_title")
        first, (legacy_first, title) = pipe.execute()
        first = first or legacy_first
        return {
            "application_id": application_id,
            "status": record["status"],
            "first_name": first.decode() if first else "",
            "job_title": title.decode() if title else "",
            "submitted_at": _iso(record["created_at"]),
            "updated_at": _iso(record["updated_at"]),
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
