"""The composition root: every long-lived piece of a gateway process, built in one place.

``build_services(settings)`` returns one frozen :class:`Services`; ``create_app`` stores it
once on the app (``app.extensions["services"]``) and the Celery worker, which runs inside that
app, uses the same object. Views and tasks take what they need from it with
``ats_gateway.extensions.services()``; nothing else builds a service, and nothing is built
lazily behind a view's back. Building connects to nothing: Redis connects on first command,
Salesforce clients authenticate on first call.

============================  =====================================================
piece (``Services.<name>``)   built by (the one place)
============================  =====================================================
redis                         :func:`build_redis` (here)
tracked                       ``redis_tracking.TrackedKeys`` (here): the key generation and the
                              jobs pointer, read by every request, kept in the process and
                              invalidated by Redis (client-side caching, [18])
metrics                       ``extensions.Metrics()`` (here); gauges: :func:`register_metrics`
readiness                     ``extensions.Readiness()`` (here); checks: :func:`register_checks`
connections                   ``connections.Connections(settings, redis)`` (one client each)
metadata                      ``metadata.build_metadata(settings, redis, fetchers)``
jobs                          ``services.jobs.build_service``
job_lifecycle                 ``services.jobs.lifecycle.JobLifecycle`` ([22]: opened, changed,
                              closed jobs onto a Redis stream, from every snapshot path)
events_state                  ``events.EventsState`` (the subscriber's mode, for /readyz
                              and the jobs service; the subscriber: ``events.build_subscriber``)
applications_outbox           ``services.delivery.Outbox.from_settings(redis, "applications")``
applications                  ``services.applications.runtime.build_service``
applications_deliverer        ``services.applications.runtime.build_deliverer``, wrapped in
                              ``services.webhooks.NotifyingDeliverer`` (outcomes -> webhooks)
pacer                         ``services.pacing.build_pacer`` (delivery held to the API budget)
feedback_outbox               ``services.delivery.Outbox.from_settings(redis, "feedback")``
feedback_contexts             ``services.feedback.runtime.build_contexts``
feedback                      ``services.feedback.runtime.build_service``
feedback_deliverer            ``services.feedback.runtime.build_deliverer``
links                         ``security.links.FeedbackLinks(redis, secret_key)``
link_issuer                   ``services.feedback.issuing.LinkIssuer``
key_store                     ``security.keys.KeyStore(redis)``
origin_index                  ``security.cors.OriginIndex(key_store)``
webhooks                      ``services.webhooks.runtime.build_webhooks`` ([17])
receipts                      ``services.applications.receipts.Receipts`` ([17])
feeds                         ``services.feeds.build_feeds`` (JSON-LD, sitemap, board feeds)
search                        ``services.indexing.build_notifier`` ([22]: Google Indexing API,
                              IndexNow; the Celery side is ``tasks/indexing.py``)
============================  =====================================================

Not here, on purpose: the Celery app (``tasks.celery_init_app``; Flask's convention keeps it
at ``app.extensions["celery"]``), the rate-limit counters (``security.init_app`` binds them) and
the CAPTCHA verifier (a plug-in set at run time with ``security.set_captcha_verifier``).

Adding a service: a field below, one line in :func:`build_services`, its readiness check in
:func:`register_checks` and its metrics in :func:`register_metrics`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask

from ats_gateway import metadata as metadata_layer
from ats_gateway import redis_clients
from ats_gateway.config import Settings
from ats_gateway.connections import Connections
from ats_gateway.events import EventsState
from ats_gateway.extensions import SERVICES, Metrics, Readiness
from ats_gateway.metadata import Metadata
from ats_gateway.metadata.sources import fetchers_from_connections
from ats_gateway.redis_tracking import TrackedKeys
from ats_gateway.security.cors import OriginIndex
from ats_gateway.security.keys import GENERATION, PUBLISHABLE, SECRET, KeyStore
from ats_gateway.security.links import FeedbackLinks
from ats_gateway.services import jobs as jobs_layer
from ats_gateway.services.applications import ApplicationService
from ats_gateway.services.applications import runtime as applications_runtime
from ats_gateway.services.applications.receipts import Receipts
from ats_gateway.services.delivery import Outbox
from ats_gateway.services.feedback import ContextReader, FeedbackDeliverer, FeedbackService
from ats_gateway.services.feedback import runtime as feedback_runtime
from ats_gateway.services.feedback.issuing import LinkIssuer
from ats_gateway.services.feeds import FeedsService, build_feeds
from ats_gateway.services.indexing import SearchMetrics, SearchNotifier, build_notifier
from ats_gateway.services.jobs import JobsError, JobsService
from ats_gateway.services.jobs.changes import GoneJobs
from ats_gateway.services.jobs.lifecycle import JobLifecycle
from ats_gateway.services.pacing import Pacer, build_pacer, forecast_collector
from ats_gateway.services.webhooks import NotifyingDeliverer
from ats_gateway.services.webhooks.runtime import WebhooksRuntime, build_webhooks
from ats_gateway.tasks import queues as work_queues

__all__ = ["Services", "build_redis", "build_services", "init_app"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """Every long-lived piece of one gateway process (see the module's table)."""

    settings: Settings
    redis: redis.Redis
    tracked: TrackedKeys
    metrics: Metrics
    readiness: Readiness
    connections: Connections
    metadata: Metadata
    jobs: JobsService
    job_lifecycle: JobLifecycle
    events_state: EventsState
    applications_outbox: Outbox
    applications: ApplicationService
    applications_deliverer: NotifyingDeliverer
    pacer: Pacer
    feedback_outbox: Outbox
    feedback_contexts: ContextReader
    feedback: FeedbackService
    feedback_deliverer: FeedbackDeliverer
    links: FeedbackLinks
    link_issuer: LinkIssuer
    key_store: KeyStore
    origin_index: OriginIndex
    webhooks: WebhooksRuntime
    receipts: Receipts | None
    feeds: FeedsService
    search: SearchNotifier


def build_redis(settings: Settings) -> redis.Redis:
    """The process's Redis client (connects on first command; bytes in, bytes out): the one
    server of `redis_url`, or the primary behind Sentinel (``redis_clients.build_redis``).
    CLI commands use this too, so every client follows a failover."""
    return redis_clients.build_redis(settings)


def build_services(settings: Settings) -> Services:
    """Build every long-lived piece for ``settings``, then register readiness and metrics."""
    redis_client = build_redis(settings)
    # [18] what every request reads and almost nothing writes: no round trip per request
    tracked = TrackedKeys(
        redis_client,
        redis_clients.tracking_connection(settings),
        [GENERATION, jobs_layer.CURRENT_KEY],
    )
    connections = Connections(settings, redis_client)
    metadata = metadata_layer.build_metadata(
        settings, redis_client, fetchers_from_connections(connections)
    )
    jobs = jobs_layer.build_service(
        settings, redis_client, metadata, connections.client, hot=tracked
    )
    # [12] While `ats-gateway events` heartbeats, it keeps the snapshot current (no reload for
    # staleness, beat's full reload stands down); jobs that left answer 410 for 30 days.
    events_state = EventsState(redis_client, heartbeat_seconds=settings.events_heartbeat_seconds)
    jobs.kept_current = events_state.live
    gone_jobs = GoneJobs(redis_client)
    jobs.gone = gone_jobs.__contains__
    # [22] every new snapshot version tells the lifecycle stream what opened, changed, closed
    job_lifecycle = JobLifecycle(redis_client)
    jobs.left = gone_jobs.record  # every full reload reports what left to the one gone set
    jobs.lifecycle = job_lifecycle  # [22] told of every published change

    feeds = build_feeds(settings, jobs, redis_client)
    feeds.gone = closed_job_lookup(feeds.gone, gone_jobs)

    applications_outbox = Outbox.from_settings(redis_client, applications_runtime.KIND, settings)
    applications = applications_runtime.build_service(
        settings, applications_outbox, metadata, job_is_open=job_snapshot_check(jobs)
    )
    applications.job_title = job_title_lookup(jobs)
    webhooks = build_webhooks(
        settings,
        redis_client,
        applications_outbox,
        on_enqueued=lambda ids: _schedule_webhook_sends(redis_client, ids),
    )
    # [17] delivery outcomes become webhook events for the submitting key
    applications_client = connections.client(applications_runtime.CONNECTION)
    applications_deliverer = NotifyingDeliverer(
        applications_runtime.build_deliverer(settings, applications_client, metadata),
        webhooks.publisher,
    )
    # [13] delivery paced by the org's API budget
    pacer = build_pacer(settings, redis_client, applications_client)

    feedback_client = feedback_runtime.connection_client(settings, connections.client)
    feedback_outbox = Outbox.from_settings(redis_client, feedback_runtime.KIND, settings)
    feedback_contexts = feedback_runtime.build_contexts(settings, redis_client, feedback_client)
    links = FeedbackLinks(
        redis_client, settings.secret_key, max_ttl=settings.feedback_link_max_ttl_seconds
    )
    key_store = KeyStore(redis_client, hot=tracked)

    services = Services(
        settings=settings,
        redis=redis_client,
        tracked=tracked,
        metrics=Metrics(),
        readiness=Readiness(),
        connections=connections,
        metadata=metadata,
        jobs=jobs,
        job_lifecycle=job_lifecycle,
        events_state=events_state,
        applications_outbox=applications_outbox,
        applications=applications,
        applications_deliverer=applications_deliverer,
        pacer=pacer,
        feedback_outbox=feedback_outbox,
        feedback_contexts=feedback_contexts,
        feedback=feedback_runtime.build_service(metadata, feedback_outbox, feedback_contexts),
        feedback_deliverer=feedback_runtime.build_deliverer(
            connections.client(feedback_runtime.CONNECTION), metadata, feedback_contexts
        ),
        links=links,
        link_issuer=LinkIssuer(links, feedback_contexts, settings),
        key_store=key_store,
        origin_index=OriginIndex(key_store),
        webhooks=webhooks,
        receipts=(
            Receipts(
                settings.secret_key,
                applications_outbox,
                max_age=settings.application_status_ttl_days * 86400,
            )
            if settings.secret_key
            else None  # receipts are signed: no secret, no receipt_url
        ),
        feeds=feeds,
        # [22] job pages pushed to search engines, from the lifecycle stream
        search=build_notifier(settings, redis_client, job_url=feeds.org.job_url),
    )
    register_checks(services)
    register_metrics(services)
    return services


def init_app(app: Flask, services: Services) -> None:
    """Start-up step: the one place the app keeps its services; contracts checked at start."""
    app.extensions[SERVICES] = services
    metadata_layer.check_at_start(services.metadata)
    check_redis_at_start(services)


def check_redis_at_start(services: Services) -> None:
    """[20] Say at start, not only in /readyz, when Redis cannot give what a 202 promises
    (no WAITAOF, AOF off, too few replicas): intake answers 503 until it can. Never fails the
    start (Redis may come up after the gateway)."""
    try:
        state, details = redis_clients.server_status(services.redis, services.settings)
    except redis.RedisError as exc:
        log.warning("Redis not reachable at start (%s); /readyz tells when it is", exc)
        return
    if state != "ok":
        problems = {k: v for k, v in details.items() if k in ("durability", "full", "read_only")}
        log.error("Redis cannot confirm durable intake: %s", problems)
    else:
        log.info(
            "Redis %s %s: WAITAOF 1 %d before each 202",
            details["server"],
            details["version"],
            services.settings.durable_replicas,
        )


def closed_job_lookup(history, gone_jobs: GoneJobs):
    """What the feeds say of a closed job: the details the feeds' version history kept (title,
    posting date: the expired JSON-LD), else, for a job the jobs service knows left (a change
    event, a reconciliation), its id and the time of asking. One answer to "is it gone?"
    whichever path saw the job leave."""

    def lookup(job_id: str) -> dict[str, Any] | None:
        found = history(job_id)
        if found is None and job_id in gone_jobs:
            found = {"id": job_id, "title": "", "posted_at": None, "gone_at": time.time()}
        return found

    return lookup


def job_title_lookup(jobs: JobsService):
    """A job's title from the jobs snapshot (for the candidate's receipt), or None."""

    def title(job_id: str) -> str | None:
        try:
            doc = jobs.index().get(job_id) if job_id else None
        except JobsError:
            return None
        return None if doc is None else doc.get("bpats__Job_Title__c") or doc.get("title")

    return title


def _schedule_webhook_sends(redis_client: redis.Redis, endpoint_ids) -> None:
    from ats_gateway.tasks.webhooks import schedule_sends  # needs the Celery app at call time

    schedule_sends(redis_client, endpoint_ids)


def job_snapshot_check(jobs: JobsService):
    """Whether a job is open, from the jobs snapshot (no org call per submission).

    True/False when the snapshot can tell; None (accept, deliver anyway) when there is no
    snapshot yet, so an outage of the snapshot never turns candidates away.
    """

    def is_open(job_id: str) -> bool | None:
        try:
            return jobs.index().get(job_id) is not None
        except JobsError:
            return None

    return is_open


# ------------------------------------------------------------------ readiness and metrics


def register_checks(services: Services) -> None:
    """Every `/readyz` check, in the order the page lists them."""
    add = services.readiness.add

    def redis_check() -> tuple[str, dict[str, Any]]:
        """[20] Reachable, and able to give what a 202 promises now: WAITAOF (version, AOF,
        enough replicas) and room for a write (a full Redis refuses intake)."""
        started = time.perf_counter()
        services.redis.ping()
        latency = round((time.perf_counter() - started) * 1000, 2)
        state, details = redis_clients.server_status(services.redis, services.settings)
        return state, {"latency_ms": latency, **details}

    def key_store_check() -> tuple[str, dict[str, Any]]:
        counts = services.key_store.active_count()
        return "ok", {"active_publishable": counts[PUBLISHABLE], "active_secret": counts[SECRET]}

    def applications_queue_check() -> tuple[str, dict[str, Any]]:
        """The delivery queue: depth, dead letters, age of the oldest due item."""
        counts, lag = _queue_state(services.applications_outbox)
        details = {**counts, "oldest_due_seconds": round(lag, 1)}
        # [14] A fixed threshold for now; [13]'s pacing will say what wait to expect.
        alert = services.settings.delivery_lag_alert_seconds
        if lag > alert:
            details["stuck"] = f"the oldest due application has waited over {alert:.0f} s"
        return ("degraded" if counts["dead_letter"] or lag > alert else "ok"), details

    add("redis", redis_check)
    add("salesforce", services.connections.status)
    add("describe", lambda: metadata_layer.describe_status(services.metadata))
    add("permissions", lambda: metadata_layer.permissions_status(services.metadata))
    add("jobs_snapshot", services.jobs.readiness)
    add("events", services.events_state.readiness)
    add("key_store", key_store_check)
    add("applications_queue", applications_queue_check)
    add("api_budget", lambda: api_budget_check(services))
    if services.search.engines:
        add("search_engines", lambda: search_engines_check(services))
    add("work_queues", lambda: work_queues_check(services))


def work_queues_check(services: Services) -> tuple[str, dict[str, Any]]:
    """[19] Each work class's Celery queue: messages waiting for a free worker of its pool and
    how long the oldest has waited (a pool too small, or stuck, for its work)."""
    depths = work_queues.queue_depths(services.redis)
    alert = services.settings.delivery_lag_alert_seconds
    behind = sorted(q for q, d in depths.items() if d["depth"] and d["oldest_seconds"] > alert)
    details: dict[str, Any] = dict(depths)
    if behind:
        details["stuck"] = f"a task has waited over {alert:.0f} s for a worker: {', '.join(behind)}"
    return ("degraded" if behind else "ok"), details


def api_budget_check(services: Services) -> tuple[str, dict[str, Any]]:
    """The org's API budget and the delivery forecast (services/pacing.py); no org call."""
    forecast = services.pacer.forecast(services.applications_outbox)
    stuck = forecast["paused_by_org"] or forecast["delivery"]["decision"] == "ceiling_exhausted"
    return ("degraded" if stuck else "ok"), forecast


def search_engines_check(services: Services) -> tuple[str, dict[str, Any]]:
    """[22] Pending notifications per engine, backoff, quota used today; degraded while an
    engine's requests fail (backing off). Beyond a daily quota is normal, not degraded."""
    status = services.search.status()
    failing = any(engine["retry_in"] for engine in status.values())
    return ("degraded" if failing else "ok"), status


def register_metrics(services: Services) -> None:
    """`/metrics` beyond the HTTP counters: gauges read from Redis at scrape time (so every
    gateway process reports the same numbers)."""
    from prometheus_client import Gauge

    registry = services.metrics.registry
    forecast = forecast_collector(lambda: services.pacer.forecast(services.applications_outbox))
    registry.register(forecast)
    services.metrics.shared.append(forecast)
    jobs = services.jobs

    def snapshot_age() -> float:
        try:
            pointer = jobs.store.pointer()
        except redis.RedisError:  # Redis down: /readyz says so; a scrape must not fail
            return float("nan")
        return -1.0 if pointer is None else pointer.age(jobs.clock())

    def snapshot_jobs() -> float:
        try:
            return float(jobs.store.status().get("count") or 0)
        except redis.RedisError:
            return float("nan")

    Gauge(
        "ats_gateway_jobs_snapshot_age_seconds",
        "Age of the jobs snapshot being served (-1: none yet).",
        registry=registry,
    ).set_function(snapshot_age)
    Gauge(
        "ats_gateway_jobs_snapshot_jobs",
        "Public jobs in the current snapshot.",
        registry=registry,
    ).set_function(snapshot_jobs)
    for collector in (
        _QueueCollector(services.applications_outbox),
        _WorkQueuesCollector(services.redis),
        SearchMetrics(services.search),
    ):
        registry.register(collector)
        services.metrics.shared.append(collector)  # also under gunicorn's multiprocess mode


def _queue_state(outbox: Outbox) -> tuple[dict[str, int], float]:
    counts = outbox.counts()
    due = outbox.next_due()
    return counts, (max(0.0, time.time() - due) if due is not None else 0.0)


class _QueueCollector:
    """The applications delivery queue, read at scrape time."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            counts, lag = _queue_state(self.outbox)
        except Exception:  # Redis down: /readyz says so; a scrape must not fail
            return
        depth = GaugeMetricFamily(
            "ats_gateway_applications_queue",
            "Applications by delivery state (queued, delivering, dead_letter).",
            labels=["state"],
        )
        for state, value in counts.items():
            depth.add_metric([state], value)
        yield depth
        yield GaugeMetricFamily(
            "ats_gateway_applications_oldest_due_seconds",
            "How long the oldest due application has waited for delivery.",
            value=lag,
        )


class _WorkQueuesCollector:
    """[19] Each work class's Celery queue (tasks/queues.py), read from the broker at scrape."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            depths = work_queues.queue_depths(self.client)
        except Exception:  # Redis down: /readyz says so; a scrape must not fail
            return
        depth = GaugeMetricFamily(
            "ats_gateway_work_queue_depth",
            "Task messages waiting for a worker of the queue's pool.",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "ats_gateway_work_queue_oldest_seconds",
            "How long the queue's oldest waiting task message has waited (0: none waiting).",
            labels=["queue"],
        )
        for queue, d in depths.items():
            depth.add_metric([queue], d["depth"])
            oldest.add_metric([queue], d["oldest_seconds"])
        yield depth
        yield oldest
