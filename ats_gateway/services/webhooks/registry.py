"""Webhook endpoints: which URL of which API key wants which events.

Redis keys::

    ats-gateway:webhooks:endpoint:<id>   hash: id owner url events (space-separated) secret
                                         created_at [disabled_at disabled_reason]
    ats-gateway:webhooks:owner:<owner>   set of the owner's endpoint ids
    ats-gateway:webhooks:urls:<owner>    hash: canonical URL -> endpoint id (one URL once per key)
    ats-gateway:webhooks:endpoints       set of every endpoint id (the sweep walks it)

Creating is one Lua script (the URL check, the cap and the writes together), so concurrent
registrations cannot pass the cap or register a URL twice ([19]: 60 concurrent registrations
made 11 endpoints against a cap of 10).

A disabled endpoint (its key was revoked, or the receiver answered 410 Gone) stays listed with
the reason, gets no new events, and its queued events go to the dead-letter queue.

``owner`` is the submitting scope of applications, ``key:<api key id>``: an endpoint only ever
receives events about applications its own key submitted. The signing secret is stored
because each delivery is signed with it; it is shown to the key's holder once, at creation.

Errors::

    InvalidEndpoint   ``field``, ``code``, ``message`` (the public field name)
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import redis

from ats_gateway.services.webhooks.egress import RefusedURL, check_url, resolve
from ats_gateway.services.webhooks.signing import new_secret

PREFIX = "ats-gateway:webhooks:"
EVENT_TYPES = (
    "application.delivered",
    "application.duplicate",
    "application.failed",
    "application.status_changed",
    "job.closed",
)
MAX_ENDPOINTS_PER_OWNER = 10

# KEYS: endpoint, owner set, all set, owner's url index
# ARGV: id owner url events secret created_at cap canonical_url
_CREATE = """
local existing = redis.call('HGET', KEYS[4], ARGV[8])
if existing then return {'duplicate', existing} end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[7]) then return {'too_many', ''} end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'owner', ARGV[2], 'url', ARGV[3], 'events', ARGV[4],
           'secret', ARGV[5], 'created_at', ARGV[6])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[8], ARGV[1])
