"""Interviewer feedback links: signed, expiring tokens bound to one interview and one interviewer.

    links = FeedbackLinks(redis_client, secret_key)
    issued = links.issue("a0I...", "pat@client.example", ttl=7 * 86400, issued_by="key:ab12")
    issued.token                     # put it in https://gateway/feedback/<token>
    claims = links.verify(token)     # LinkClaims, or raises one of the errors below
    links.revoke(link_id)            # one link
    links.revoke_for("a0I...", "pat@client.example")   # every link of that pair

The token is an itsdangerous ``URLSafeSerializer`` signature (HMAC-SHA1 keyed by the gateway's
``secret_key`` with this module's salt) over ``{link id, interview id, interviewer email,
expiry}``, so none of the three can be changed without breaking it. Expiry is inside the
signed payload (each link has its own lifetime). Revocation lives in Redis: each issued link
has a record, ``revoked_at`` set on revocation; a link whose record is gone (revoked and
expired, or never issued by this gateway's Redis) is refused as well. "Spent" (feedback
delivered) is not stored here: the feedback service knows, per interview and interviewer.

Errors (all :class:`LinkRefused`, which pages catch to show a friendly page):

    LinkTampered   401  bad signature, malformed token
    LinkExpired    410  past its expiry
    LinkRevoked    410  revoked, or unknown to this gateway

Redis keys: ``ats-gateway:feedback-links:link:<id>`` (hash: interview_id, email, expires_at,
created_at, issued_by, contact_id, job_title, revoked_at) and
``ats-gateway:feedback-links:pair:<interview>:<email digest>`` (set of link ids).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from itsdangerous import BadData, URLSafeSerializer

from ats_gateway.errors import Gone, Unauthorized
from ats_gateway.services.feedback.issuing import (  # noqa: F401 (re-exported)
    check_record_id,
    normalize_email,
    parse_duration,
)

SALT = "ats-gateway/feedback-link/v1"
KEY_PREFIX = "ats-gateway:feedback-links:"
#: Records outlive their links a little, so a late visitor learns "expired", not "unknown".
GRACE_SECONDS = 7 * 86400


class LinkRefused(Exception):
    """A feedback link that may not be used; `reason` is tampered | expired | revoked."""

    reason = "refused"


class LinkTampered(LinkRefused, Unauthorized):
    reason = "tampered"


class LinkExpired(LinkRefused, Gone):
    reason = "expired"


class LinkRevoked(LinkRefused, Gone):
    reason = "revoked"


@dataclass(frozen=True)
class LinkClaims:
    """What a valid token grants: feedback on `interview_id` by `email`, until `expires_at`."""

    link_id: str
    interview_id: str
    email: str
    expires_at: float
    contact_id: str | None = None  # the interviewer's Contact, resolved when issued
    job_title: str | None = None  # given by the issuer (the feedback user cannot read jobs)


@dataclass(frozen=True)
class IssuedLink:
    token: str
    claims: LinkClaims

    @property
    def link_id(self) -> str:
        return self.claims.link_id

    @property
    def expires_at(self) -> float:
        return self.claims.expires_at


class FeedbackLinks:
    """Issue, verify and revoke interviewer links (signing key + Redis)."""

    def __init__(
        self,
        redis_client: redis.Redis,
        secret_key: str,
        *,
        max_ttl: int = 90 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis_client
        self._serializer = URLSafeSerializer(secret_key or "", salt=SALT) if secret_key else None
        self.max_ttl = int(max_ttl)
        self.clock = clock

    def __repr__(self) -> str:
        return "FeedbackLinks()"

    @property
    def configured(self) -> bool:
        return self._serializer is not None

    def _signer(self) -> URLSafeSerializer:
        if self._serializer is None:
            raise RuntimeError("feedback links need ATS_GATEWAY_SECRET_KEY to be set")
        return self._serializer

    @staticmethod
    def record_key(link_id: str) -> str:
        return f"{KEY_PREFIX}link:{link_id}"

    @staticmethod
    def pair_key(interview_id: str, email: str) -> str:
        digest = hashlib.sha256(email.encode()).hexdigest()[:24]
        return f"{KEY_PREFIX}pair:{interview_id}:{digest}"

    # ------------------------------------------------------------------ issue

    def issue(
        self,
        interview_id: str,
        email: str,
        *,
        ttl: int,
        issued_by: str = "",
        contact_id: str | None = None,
        job_title: str | None = None,
    ) -> IssuedLink:
        """Sign a new link and record it (so it can be revoked). Raises ValueError on bad input."""
        check_record_id(interview_id, "interview id")
        email = normalize_email(email)
        ttl = int(ttl)
        if not 0 < ttl <= self.max_ttl:
            raise ValueError(f"a link may live at most {self.max_ttl // 86400} days")
        now = self.clock()
        link_id = secrets.token_urlsafe(9)
        expires_at = float(int(now + ttl))
        token = self._signer().dumps(
            {"l": link_id, "i": interview_id, "e": email, "x": int(expires_at)}
        )
        record: dict[str, Any] = {
            "interview_id": interview_id,
            "email": email,
            "expires_at": repr(expires_at),
            "created_at": repr(now),
            "issued_by": issued_by,
        }
        if contact_id:
            record["contact_id"] = contact_id
        if job_title:
            record["job_title"] = job_title[:255]
        keep = int(ttl + GRACE_SECONDS)
        pair = self.pair_key(interview_id, email)
        pipe = self.redis.pipeline()
        pipe.hset(self.record_key(link_id), mapping=record)
        pipe.expire(self.record_key(link_id), keep)
        pipe.sadd(pair, link_id)
        pipe.ttl(pair)
        current_ttl = pipe.execute()[-1]
        if current_ttl < keep:  # the pair index lives as long as its longest-lived link
            self.redis.expire(pair, keep)
        claims = LinkClaims(link_id, interview_id, email, expires_at, contact_id, job_title)
        return IssuedLink(token, claims)

    # ------------------------------------------------------------------ verify

    def unsigned(self, token: str) -> Mapping[str, Any]:
        """The signed payload, or LinkTampered. Says nothing about expiry or revocation."""
        if not isinstance(token, str) or not 20 <= len(token) <= 1024:
            raise LinkTampered("This feedback link is not valid.", reason="tampered")
        try:
            data = self._signer().loads(token)
        except BadData:
            raise LinkTampered(
                "This feedback link is not valid; it may have been copied incompletely.",
                reason="tampered",
            ) from None
        if not isinstance(data, dict) or not {"l", "i", "e", "x"} <= data.keys():
            raise LinkTampered("This feedback link is not valid.", reason="tampered")
        return data

    def verify(self, token: str) -> LinkClaims:
        """The claims of a usable link; raises LinkTampered, LinkExpired or LinkRevoked."""
        data = self.unsigned(token)
        expires_at = float(data["x"])
        if self.clock() >= expires_at:
            raise LinkExpired(
                "This feedback link has expired; ask the recruiter for a new one.",
                reason="expired",
                expired_at=_iso(expires_at),
            )
        raw = self.redis.hgetall(self.record_key(str(data["l"])))
        record = {_text(k): _text(v) for k, v in raw.items()}
        if not record or record.get("revoked_at"):
            raise LinkRevoked(
                "This feedback link was withdrawn; ask the recruiter for a new one.",
                reason="revoked",
            )
        if record.get("interview_id") != data["i"] or record.get("email") != data["e"]:
            raise LinkTampered("This feedback link is not valid.", reason="tampered")
        return LinkClaims(
            link_id=str(data["l"]),
            interview_id=str(data["i"]),
            email=str(data["e"]),
            expires_at=expires_at,
            contact_id=record.get("contact_id") or None,
            job_title=record.get("job_title") or None,
        )

    # ------------------------------------------------------------------ revoke / list

    def interview_of(self, link_id: str) -> str | None:
        """The interview a link was issued for (None: no such link)."""
        raw = self.redis.hget(self.record_key(link_id), "interview_id")
        return raw.decode() if raw is not None else None

    def revoke(self, link_id: str) -> bool:
        """Revoke one link; False when no such (unexpired) link is recorded."""
        key = self.record_key(link_id)
        if not self.redis.exists(key):
            return False
        self.redis.hset(key, "revoked_at", repr(self.clock()))
        return True

    def revoke_for(self, interview_id: str, email: str) -> int:
        """Revoke every link issued for this interview and interviewer; returns how many."""
        ids = self.redis.smembers(self.pair_key(interview_id, normalize_email(email)))
        return sum(self.revoke(_text(i)) for i in ids)

    def links_for(self, interview_id: str, email: str) -> list[dict[str, Any]]:
        """The recorded links of a pair (never their tokens), newest first."""
        out = []
        for link_id in self.redis.smembers(self.pair_key(interview_id, normalize_email(email))):
            raw = self.redis.hgetall(self.record_key(_text(link_id)))
            if not raw:
                continue
            record = {_text(k): _text(v) for k, v in raw.items()}
            out.append(
                {
                    "link_id": _text(link_id),
                    "expires_at": _iso(float(record["expires_at"])),
                    "created_at": _iso(float(record["created_at"])),
                    "revoked": bool(record.get("revoked_at")),
                    "issued_by": record.get("issued_by", ""),
                }
            )
        return sorted(out, key=lambda r: r["created_at"], reverse=True)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
