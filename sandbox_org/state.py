"""The sandbox org as one object: configuration, metadata, records, sessions, counters, faults.

``create_app`` stores it in ``app.extensions["sandbox"]`` so tests and the CLI can reach the
API counter, the fault settings and the store from Python.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox_org.auth import Sessions, User
from sandbox_org.describe_builder import default_schemas_dir
from sandbox_org.dml import Records, now_iso
from sandbox_org.pubsub.cdc import ChangeEvents, tracked_entities
from sandbox_org.query import Cursors
from sandbox_org.schema import Schema
from sandbox_org.store import Store

# Versions this org serves (Spring '23 .. Summer '25); labels per Salesforce release names.
API_VERSIONS = ("57.0", "58.0", "59.0", "60.0", "61.0", "62.0", "63.0", "64.0")
_RELEASES = {
    "57.0": "Spring '23",
    "58.0": "Summer '23",
    "59.0": "Winter '24",
    "60.0": "Spring '24",
    "61.0": "Summer '24",
    "62.0": "Winter '25",
    "63.0": "Spring '25",
    "64.0": "Summer '25",
}


def release_label(version: str) -> str:
    return _RELEASES.get(version, f"API {version}")


@dataclass
class SandboxConfig:
    """Everything ``create_app`` accepts (a dict with these keys works too)."""

    db: str = ":memory:"
    users: list[dict[str, Any]] | None = None  # None: the demo users (seed.DEMO_USERS)
    users_file: str | None = None  # TOML with [[users]] tables, instead of ``users``
    api_versions: tuple[str, ...] = API_VERSIONS
    token_ttl: float = 7200.0
    daily_api_limit: int = 100_000
    faults_enabled: bool = False
    fault_seed: int | None = None
    schemas_dir: str | None = None
    seed: str | None = None  # "demo": generate the demo org when the store is empty
    seed_jobs: int = 500
    instance_url: str | None = None  # default: the URL the request came to
    # Change Data Capture (Pub/Sub API): the objects with change events, and the 24 h
    # delivery allocation reported as DailyDeliveredPlatformEvents (Unlimited/Performance).
    cdc_entities: tuple[str, ...] = ("bpats__Job__c", "bpats__Job_Board_Application__c")
    daily_delivery_limit: int = 50_000
    # A Subscribe stream owed no events is closed this long after its last FetchResponse
    # (Salesforce: 60 s, Pub/Sub API guide "Subscribe RPC Method"); tests shorten it.
    pubsub_idle_close_seconds: float = 60.0

    @classmethod
    def coerce(cls, config: SandboxConfig | dict[str, Any] | None) -> SandboxConfig:
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        known = {k: v for k, v in dict(config).items() if k in cls.__dataclass_fields__}
        for key in ("api_versions", "cdc_entities"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


class Usage:
    """The org's daily API request counter (thread-safe).

    Besides the total Salesforce counts, it keeps what each call was (``kinds``: e.g.
    ``GET /sobjects``, ``GET /sobjects/*/describe``, ``GET /query``, ``POST /composite``) and
    the OAuth token grants (``logins``: not API calls in Salesforce's count, but org traffic),
    so a benchmark or test can say what an idle gateway spends its calls on."""

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self.limit = limit
        self.used = 0
        self.logins = 0
        self.kinds: dict[str, int] = {}

    def take(self, n: int = 1, kind: str | None = None) -> bool:
        """Count n calls; False (and nothing counted) when the limit is already reached."""
        with self._lock:
            if self.used >= self.limit:
                return False
            self.used += n
            if kind:
                self.kinds[kind] = self.kinds.get(kind, 0) + n
            return True

    def login(self) -> None:
        with self._lock:
            self.logins += 1

    def header(self) -> str:
        with self._lock:
            return f"api-usage={self.used}/{self.limit}"

    def set(self, *, used: int | None = None, limit: int | None = None) -> None:
        with self._lock:
            if used is not None:
                self.used = int(used)
                if not self.used:  # a reset starts the breakdown over too
                    self.kinds.clear()
                    self.logins = 0
            if limit is not None:
                self.limit = int(limit)

    def snapshot(self, *, detail: bool = False) -> dict[str, Any]:
        """The counter; with `detail`, also the calls by kind and the OAuth logins."""
        with self._lock:
            out: dict[str, Any] = {
                "used": self.used,
                "limit": self.limit,
                "remaining": self.limit - self.used,
            }
            if detail:
                out["logins"] = self.logins
                out["kinds"] = dict(sorted(self.kinds.items()))
            return out


NUMERIC_FAULTS = (
    "latency_ms",
    "error_rate",
    "lock_rate",
    "write_latency_ms",
    "upload_latency_ms",
    "withhold_rate",
    "withhold_ms",
)


@dataclass
class Faults:
    """Injected faults; decisions come from one seeded RNG so a run can be replayed."""

    latency_ms: float = 0.0
    error_rate: float = 0.0  # share of requests answered 503
    lock_rate: float = 0.0  # share of record writes failing with UNABLE_TO_LOCK_ROW
    # A slow org, independent of Redis or the client: each write request waits this long
    # before it runs (and commits), so a client with a shorter read timeout gives up first.
    write_latency_ms: float = 0.0
    # The same for writes that create files (ContentVersion) only: a slow upload.
    upload_latency_ms: float = 0.0
    # Share of write requests whose answer is withheld after the write committed: delayed by
    # ``withhold_ms`` (past the client's read timeout), or with 0 the connection is closed.
    withhold_rate: float = 0.0
    withhold_ms: float = 0.0
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, **changes: Any) -> None:
        with self._lock:
            for key in NUMERIC_FAULTS:
                if key in changes and changes[key] is not None:
                    setattr(self, key, float(changes[key]))
            if "seed" in changes:
                self.seed = changes["seed"]
                self._rng = random.Random(self.seed)

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def snapshot(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "lock_rate": self.lock_rate,
            "write_latency_ms": self.write_latency_ms,
            "upload_latency_ms": self.upload_latency_ms,
            "withhold_rate": self.withhold_rate,
            "withhold_ms": self.withhold_ms,
            "seed": self.seed,
        }


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        schemas = Path(config.schemas_dir) if config.schemas_dir else default_schemas_dir()
        self.schema = Schema(schemas)
        self.store = Store(config.db)
        self.records = Records(self.schema, self.store)
        self.sessions = Sessions(ttl=config.token_ttl)
        self.usage = Usage(config.daily_api_limit)
        self.cursors = Cursors(self.store.ids.new)
        self.faults = Faults()
        self.faults.configure(seed=config.fault_seed)
        self.events = ChangeEvents(
            tracked_entities(self.schema.objects, config.cdc_entities),
            delivery_limit=config.daily_delivery_limit,
        )
        self.store.listeners.append(self.events.on_commit)
        self.pubsub_port: int | None = None  # set by server.serve() when it serves Pub/Sub
        self.users: dict[str, User] = {}
        self._perms: dict[tuple[str, ...], Any] = {}

    def add_user(self, spec: dict[str, Any]) -> User:
        """Register an integration user (and its User record, if new)."""
        for ps in spec.get("permission_sets", []):
            if ps not in self.schema.permission_sets:
                raise ValueError(f"unknown permission set {ps!r} for user {spec['username']}")
        user = User(
            key=spec.get("key", spec["username"]),
            username=spec["username"],
            password=spec["password"],
            security_token=spec.get("security_token", ""),
            client_id=spec["client_id"],
            client_secret=spec["client_secret"],
            permission_sets=list(spec.get("permission_sets", [])),
            first_name=spec.get("first_name", ""),
            last_name=spec.get("last_name", "Integration"),
            email=spec.get("email", spec["username"]),
            certificate=spec.get("certificate"),
            refresh_token=spec.get("refresh_token"),
            active=spec.get("active", True),
        )
        existing = [
            r
            for r in self.store.all("User")
            if (r.get("Username") or "").lower() == user.username.lower()
        ]
        if existing:
            user.user_id = existing[0]["Id"]
        else:
            user.user_id = self.store.ids.new("005")
            stamp = now_iso()
            record = {f["name"]: None for f in self.schema.objects["User"].describe["fields"]}
            record.update(
                Id=user.user_id,
                Username=user.username,
                FirstName=user.first_name or None,
                LastName=user.last_name,
                Name=" ".join(p for p in (user.first_name, user.last_name) if p),
                Email=user.email,
                Alias=(user.first_name[:1] + user.last_name[:4]).lower() or "user",
                IsActive=user.active,
                IsDeleted=False,
                CreatedDate=stamp,
                CreatedById=user.user_id,
                LastModifiedDate=stamp,
                LastModifiedById=user.user_id,
                SystemModstamp=stamp,
            )
            self.store.put("User", record)
        self.users[user.key] = user
        self.sessions.add_user(user)
        return user

    def perms(self, user: User) -> Any:
        key = tuple(user.permission_sets)
        hit = self._perms.get(key)
        if hit is None:
            hit = self._perms[key] = self.schema.perms_for(user.permission_sets)
        return hit
