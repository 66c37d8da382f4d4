"""The describe cache in a real Redis, shared by processes; the refresh task in a real worker."""

from __future__ import annotations

import copy
import uuid

from ats_gateway.config import PROJECT_ROOT
from ats_gateway.metadata.cache import ORG, DescribeCache
from ats_gateway.metadata.contracts import load_connections, load_contracts
from ats_gateway.metadata.describe import load_snapshot
from ats_gateway.metadata.service import Metadata
from ats_gateway.tasks.metadata import TASK

SCHEMAS = PROJECT_ROOT / "ats_gateway" / "schemas"
FEEDBACK = "bpats__Interview_Feedback__c"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Org:
    """Answers every describe in full (no 304s), counting calls; fields can gain values."""

    def __init__(self) -> None:
        self.describes: dict = {}
        self.calls: list[str] = []

    def fetcher(self, sobject, if_modified_since=None):
        self.calls.append(sobject)
        return copy.deepcopy(self._describe(sobject))

    def _describe(self, sobject):
        return self.describes.setdefault(sobject, load_snapshot(SCHEMAS, sobject))

    def add_value(self, sobject, field, value):
        describe = self._describe(sobject)
        for f in describe["fields"]:
            if f["name"] == field:
                f["picklistValues"].append({"value": value, "label": value, "active": True})


def process(redis_client, prefix, fetchers, clock, local_ttl=5.0) -> Metadata:
    """One gateway process's view: its own memory, the shared Redis."""
    cache = DescribeCache(
        redis_client, SCHEMAS, fetchers, local_ttl=local_ttl, key_prefix=prefix, clock=clock
    )
    return Metadata(load_contracts(SCHEMAS), cache, connections=load_connections(SCHEMAS))


def test_a_refresh_in_one_process_reaches_the_others_without_restart(redis_client):
    prefix = f"test-{uuid.uuid4().hex[:8]}:describe:"
    org, clock = Org(), Clock()
    fetchers = {"job_portal": org.fetcher, "interview_feedback": org.fetcher}
    worker = process(redis_client, prefix, fetchers, clock)
    gateway = process(redis_client, prefix, fetchers, clock)
    worker.check()
    gateway.check()
    calls = len(org.calls)
    assert gateway.entry("interview_feedback").source == ORG
    assert len(org.calls) == calls  # the second process found the describes in Redis

    org.add_value(FEEDBACK, "bpats__Recommendation__c", "Borderline")
    worker.refresh()
    payload = {"recommendation": "Borderline"}
    # the gateway re-checks the version in Redis at most every local_ttl seconds
    assert gateway.errors("interview_feedback", payload)
    clock.now += 5.0
    assert gateway.errors("interview_feedback", payload) == []
    assert (
        "Borderline"
        in gateway.json_schema("interview_feedback")["properties"]["recommendation"]["enum"]
    )


def test_refresh_task_runs_in_a_worker_and_beat_schedules_it(celery_app, celery_worker):
    result = celery_app.send_task(TASK).get(timeout=60)
    assert result[f"job_portal/{'bpats__Job_Board_Application__c'}"]["source"] == "snapshot"
    assert f"interview_feedback/{FEEDBACK}" in result
    entry = celery_app.conf.beat_schedule["refresh-describes"]
    # beat only asks whether one is due (after a reconciliation, or 6 h on): a Redis read
    assert entry["task"] == TASK and entry["schedule"] == 60
    assert entry["kwargs"] == {"when_due": True}
