"""API keys: issue, look up, list and revoke; only a hash of each key is stored (in Redis).

A key reads `pk_<id>_<secret>` (publishable: browser-safe, bound to origins) or
`sk_<id>_<secret>` (secret: server-to-server). `<id>` is a short public identifier that
listings show and logs may name; `<secret>` is 256 bits from `secrets`. Because the secret is
high-entropy, a plain SHA-256 of the whole key is enough to store (no salt, no slow hash, and
no dependency on the gateway's signing secret, so rotating that does not void every key).
Verification is a constant-time compare of the hashes.

Each process keeps the keys it has authenticated in memory (`KeyStore.lookup`), each with the
generation counter it was read at; a request served from that cache is confirmed against the
current generation in the same Redis round trip as its rate-limit counter (`ratelimit.py`), or
with one GET where no limit applies, and looked up afresh when anything changed. So a revoked
key is refused at its next request, on every process, and a listing does not read the key's
hash from Redis each time. Only successful lookups are cached (bounded, least recently used):
unknown tokens cannot fill the cache.

Redis layout (one hash per key, an index set, a generation counter bumped on every change so
per-process caches such as the CORS origin index can tell when to rebuild):

    ats:keys:<id>           hash: kind name scopes origins rate_limit created_at revoked_at hash
    ats:keys:index          set of ids
    ats:keys:generation     integer
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis
from limits import parse_many

from ats_gateway.redis_tracking import HotKeys, PlainKeys

PUBLISHABLE = "publishable"
SECRET = "secret"
KIND_PREFIX = {PUBLISHABLE: "pk", SECRET: "sk"}
PREFIX_KIND = {v: k for k, v in KIND_PREFIX.items()}

#: Every scope a key can hold; `admin` satisfies any scope check.
SCOPES = (
    "jobs:read",
    "applications:write",
    "applications:read",
    "feedback:issue",
    "webhooks:manage",
    "operator",  # readiness detail and metrics: for monitoring, nothing else
    "admin",
)
#: A publishable key is visible to anyone who opens the career site, so it may only hold these.
PUBLISHABLE_SCOPES = frozenset({"jobs:read", "applications:write"})

_KEY = re.compile(r"^(pk|sk)_([a-z0-9]{4,32})_([A-Za-z0-9_-]{20,128})$")
_ID = re.compile(r"^[a-z0-9]{4,32}$")
_NS = "ats:keys:"
INDEX = _NS + "index"
GENERATION = _NS + "generation"


class InvalidKeySpec(ValueError):
    """A key cannot be created as asked (unknown scope, missing origins, bad rate limit)."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret. `g.api_key` in a view is one of these."""

    id: str
    kind: str
    name: str
    scopes: frozenset[str]
    origins: tuple[str, ...] = ()
    rate_limit: str = ""  # e.g. "100/minute"; empty: the gateway's defaults apply
    created_at: float = 0.0
    revoked_at: float = 0.0
    key_hash: str = field(default="", repr=False)
    source: str = ""  # default source of its applications (a job board's name), see sources.py

    @property
    def prefix(self) -> str:
        """The public part (`pk_<id>`), safe to show in listings and logs."""
        return f"{KIND_PREFIX[self.kind]}_{self.id}"

    @property
    def publishable(self) -> bool:
        return self.kind == PUBLISHABLE

    @property
    def active(self) -> bool:
        return not self.revoked_at

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def allows_origin(self, origin: str) -> bool:
        return normalize_origin(origin, strict=False) in self.origins

    def to_public_dict(self) -> dict:
        return {
            "id": self.id,
            "prefix": self.prefix,
            "kind": self.kind,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "origins": list(self.origins),
            "rate_limit": self.rate_limit or None,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at or None,
            "source": self.source or None,
        }


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def normalize_origin(origin: str, *, strict: bool = True) -> str:
    """`scheme://host[:port]`, lower-cased, default ports dropped. Strict mode rejects paths.

    Not strict (an `Origin` header, anyone's text), what cannot be parsed (`http://a:x`,
    `http://[::1`) comes back as the raw lower-cased text, which matches no bound origin.
    """
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        if strict:
            raise InvalidKeySpec(f"origin {origin!r} is not http(s)://host[:port]") from None
        return origin.strip().lower()
    if parts.scheme not in ("http", "https") or not parts.hostname:
        if strict:
            raise InvalidKeySpec(f"origin {origin!r} is not http(s)://host[:port]")
        return origin.strip().lower()
    if strict and (parts.path not in ("", "/") or parts.query or parts.fragment or parts.username):
        raise InvalidKeySpec(f"origin {origin!r} must not have a path, query or credentials")
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def validate_rate_limit(value: str) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    try:
        parse_many(value)
    except ValueError as exc:
        raise InvalidKeySpec(f"rate limit {value!r} is not like '100/minute'") from exc
    return value


