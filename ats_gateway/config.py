"""Typed settings, read from `ATS_GATEWAY_*` environment variables.

`Settings.from_env()` reads the environment; `create_app(config)` also accepts a `Settings` or a
mapping of overrides (field name -> value), which is how tests and `ats-gateway dev` configure
the app without a `.env` file. Each Salesforce connection (one integration user per purpose)
has its own block: `ATS_GATEWAY_<CONNECTION>_<FIELD>`, e.g. `ATS_GATEWAY_JOB_PORTAL_USERNAME`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

PREFIX = "ATS_GATEWAY_"
CONNECTION_NAMES = ("job_portal", "interview_feedback")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Contracts, describe snapshots and permission sets ship inside the package (package data).
PACKAGE_SCHEMAS = Path(__file__).resolve().parent / "schemas"


@dataclass(frozen=True)
class ConnectionConfig:
    """Credentials and endpoints of one integration user (one Salesforce connection)."""

    name: str
    login_url: str = ""
    auth_flow: str = "password"  # password | client_credentials | jwt_bearer | refresh_token
    client_id: str = field(default="", repr=False)
    client_secret: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    security_token: str = field(default="", repr=False)
    private_key: str = field(default="", repr=False)  # PEM text, or a path to a PEM file
    refresh_token: str = field(default="", repr=False)
    api_version: str = "62.0"
    verify_tls: bool = True

    @property
    def configured(self) -> bool:
        return bool(self.login_url and self.client_id)


@dataclass(frozen=True)
class Settings:
    """Everything the gateway reads from its environment. Secrets are excluded from repr."""

    env: str = "production"  # production | dev | test
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Redis Sentinel ([20], ats_gateway/redis_clients.py): "host:port,host:port" of the
    # Sentinels; empty: `redis_url` is the server. With Sentinels, `redis_url` still gives the
    # database number, password (redis://:password@/0) and TLS (rediss://) of the data nodes.
    redis_sentinels: str = ""
    redis_sentinel_master: str = "ats-gateway"  # the name Sentinel monitors the primary as
    redis_sentinel_password: str = field(default="", repr=False)  # the Sentinels' own auth
    redis_sentinel_tls: bool = False
    redis_socket_timeout: float = 5.0
    secret_key: str = field(default="", repr=False)  # signs interviewer links, cursors
    public_url: str = "http://127.0.0.1:8000"
    log_format: str = "json"  # json | text
    log_level: str = "INFO"
    max_body_bytes: int = 8 * 1024 * 1024
    body_read_timeout: float = 10.0  # a whole request body must arrive within this
    schemas_dir: str = str(PACKAGE_SCHEMAS)
    sf_connect_timeout: float = 5.0
    sf_read_timeout: float = 30.0
    api_reserve_fraction: float = 0.10
    jobs_staleness_seconds: int = 60
    jobs_cache_max_age: int = 5  # Cache-Control max-age of job listings (seconds)
    # Deltas in the jobs log between two full snapshots (compaction); a bigger number writes
    # the catalogue less often, a newly started process replays more.
    jobs_compact_every: int = 1000
    # Describes are revalidated after each full jobs reconciliation (events_reconcile_seconds)
    # and at the latest this often; each costs one Describe Global call per connection.
    describe_refresh_seconds: int = 6 * 3600
    describe_clock_skew_seconds: float = 120.0  # If-Modified-Since starts this far back
    describe_local_ttl_seconds: float = 1.0  # how often a process re-checks the cached version
    delivery_batch_size: int = 1000
    delivery_window_seconds: float = 2.0
    retry_max_delay_seconds: int = 600
    retry_base_delay_seconds: float = 1.0
    # A batch's lease and the drain lock, renewed every third of it by a heartbeat while the
    # worker works: a killed worker's batch is taken over within this (issue [14]).
    delivery_lease_seconds: int = 30
    delivery_heartbeat: bool = True  # off only in tests that make leases run out on purpose
    # [19] A drain starts no batch after this; the batch in flight then has its calls' timeouts
    # more before the task's soft time limit interrupts it (tasks/limits.py).
    drain_max_seconds: float = 45.0
    # Without the ATS_Gateway_Id__c fields: how long a batch whose create got no answer waits
    # before the org is read again (longer than the org's slowest write).
    delivery_settle_seconds: float = 120.0
    # /readyz says "degraded" when the oldest due application has waited longer than this
    # (a fixed threshold until the pacing of [13] says what wait to expect).
    delivery_lag_alert_seconds: float = 300.0
    application_status_ttl_days: int = 30
    idempotency_ttl_seconds: int = 86400
    intake_fsync: bool = True  # wait for the AOF fsync (Redis >= 7.2 WAITAOF) before a 202
    # Replicas that must have the application in their AOF before a 202 (WAITAOF 1 N); -1:
    # 1 with Sentinel configured, else 0. Not confirmed within the timeout: 503, retry.
    intake_replicas: int = -1
    # A replica reports its fsynced offset about once a second (measured: ~1 s per confirmed
    # 202 with Valkey 8.1 replicas), so the timeout leaves room for a few reports.
    intake_durable_timeout_ms: int = 5000
    delivery_budget_defer_seconds: float = 60.0  # API budget reserve reached: look again
    # The gateway's share of the org's daily API limit (services/pacing.py): a fraction of the
    # limit, or an absolute calls-per-day figure (> 0 replaces the share).
    api_share: float = 0.2
    api_calls_per_day: int = 0
    api_interactive_headroom: float = 0.05  # of the ceiling, left by delivery for interactive
    delivery_max_wait_seconds: float = 900.0  # latency bound of a paced delivery
    delivery_paced: bool = True  # false: only the fixed micro-batch window (the old behaviour)
    budget_probe_seconds: float = 300.0  # paused or waiting: ask /limits at most this often
    jobs_hook_secret: str = field(default="", repr=False)
    cors_max_age: int = 600
    # Consumer access (ats_gateway.security): rate limits are `limits` strings; a key's
    # own limit replaces the per-key ones; per-IP limits do not apply to secret keys.
    rate_limit_key_read: str = "600/minute"
    rate_limit_key_submit: str = "120/minute"
    rate_limit_ip_read: str = "300/minute"
    rate_limit_ip_submit: str = "10/minute"
    operator_networks: str = ""  # CIDRs whose clients see /readyz detail and /metrics
    trusted_proxy_hops: int = 0  # X-Forwarded-For entries to trust for the client IP
    form_min_fill_seconds: float = 3.0
    form_token_max_age: int = 7200
    honeypot_field: str = "homepage"
    max_json_depth: int = 32
    max_header_bytes: int = 16384
    feedback_link_ttl_seconds: int = 7 * 86400  # default lifetime of an interviewer link
    feedback_link_max_ttl_seconds: int = 90 * 86400
    feedback_context_ttl_seconds: int = 60  # interview + topics cached per interview
    # The demo career site at /demo (ats_gateway.api.demo): always on when env == "dev".
    demo_enabled: bool = False
    demo_publishable_key: str = ""  # empty: the demo key derived from secret_key
    # Change events (`ats-gateway events`, ats_gateway.events): the Pub/Sub API endpoint,
    # the full reconciliation interval and the delta-polling fallback.
    pubsub_endpoint: str = "api.pubsub.salesforce.com:7443"
    pubsub_tls: bool = True
    events_reconcile_seconds: float = 6 * 3600.0
    events_poll_seconds: float = 30.0
    events_stream_retry_seconds: float = 60.0
    events_heartbeat_seconds: float = 5.0
    events_lease_seconds: float = 20.0
    # Outbound webhooks ([17], ats_gateway.services.webhooks): retries back off exponentially
    # (base, cap) until they cover the window, then the event is dead-lettered.
    webhook_retry_base_seconds: float = 5.0
    webhook_retry_max_seconds: float = 7200.0
    webhook_retry_window_seconds: float = 86400.0
    # Each attempt has one wall-clock deadline (connect + TLS + send + the whole answer); a send
    # run stops starting attempts after run_seconds; the Celery limits of the send task are
    # sized from both (tasks/webhooks.py). Fair sharing ([19], services/webhooks/fairness.py):
    # at most key_concurrency send runs at a time per API key; after breaker_failures failed
    # runs in a row an endpoint pauses for breaker_base_seconds, doubling up to _max_seconds.
    webhook_connect_timeout: float = 3.0
    webhook_deadline_seconds: float = 10.0
    webhook_run_seconds: float = 30.0
    webhook_key_concurrency: int = 2
    webhook_breaker_failures: int = 5
    webhook_breaker_base_seconds: float = 30.0
    webhook_breaker_max_seconds: float = 1800.0
    # PEM CAs to trust for receivers instead of the system's (empty: the system's; tests and
    # private CAs)
    webhook_ca_file: str = ""
    webhook_retention_seconds: int = 7 * 86400  # sent events' records and dead letters
    webhook_batch_size: int = 50
    webhook_status_poll_seconds: float = 1.0  # how often the org's status changes are read
    # [22] Job lifecycle events (services/jobs/lifecycle.py): how often the beat sweeps read
    # the stream for `job.closed` webhooks and for search-engine notifications.
    job_events_poll_seconds: float = 1.0
    search_poll_seconds: float = 2.0
    # Google Indexing API (services/indexing/google.py): on when a service-account key file
    # is set; the token URI (empty: the key file's) and endpoints are overridable for tests.
    google_indexing_key_file: str = ""
    google_indexing_token_uri: str = ""
    google_indexing_endpoint: str = "https://indexing.googleapis.com/v3/urlNotifications:publish"
    google_indexing_batch_endpoint: str = "https://indexing.googleapis.com/batch"
    google_indexing_daily_quota: int = 200  # publish requests a day (Google's default quota)
    google_indexing_minute_quota: int = 380  # requests a minute, all endpoints (Google's default)
    google_indexing_batch_size: int = 100  # Google's limit per batch request
    # IndexNow (services/indexing/indexnow.py): on when a key is set; host: the job pages'
    # host (empty: from the job page URLs); key location: empty means https://host/{key}.txt.
    indexnow_key: str = ""
    indexnow_host: str = ""
    indexnow_key_location: str = ""
    indexnow_endpoint: str = "https://api.indexnow.org/indexnow"
    indexnow_batch_size: int = 10000  # IndexNow's limit per POST
    search_connect_timeout: float = 5.0
    search_read_timeout: float = 20.0
    search_retry_base_seconds: float = 30.0  # after a failed request (doubles, with jitter)
    search_retry_max_seconds: float = 3600.0
    # Distribution (services/feeds, api/feeds.py, api/boards.py): JSON-LD, sitemap, Indeed and
    # LinkedIn XML feeds (read with `?token=<feed key>`; empty key: feed off), Indeed Apply.
    hiring_org_name: str = "Redwood"
    hiring_org_url: str = ""  # empty: public_url
    hiring_org_logo: str = ""
    job_page_url_template: str = ""  # e.g. https://careers.example.com/jobs/{id}; empty: demo page
    sitemap_max_urls: int = 50000
    # Board feeds and the sitemap are rebuilt at most this often (in the background, the
    # previous build served meanwhile); boards read them a few times a day. 0: on each change.
    feeds_rebuild_seconds: float = 300.0
    feed_key_indeed: str = field(default="", repr=False)
    feed_key_linkedin: str = field(default="", repr=False)
    indeed_apply_api_token: str = field(default="", repr=False)
    indeed_apply_secret: str = field(default="", repr=False)  # HMAC-SHA1 key of X-Indeed-Signature
    linkedin_company_id: str = ""
    linkedin_poster_email: str = ""
    connections: dict[str, ConnectionConfig] = field(
        default_factory=lambda: {name: ConnectionConfig(name=name) for name in CONNECTION_NAMES}
    )

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """The Sentinels as (host, port) pairs (empty: no Sentinel)."""
        found = []
        for part in self.redis_sentinels.split(","):
            host, sep, port = part.strip().rpartition(":")
            if part.strip():
                found.append((host if sep else part.strip(), int(port) if sep else 26379))
        return found

    @property
    def durable_replicas(self) -> int:
        """N of WAITAOF 1 N: `intake_replicas`, or its default (1 behind Sentinel, else 0)."""
        if self.intake_replicas >= 0:
            return self.intake_replicas
        return 1 if self.redis_sentinels.strip() else 0

    @property
    def celery_visibility_timeout(self) -> int:
        # A redelivery must never race a task that is only waiting out its retry delay.
        return self.retry_max_delay_seconds * 2 + 3600

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from the environment, then apply keyword overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "connections":
                continue
            raw = environ.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _coerce(raw, f.type)
        connections = {}
        for name in CONNECTION_NAMES:
            conn_values: dict[str, Any] = {}
            for f in fields(ConnectionConfig):
                if f.name == "name":
                    continue
                raw = environ.get(f"{PREFIX}{name.upper()}_{f.name.upper()}")
                if raw is not None:
                    conn_values[f.name] = _coerce(raw, f.type)
            connections[name] = ConnectionConfig(name=name, **conn_values)
        values["connections"] = connections
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process (worker, gunicorn)."""
        env: dict[str, str] = {}
        for f in fields(self):
            if f.name == "connections":
                continue
            env[PREFIX + f.name.upper()] = _render(getattr(self, f.name))
        for name, conn in self.connections.items():
            for f in fields(ConnectionConfig):
                if f.name != "name":
                    env[f"{PREFIX}{name.upper()}_{f.name.upper()}"] = _render(getattr(conn, f.name))
        return env


def linkedin_feed_missing(company_id: str, poster_email: str) -> list[str]:
    """[22] The settings the LinkedIn feed lacks: LinkedIn requires ``companyId`` (the numeric
    id of the company's LinkedIn Page) and ``posterEmail`` on every job. Here, not in
    services/feeds, because `ats-gateway doctor` (metadata layer) checks it too."""
    out = []
    if not company_id.strip().isdigit():
        out.append(PREFIX + "LINKEDIN_COMPANY_ID")
    if "@" not in poster_email.strip()[1:-1]:
        out.append(PREFIX + "LINKEDIN_POSTER_EMAIL")
    return out


def _coerce(raw: str, type_name: Any) -> Any:
    type_name = str(type_name)
    if type_name == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if type_name == "int":
        return int(raw)
    if type_name == "float":
        return float(raw)
    return raw


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