return {'ok', ARGV[1]}
"""


class InvalidEndpoint(ValueError):
    def __init__(self, field_name: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Endpoint:
    id: str
    owner: str
    url: str
    events: frozenset[str]
    created_at: float
    secret: str = field(default="", repr=False)
    disabled_at: float = 0.0
    disabled_reason: str = ""

    @property
    def active(self) -> bool:
        return not self.disabled_at

    def wants(self, event_type: str) -> bool:
        return self.active and event_type in self.events

    def to_public_dict(self) -> dict:
        found = {
            "id": self.id,
            "url": self.url,
            "events": sorted(self.events),
            "created_at": self.created_at,
            "status": "active" if self.active else "disabled",
        }
        if not self.active:
            found["disabled_at"] = self.disabled_at
            found["disabled_reason"] = self.disabled_reason
        return found


class EndpointRegistry:
    def __init__(self, client: redis.Redis, *, env: str = "production") -> None:
        self.redis = client
        self.env = env

    @staticmethod
    def endpoint_key(endpoint_id: str) -> str:
        return f"{PREFIX}endpoint:{endpoint_id}"

    @staticmethod
    def owner_key(owner: str) -> str:
        return f"{PREFIX}owner:{owner}"

    @staticmethod
    def urls_key(owner: str) -> str:
        return f"{PREFIX}urls:{owner}"

    all_key = PREFIX + "endpoints"

    def create(self, owner: str, url: str, events: Iterable[str] | None = None) -> Endpoint:
        """Register an endpoint (the returned one carries its secret: show it once)."""
        wanted = _events(events)
        try:
            scheme, host, port, path = check_url(url, self.env)
            resolve(url, self.env)  # refuse a private address now, not at the first event
        except RefusedURL as exc:
            raise InvalidEndpoint("url", exc.code, exc.message) from None
        endpoint = Endpoint(
            id="ep_" + secrets.token_hex(8),
            owner=owner,
            url=url,
            events=wanted,
            created_at=round(time.time(), 3),
            secret=new_secret(),
        )
        verdict, existing = self.redis.eval(
            _CREATE,
            4,
            self.endpoint_key(endpoint.id),
            self.owner_key(owner),
            self.all_key,
            self.urls_key(owner),
            endpoint.id,
            owner,
            url,
            " ".join(sorted(wanted)),
            endpoint.secret,
            repr(endpoint.created_at),
            MAX_ENDPOINTS_PER_OWNER,
            canonical_url(scheme, host, port, path),
        )
        if verdict == b"duplicate":
            raise InvalidEndpoint(
                "url",
                "duplicate",
                f"This key already has an endpoint for this URL ({existing.decode()}).",
            )
        if verdict == b"too_many":
            raise InvalidEndpoint(
                "url", "too_many", f"A key may have at most {MAX_ENDPOINTS_PER_OWNER} endpoints."
            )
        return endpoint

    def get(self, endpoint_id: str) -> Endpoint | None:
        raw = self.redis.hgetall(self.endpoint_key(endpoint_id))
        if not raw:
            return None
        values = {k.decode(): v.decode() for k, v in raw.items()}
        return Endpoint(
            id=values["id"],
            owner=values["owner"],
            url=values["url"],
            events=frozenset(values.get("events", "").split()),
            created_at=float(values.get("created_at", 0)),
            secret=values.get("secret", ""),
            disabled_at=float(values.get("disabled_at") or 0),
            disabled_reason=values.get("disabled_reason", ""),
        )

    def disable(self, endpoint_id: str, reason: str) -> bool:
        """Stop an endpoint (kept, with the reason, for its owner to see); False if unknown."""
        key = self.endpoint_key(endpoint_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.exists(key)
        pipe.hsetnx(key, "disabled_at", repr(round(time.time(), 3)))
        pipe.hsetnx(key, "disabled_reason", reason)
        exists, *_ = pipe.execute()
        if not exists:  # hsetnx created a stray hash for an unknown id: take it back
            self.redis.delete(key)
        return bool(exists)

    def disable_owner(self, owner: str, reason: str) -> list[str]:
        """Disable every active endpoint of ``owner`` (a revoked key); returns their ids."""
        done = []
        for endpoint in self.list(owner):
            if endpoint.active and self.disable(endpoint.id, reason):
                done.append(endpoint.id)
        return done

    def list(self, owner: str | None = None) -> list[Endpoint]:
        """The owner's endpoints (every endpoint when ``owner`` is None), oldest first."""
        key = self.all_key if owner is None else self.owner_key(owner)
        ids = sorted(m.decode() for m in self.redis.smembers(key))
        found = [e for e in (self.get(i) for i in ids) if e is not None]
        return sorted(found, key=lambda e: e.created_at)

    def subscribers(self, owner: str, event_type: str) -> list[Endpoint]:
        return [e for e in self.list(owner) if e.wants(event_type)]

    def subscribers_any_owner(self, event_type: str) -> list[Endpoint]:
        return [e for e in self.list() if e.wants(event_type)]

    def remove(self, endpoint_id: str, owner: str | None = None) -> bool:
        """Delete an endpoint (only the owner's own when ``owner`` is given)."""
        endpoint = self.get(endpoint_id)
        if endpoint is None or (owner is not None and endpoint.owner != owner):
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.endpoint_key(endpoint_id))
        pipe.srem(self.owner_key(endpoint.owner), endpoint_id)
        pipe.srem(self.all_key, endpoint_id)
        with contextlib.suppress(RefusedURL):
            pipe.hdel(
                self.urls_key(endpoint.owner), canonical_url(*check_url(endpoint.url, self.env))
            )
        pipe.execute()
        return True


def canonical_url(scheme: str, host: str, port: int, path: str) -> str:
    """The form two spellings of one URL share (host case, default port)."""
    return f"{scheme}://{host}:{port}{path}"


def _events(events: Iterable[str] | None) -> frozenset[str]:
    if events is None:
        return frozenset(EVENT_TYPES)
    if isinstance(events, str) or not isinstance(events, Sequence | set | frozenset):
        raise InvalidEndpoint("events", "invalid_type", "Must be a list of event types.")
    if not all(isinstance(e, str) for e in events):
        # a nested list or object is unhashable (500 before: [21])
        raise InvalidEndpoint(
            "events", "invalid_type", "Must be a list of event type strings, nothing nested."
        )
    wanted = frozenset(events)
    unknown = [e for e in wanted if e not in EVENT_TYPES]
    if unknown or not wanted:
        # the unknown values are not echoed: they could be anything a client sends
        raise InvalidEndpoint(
            "events",
            "invalid_choice",
            f"{len(unknown)} unknown event type(s) or none; known: {', '.join(EVENT_TYPES)}.",
        )
    return wanted
