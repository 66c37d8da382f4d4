"""Webhook endpoints: which URL of which API key wants which events.

Redis keys::

    ats-gateway:webhooks:endpoint:<id>   hash: id owner url events (space-separated) secret
                                         created_at
    ats-gateway:webhooks:owner:<owner>   set of the owner's endpoint ids
    ats-gateway:webhooks:endpoints       set of every endpoint id (the sweep walks it)

``owner`` is the submitting scope of applications, ``key:<api key id>``: an endpoint only ever
receives events about applications its own key submitted. The signing secret is stored
because each delivery is signed with it; it is shown to the key's holder once, at creation.

Errors::

    InvalidEndpoint   ``field``, ``code``, ``message`` (the public field name)
"""

from __future__ import annotations

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

    def wants(self, event_type: str) -> bool:
        return event_type in self.events

    def to_public_dict(self) -> dict:
        return {
            "id": self.id,
            "url": self.url,
            "events": sorted(self.events),
            "created_at": self.created_at,
        }


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

    all_key = PREFIX + "endpoints"

    def create(self, owner: str, url: str, events: Iterable[str] | None = None) -> Endpoint:
        """Register an endpoint (the returned one carries its secret: show it once)."""
        wanted = _events(events)
        try:
            check_url(url, self.env)
            resolve(url, self.env)  # refuse a private address now, not at the first event
        except RefusedURL as exc:
            raise InvalidEndpoint("url", exc.code, exc.message) from None
        if self.redis.scard(self.owner_key(owner)) >= MAX_ENDPOINTS_PER_OWNER:
            raise InvalidEndpoint(
                "url", "too_many", f"A key may have at most {MAX_ENDPOINTS_PER_OWNER} endpoints."
            )
        endpoint = Endpoint(
            id="ep_" + secrets.token_hex(8),
            owner=owner,
            url=url,
            events=wanted,
            created_at=round(time.time(), 3),
            secret=new_secret(),
        )
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(
            self.endpoint_key(endpoint.id),
            mapping={
                "id": endpoint.id,
                "owner": owner,
                "url": url,
                "events": " ".join(sorted(wanted)),
                "secret": endpoint.secret,
                "created_at": repr(endpoint.created_at),
            },
        )
        pipe.sadd(self.owner_key(owner), endpoint.id)
        pipe.sadd(self.all_key, endpoint.id)
        pipe.execute()
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
        )

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
        pipe.execute()
        return True


def _events(events: Iterable[str] | None) -> frozenset[str]:
    if events is None:
        return frozenset(EVENT_TYPES)
    if isinstance(events, str) or not isinstance(events, Sequence | set | frozenset):
        raise InvalidEndpoint("events", "invalid_type", "Must be a list of event types.")
    wanted = frozenset(events)
    unknown = sorted(e for e in wanted if e not in EVENT_TYPES)
    if unknown or not wanted:
        raise InvalidEndpoint(
            "events",
            "invalid_choice",
            f"Unknown or no event types {unknown}; known: {', '.join(EVENT_TYPES)}.",
        )
    return wanted