def parse_plaintext(plaintext: str) -> tuple[str, str] | None:
    """(kind, id) of a well-formed key, or None."""
    match = _KEY.match(plaintext or "")
    if not match:
        return None
    return PREFIX_KIND[match.group(1)], match.group(2)


@dataclass(frozen=True)
class Lookup:
    """An authenticated key, the key generation it was read at, and whether it came from this
    process's cache (then the caller confirms the generation is still current)."""

    key: ApiKey
    generation: int
    cached: bool


class KeyStore:
    """API keys in Redis. Knows nothing of Flask; the CLI and the HTTP edge both use it."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        cache_size: int = 4096,
        hot: HotKeys | None = None,
    ) -> None:
        self.redis = client
        self.cache_size = cache_size
        # The generation is read on every request: the app passes keys the process answers
        # itself while Redis has not said they changed (`redis_tracking.TrackedKeys`).
        self.hot: HotKeys = hot or PlainKeys(client)
        # sha256(plaintext) -> (key, generation read at); only keys that authenticated
        self._cache: OrderedDict[str, tuple[ApiKey, int]] = OrderedDict()
        self._cache_lock = threading.Lock()

    # ------------------------------------------------------------------ writes

    def create(
        self,
        *,
        kind: str,
        name: str,
        scopes: Iterable[str],
        origins: Iterable[str] = (),
        rate_limit: str = "",
        key_id: str | None = None,
        plaintext_secret: str | None = None,
        source: str = "",
    ) -> tuple[ApiKey, str]:
        """Store a new key; returns it and its plaintext, which is never retrievable again."""
        if kind not in KIND_PREFIX:
            raise InvalidKeySpec(f"kind must be {PUBLISHABLE!r} or {SECRET!r}")
        scopes = frozenset(scopes)
        unknown = scopes - set(SCOPES)
        if unknown:
            raise InvalidKeySpec(f"unknown scope(s) {sorted(unknown)}; known: {', '.join(SCOPES)}")
        if not scopes:
            raise InvalidKeySpec("a key needs at least one scope")
        normalized = tuple(dict.fromkeys(normalize_origin(o) for o in origins))
        if kind == PUBLISHABLE:
            if not normalized:
                raise InvalidKeySpec("a publishable key must be bound to at least one origin")
            if scopes - PUBLISHABLE_SCOPES:
                raise InvalidKeySpec(
                    "a publishable key is visible in the browser; it may only hold "
                    + ", ".join(sorted(PUBLISHABLE_SCOPES))
                )
        elif normalized:
            raise InvalidKeySpec("origins apply to publishable keys only")
        if not name.strip():
            raise InvalidKeySpec("a key needs a name")
        key_id = key_id or secrets.token_hex(6)
        if not _ID.match(key_id):
            raise InvalidKeySpec("key id must be 4-32 lower-case letters or digits")
        secret = plaintext_secret or secrets.token_urlsafe(32)
        plaintext = f"{KIND_PREFIX[kind]}_{key_id}_{secret}"
        if not _KEY.match(plaintext):
            raise InvalidKeySpec("malformed key secret")
        key = ApiKey(
            id=key_id,
            kind=kind,
            name=name.strip(),
            scopes=scopes,
            origins=normalized,
            rate_limit=validate_rate_limit(rate_limit),
            created_at=round(time.time(), 3),
            key_hash=hash_key(plaintext),
            source=source.strip()[:255],
        )
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(_NS + key_id)
        pipe.hset(_NS + key_id, mapping=_to_hash(key))
        pipe.sadd(INDEX, key_id)
        pipe.incr(GENERATION)
        pipe.execute()
        self.hot.forget(GENERATION)
        return key, plaintext

    def revoke(self, key_id: str) -> ApiKey | None:
        """Mark a key revoked (kept for the audit trail). None if there is no such key."""
        key = self.get(key_id)
        if key is None:
            return None
        if key.active:
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(_NS + key_id, "revoked_at", repr(round(time.time(), 3)))
            pipe.incr(GENERATION)
            pipe.execute()
            self.hot.forget(GENERATION)
        return self.get(key_id)

    # ------------------------------------------------------------------ reads

    def get(self, key_id: str) -> ApiKey | None:
        if not _ID.match(key_id or ""):
            return None
        return _from_hash(key_id, self.redis.hgetall(_NS + key_id))

    def authenticate(self, plaintext: str) -> ApiKey | None:
        """The active key this plaintext is, or None (malformed, unknown, wrong secret, revoked)."""
        parsed = parse_plaintext(plaintext)
        if parsed is None:
            return None
        kind, key_id = parsed
        key = self.get(key_id)
        if key is None or key.kind != kind or not key.active:
            return None
        if not hmac.compare_digest(key.key_hash, hash_key(plaintext)):
            return None
        return key

    def lookup(self, plaintext: str) -> Lookup | None:
        """`authenticate`, from this process's cache when it holds the key.

        A cached answer is as of `Lookup.generation`: the caller must compare it with the
        current generation (`generation()`, or what the rate limiter read with its counter)
        and call `forget_cached()` and look up again when they differ."""
        parsed = parse_plaintext(plaintext)
        if parsed is None:
            return None
        digest = hash_key(plaintext)
        with self._cache_lock:
            hit = self._cache.get(digest)
            if hit is not None:
                self._cache.move_to_end(digest)
                return Lookup(hit[0], hit[1], cached=True)
        kind, key_id = parsed
        # The generation is read before the key, in one round trip: a change made after that
        # read bumps the counter past what the cache entry records. (No MULTI: Redis refuses
        # commands queued in a transaction when it is out of memory, and reads must go on.)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(GENERATION)
        pipe.hgetall(_NS + key_id)
        raw_generation, raw = pipe.execute()
        generation = int(raw_generation or 0)
        key = _from_hash(key_id, raw)
        if key is None or key.kind != kind or not key.active:
            return None
        if not hmac.compare_digest(key.key_hash, digest):
            return None
        with self._cache_lock:
            self._cache[digest] = (key, generation)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return Lookup(key, generation, cached=False)

    def forget_cached(self) -> None:
        """Drop every cached key (the generation moved: some key was created or revoked)."""
        with self._cache_lock:
            self._cache.clear()

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        ids = sorted(i.decode() for i in self.redis.smembers(INDEX))
        pipe = self.redis.pipeline(transaction=False)
        for key_id in ids:
            pipe.hgetall(_NS + key_id)
        keys = [_from_hash(i, raw) for i, raw in zip(ids, pipe.execute(), strict=True)]
        found = [k for k in keys if k is not None]
        found.sort(key=lambda k: (k.created_at, k.id))
        return [k for k in found if include_revoked or k.active]

    def generation(self) -> int:
        return int(self.hot.get(GENERATION) or 0)

    def active_count(self) -> dict[str, int]:
        counts = {PUBLISHABLE: 0, SECRET: 0}
        for key in self.list(include_revoked=False):
            counts[key.kind] += 1
        return counts


def _to_hash(key: ApiKey) -> dict[str, str]:
    return {
        "kind": key.kind,
        "name": key.name,
        "scopes": " ".join(sorted(key.scopes)),
        "origins": " ".join(key.origins),
        "rate_limit": key.rate_limit,
        "created_at": repr(key.created_at),
        "revoked_at": repr(key.revoked_at) if key.revoked_at else "",
        "hash": key.key_hash,
        "source": key.source,
    }


def _from_hash(key_id: str, raw: dict[bytes, bytes]) -> ApiKey | None:
    if not raw:
        return None
    values = {k.decode(): v.decode() for k, v in raw.items()}
    return ApiKey(
        id=key_id,
        kind=values.get("kind", SECRET),
        name=values.get("name", ""),
        scopes=frozenset(values.get("scopes", "").split()),
        origins=tuple(values.get("origins", "").split()),
        rate_limit=values.get("rate_limit", ""),
        created_at=float(values.get("created_at") or 0),
        revoked_at=float(values.get("revoked_at") or 0),
        key_hash=values.get("hash", ""),
        source=values.get("source", ""),
    )


# ---------------------------------------------------------------------- demo keys

DEMO_IDS = {PUBLISHABLE: "demopk", SECRET: "demosk"}


def ensure_demo_keys(
    store: KeyStore, *, signing_secret: str, origins: Iterable[str]
) -> dict[str, str]:
    """Create (or repair) the demo publishable and secret keys; returns their plaintexts.

    Idempotent: the secrets are derived from `signing_secret` (HMAC), so every call, in any
    process, yields the same keys without their plaintext ever being stored. The publishable
    key is bound to `origins` (the demo career site) and may read jobs and submit
    applications; the secret key may do everything a job board does.
    """
    if not signing_secret:
        raise InvalidKeySpec("demo keys are derived from the signing secret; set one first")
    wanted = {
        PUBLISHABLE: ("Demo career site", ("jobs:read", "applications:write"), tuple(origins)),
        SECRET: (
            "Demo job board",
            ("jobs:read", "applications:write", "applications:read", "feedback:issue"),
            (),
        ),
    }
    plaintexts = {}
    for kind, (name, scopes, bound) in wanted.items():
        secret = hmac.new(signing_secret.encode(), f"demo-key:{kind}".encode(), "sha256")
        token = secret.hexdigest()[:43]
        key_id = DEMO_IDS[kind]
        plaintext = f"{KIND_PREFIX[kind]}_{key_id}_{token}"
        existing = store.get(key_id)
        normalized = tuple(dict.fromkeys(normalize_origin(o) for o in bound))
        if (
            existing is None
            or not existing.active
            or existing.key_hash != hash_key(plaintext)
            or existing.scopes != frozenset(scopes)
            or existing.origins != normalized
        ):
            store.create(
                kind=kind,
                name=name,
                scopes=scopes,
                origins=bound,
                key_id=key_id,
                plaintext_secret=token,
            )
        plaintexts[kind] = plaintext
    return plaintexts
