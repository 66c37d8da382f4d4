"""Indeed Apply: verify what Indeed POSTs to our ``postUrl`` and map it to an application.

Sources: Indeed "Message signature generation"
(https://docs-plus.indeed.com/indeed-apply/message-signature-generation), "Application data"
(https://docs.indeed.com/dev/reference/application-data), "Application delivery"
(https://docs.indeed.com/dev/reference/application-delivery) and the older "Application data
delivery" (https://techdocs.indeedeng.io/application-data-delivery).

* Signature: header ``X-Indeed-Signature`` = Base64(HMAC-SHA1(key = the Indeed Apply API
  secret as UTF-8, message = the raw request body bytes)). Verified over the exact bytes
  received, with a constant-time compare. Indeed's published test vector is in the tests.
* Body: JSON, parsed leniently (unknown fields ignored). Used: ``id`` (Indeed's application
  id: our idempotency key, so Indeed's resends are not delivered twice), ``job.jobId`` (the
  ``indeed-apply-jobId`` of our feed: the Salesforce job id), ``applicant.fullName`` (or
  ``firstName`` / ``lastName``), ``applicant.email``, ``applicant.phoneNumber``,
  ``applicant.coverletter`` (sic), ``applicant.resume.file`` ``{contentType, data (Base64),
  fileName}``.
* Answers Indeed expects: 2xx saved; 400 a required key missing; 401 signature missing or
  invalid; 404 job unknown; 409 duplicate (same job and email); 410 job expired or closed;
  413 too large; 422 valid JSON that cannot be saved.

Not mapped, for want of a field in the org's Job Board Application: screener answers
(``questionsAndAnswers`` / ``screenerQuestionsAndAnswers``), ``analytics``, the resume's
``text`` / ``html`` / ``hrXml`` / ``json`` renderings. Not confirmed here: Indeed's resend
schedule and which status codes trigger a resend; the current ``questionsAndAnswers`` shape.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "X-Indeed-Signature"
SOURCE = "Indeed"
VIA = "indeed-apply"


class IndeedPayloadInvalid(Exception):
    """The JSON misses a key Indeed marks required (answer 400)."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(e["message"] for e in errors))
        self.errors = errors


def sign(secret: str, body: bytes) -> str:
    """The ``X-Indeed-Signature`` of ``body`` (tests, tools)."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    if not secret or not signature:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), signature.strip().encode())


@dataclass(frozen=True)
class IndeedApplication:
    indeed_id: str
    job_id: str
    data: dict[str, Any]  # the public application body (job_id, names, email, phone, ...)
    resume: tuple[bytes, str] | None  # (bytes, file name)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def split_name(full: str) -> tuple[str, str]:
    """ "Ada King Lovelace" -> ("Ada King", "Lovelace"); one word -> ("", word)."""
    parts = full.split()
    if not parts:
        return "", ""
    if len(parts) == 1:
        return "", parts[0]
    return " ".join(parts[:-1]), parts[-1]


def _missing(name: str) -> dict[str, str]:
    return {"field": name, "code": "required", "message": f"{name} is missing."}


def parse(payload: Any) -> IndeedApplication:
    """Map Indeed's application JSON to our application body; IndeedPayloadInvalid when a
    required key is missing (job id, applicant name, applicant email)."""
    if not isinstance(payload, Mapping):
        raise IndeedPayloadInvalid(
            [{"field": "", "code": "invalid_type", "message": "The body must be a JSON object."}]
        )
    job = payload.get("job") if isinstance(payload.get("job"), Mapping) else {}
    applicant = payload.get("applicant")
    applicant = applicant if isinstance(applicant, Mapping) else {}
    errors = []
    job_id = _text(job.get("jobId"))
    if not job_id:
        errors.append(_missing("job.jobId"))
    first, last = _text(applicant.get("firstName")), _text(applicant.get("lastName"))
    if not (first or last):
        first, last = split_name(_text(applicant.get("fullName")))
    if not last:
        errors.append(_missing("applicant.fullName"))
    email = _text(applicant.get("email"))
    if not email:
        errors.append(_missing("applicant.email"))
    if errors:
        raise IndeedPayloadInvalid(errors)
    data: dict[str, Any] = {
        "job_id": job_id,
        "first_name": first or last,
        "last_name": last,
        "email": email,
        "source": SOURCE,
    }
    if _text(applicant.get("phoneNumber")):
        data["phone"] = _text(applicant["phoneNumber"])
    if _text(applicant.get("coverletter")):
        data["cover_letter"] = _text(applicant["coverletter"])
    resume = None
    raw_resume = applicant.get("resume") if isinstance(applicant.get("resume"), Mapping) else {}
    file = raw_resume.get("file") if isinstance(raw_resume.get("file"), Mapping) else None
    if file and _text(file.get("data")):
        try:
            content = base64.b64decode(_text(file["data"]), validate=True)
        except (binascii.Error, ValueError):
            raise IndeedPayloadInvalid(
                [
                    {
                        "field": "applicant.resume.file.data",
                        "code": "invalid_base64",
                        "message": "applicant.resume.file.data is not valid Base64.",
                    }
                ]
            ) from None
        resume = (content, _text(file.get("fileName")) or "resume")
    indeed_id = _text(payload.get("id"))
    return IndeedApplication(indeed_id, job_id, data, resume)
