"""[19] Work classes: every task routed to its class's queue by the Celery config, each with
time limits, and each queue's depth and oldest age read from the broker (a real Redis)."""

from __future__ import annotations

import json

import pytest
from stack import build_gateway

from ats_gateway.tasks import limits
from ats_gateway.tasks.queues import (
    MAINTENANCE,
    QUEUE_NAMES,
    SENT_AT_HEADER,
    WORK_CLASSES,
    broker_client,
    queue_depths,
    queue_of,
)


@pytest.fixture
def gateway(base_settings, redis_databases):
    with redis_databases.lease() as url:
        # No worker reads this database: whatever is sent stays in its queue.
        yield build_gateway(base_settings.replace(redis_url=url, delivery_lag_alert_seconds=-1))


def route(celery, name: str) -> str:
    return celery.amqp.router.route({}, name)["queue"].name


def test_every_task_goes_to_its_class_queue_by_the_celery_config(gateway):
    celery = gateway.extensions["celery"]
    celery.loader.import_default_modules()
    expected = {
        "ats_gateway.applications.drain": "applications",
        "ats_gateway.feedback.drain": "feedback",
        "ats_gateway.webhooks.send": "webhooks",
        "ats_gateway.webhooks.sweep": MAINTENANCE,  # timely even while every send thread waits
        "ats_gateway.jobs.refresh_snapshot": MAINTENANCE,
        "ats_gateway.metadata.refresh_describes": MAINTENANCE,
        "ats_gateway.indexing.notify_google": "search",  # [22]'s module, by name pattern
        "ats_gateway.tasks.indexing.ping_indexnow": "search",
        "ats_gateway.something_new": MAINTENANCE,  # never a queue nobody reads
    }
    for name, queue in expected.items():
        assert route(celery, name) == queue == queue_of(name), name
    ours = [n for n in celery.tasks if n.startswith("ats_gateway.")]
    assert ours and all(route(celery, n) in QUEUE_NAMES for n in ours)
    assert {c.pool for c in WORK_CLASSES} <= {"prefork", "threads"}


def test_every_task_has_soft_and_hard_limits_sized_from_the_settings(gateway, base_settings):
    celery = gateway.extensions["celery"]
    celery.loader.import_default_modules()
    for name, task in celery.tasks.items():
        if name.startswith("ats_gateway."):
            assert 0 < task.soft_time_limit < task.time_limit, name
    drain = celery.tasks["ats_gateway.applications.drain"]
    call = base_settings.sf_connect_timeout + base_settings.sf_read_timeout
    # No batch starts after drain_max_seconds; the one in flight keeps its calls' timeouts.
    assert drain.soft_time_limit == base_settings.drain_max_seconds + 3 * call
    assert drain.time_limit == drain.soft_time_limit + limits.HARD_AFTER_SOFT
    # The classes whose limits Celery must enforce run prefork (threads cannot be cut).
    pools = {c.queue: c.pool for c in WORK_CLASSES}
    assert pools["applications"] == pools["feedback"] == pools[MAINTENANCE] == "prefork"


def test_waiting_tasks_show_in_readyz_and_metrics_by_queue(gateway):
    from ats_gateway.extensions import services

    client = services(gateway).redis
    celery = gateway.extensions["celery"]
    assert all(d == {"depth": 0, "oldest_seconds": 0.0} for d in queue_depths(client).values())
    celery.send_task("ats_gateway.indexing.notify_google", args=["job-1"])
    celery.send_task("ats_gateway.indexing.notify_google", args=["job-2"])
    celery.send_task("ats_gateway.webhooks.send", args=["ep-1"])

    oldest = json.loads(client.lindex("search", -1))["headers"][SENT_AT_HEADER]
    later = queue_depths(client, now=oldest + 42.0)
    assert later["search"] == {"depth": 2, "oldest_seconds": 42.0}
    assert later["webhooks"]["depth"] == 1
    assert later["applications"] == {"depth": 0, "oldest_seconds": 0.0}

    http = gateway.test_client()
    ready = http.get("/readyz").get_json()["checks"]["work_queues"]
    assert ready["status"] == "degraded"  # the alert threshold is below any wait here
    assert ready["search"]["depth"] == 2 and ready["webhooks"]["depth"] == 1
    assert "search" in ready["stuck"] and "applications" not in ready["stuck"]
    metrics = http.get("/metrics").get_data(as_text=True)
    assert 'ats_gateway_work_queue_depth{queue="search"} 2.0' in metrics
    assert 'ats_gateway_work_queue_depth{queue="applications"} 0.0' in metrics
    assert 'ats_gateway_work_queue_oldest_seconds{queue="search"}' in metrics

    # The CLI's bare client (dlq replay, webhooks test) routes the same way.
    cli = broker_client(gateway.config["SETTINGS"])
    try:
        cli.send_task("ats_gateway.applications.drain")
    finally:
        cli.close()
    assert queue_depths(client)["applications"]["depth"] == 1

    # A message from a sender without the stamp counts, and its age is unknown (0), not an error.
    client.lpush("feedback", json.dumps({"headers": {}, "body": ""}))
    assert queue_depths(client)["feedback"] == {"depth": 1, "oldest_seconds": 0.0}


def test_queue_gauges_reach_metrics_under_gunicorn(base_settings, redis_databases, tmp_path):
    """gunicorn runs Prometheus' multiprocess mode: /metrics merges the workers' files, and
    must still carry the gauges read from Redis at scrape time (they were dropped before)."""
    import redis as redis_lib
    import requests
    from stack import running_gunicorn

    with redis_databases.lease() as url:
        settings = base_settings.replace(redis_url=url)
        build_gateway(settings).extensions["celery"].send_task("ats_gateway.webhooks.send")
        gateway = running_gunicorn(settings, tmp_path, workers=1)
        try:
            port = gateway.argv[gateway.argv.index("--bind") + 1].rsplit(":", 1)[1]
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        finally:
            gateway.stop()
        redis_lib.Redis.from_url(url).close()
    assert 'ats_gateway_work_queue_depth{queue="webhooks"} 1.0' in text
    assert "ats_gateway_delivery_queued" in text
    assert "ats_gateway_http_requests_total" in text or "ats_gateway_http_request" in text


def test_a_drain_cut_outside_its_deliverer_hands_over_to_the_next_run(gateway):
    """The soft limit may land anywhere in a drain (here: while the pacer decides): the lock is
    released and the next drain is scheduled on the applications queue, not left to beat."""
    from celery.exceptions import SoftTimeLimitExceeded

    from ats_gateway.extensions import services
    from ats_gateway.tasks.drain import run_drain

    found = services(gateway)
    found.applications_outbox.put({"n": 1}, wait=False)

    class CutWhileDeciding:
        def decide(self, outbox):
            raise SoftTimeLimitExceeded()

    with gateway.app_context():
        result = run_drain(
            "applications",
            found.redis,
            found.applications_outbox,
            deliverer=None,
            batch_size=10,
            pacer=CutWhileDeciding(),
        )
    assert result == {"ran": True, "interrupted": True}
    assert found.applications_outbox.drain_lock().acquire()  # released by the cut drain
    assert found.applications_outbox.counts()["queued"] == 1  # nothing lost
    assert queue_depths(found.redis)["applications"]["depth"] == 1  # the next run, scheduled
