"""A picklist value an admin adds in the org, refused by intake, then accepted: end to end.

The refusal comes from its real source (a `POST /v1/applications` through the gateway's HTTP
API with a secret key from the key store), the revalidation from what the product really runs:
the beat entry `refresh-describes` (sent to a real Celery worker exactly as beat sends it, so
the test decides when a check happens instead of waiting for beat's next minute), which asks
`revalidation_due` and finds the request intake left. The org is the sandbox over HTTP, each
call it answers recorded with its status, so "re-described" means a 200 to a describe, not a
guess from our own records.

A requested revalidation is honoured at most every `REQUESTED_MIN_SECONDS` (15 min) after the
last one: the test stands in for that quarter hour by moving the last revalidation's mark back,
the only piece of state it writes by hand.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from flask import request
from stack import FAST_DELIVERY, celery_of, running_sandbox, secret_headers, wait_for

from ats_gateway.extensions import services
from ats_gateway.services.delivery import Outbox
from ats_gateway.tasks.metadata import REQUESTED_MIN_SECONDS

APPLICATION = "bpats__Job_Board_Application__c"
FIELD = "bpats__Source__c"
NEW_VALUE = "Revalidation via HTTP board"


@pytest.fixture(scope="module")
def org_calls() -> list[tuple[str, str, int]]:
    """(method, path, status) of every request the sandbox answered."""
    return []


@pytest.fixture(scope="module")
def sandbox_org(sandbox_options, org_calls) -> Iterator[object]:
    def record_calls(app) -> None:
        @app.after_request
        def record(response):
            org_calls.append((request.method, request.path, response.status_code))
            return response

    with running_sandbox(record_calls, **sandbox_options) as handle:
        # The seeded Source picklist is open (free text is kept as attribution, never refused);
        # this org's admin has restricted it to its values, long before the gateway started.
        restricted = requests.patch(
            f"{handle.url}/__sandbox__/objects/{APPLICATION}/fields/{FIELD}",
            json={"restrictedPicklist": True},
            timeout=10,
        )
        assert restricted.status_code == 200, restricted.text
        yield handle


@pytest.fixture(scope="module")
def stack_connections():
    return ("job_portal",)


@pytest.fixture(scope="module")
def stack_overrides():
    return {
        **FAST_DELIVERY,
        # no max-age revalidation inside the test: only the refusal may cause one
        "describe_refresh_seconds": 6 * 3600,
        # the sandbox shares our clock: ask "since when we last checked", to the second
        "describe_clock_skew_seconds": 0.0,
        "rate_limit_ip_submit": "100000/minute",
        "rate_limit_key_submit": "100000/minute",
    }


def describe_calls(calls: list[tuple[str, str, int]]) -> Counter:
    """(kind, object, status) of the describe traffic among `calls`."""
    out: Counter = Counter()
    for method, path, status in calls:
        parts = path.split("/sobjects", 1)
        if method != "GET" or len(parts) != 2 or "/services/data/" not in parts[0]:
            continue
        rest = [p for p in parts[1].split("/") if p]
        if not rest:
            out[("describe global", "", status)] += 1
        elif rest[-1] == "describe" and len(rest) == 2:
            out[("describe", rest[0], status)] += 1
    return out


def usage(sandbox) -> dict:
    return requests.get(sandbox.url + "/__sandbox__/usage?detail=1", timeout=5).json()


def reset_usage(sandbox, org_calls) -> None:
    requests.post(sandbox.url + "/__sandbox__/usage", json={"used": 0}, timeout=5)
    org_calls.clear()


def test_a_refused_new_picklist_value_revalidates_describes_and_is_then_accepted(
    sandbox_org, org_calls, stack_settings, gateway_app, stack_redis, worker, admin, open_jobs
):
    svc = services(gateway_app)
    cache = svc.metadata.cache
    pair = (svc.metadata.contract("application").connection, APPLICATION)
    portal_objects = sorted(obj for conn, obj in svc.metadata.pairs() if conn == pair[0])
    celery = celery_of(gateway_app)
    check = celery.conf.beat_schedule["refresh-describes"]  # what beat sends every minute
    http = gateway_app.test_client()
    headers = secret_headers(stack_redis, ["applications:write", "applications:read"])

    def beat_tick() -> dict:
        sent = celery.send_task(check["task"], kwargs=check["kwargs"])
        return sent.get(timeout=30)

    def apply(source: str, email: str):
        body = {
            "job_id": open_jobs[0],
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": email,
            "consent": True,
            "source": source,
        }
        return http.post("/v1/applications", json=body, headers=headers)

    email = f"ada@{uuid.uuid4().hex[:8]}.example.com"

    # start-up: the first check finds no revalidation ever ran and makes one
    assert "revalidated" not in beat_tick()
    first = cache.revalidated_at()
    assert first is not None
    time.sleep(1.1)  # the sandbox's metadata times have one-second precision

    # an admin adds a value to the restricted Source picklist in the org
    response = requests.patch(
        f"{sandbox_org.url}/__sandbox__/objects/{APPLICATION}/fields/{FIELD}",
        json={"add_picklist_values": [NEW_VALUE]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert NEW_VALUE not in cache.get(*pair).describe.field(FIELD).active_values
    before = {obj: cache.peek(pair[0], obj) for obj in portal_objects}
    # a quarter of an hour passes (see the module docstring)
    cache.mark_revalidated(first - REQUESTED_MIN_SECONDS - 1)

    # without a refusal: beat's checks find nothing due, the org is not asked at all
    reset_usage(sandbox_org, org_calls)
    for _ in range(3):
        assert beat_tick() == {"revalidated": False}
    assert usage(sandbox_org)["used"] == 0, usage(sandbox_org)
    assert describe_calls(org_calls) == Counter(), org_calls
    assert NEW_VALUE not in cache.peek(*pair).describe.field(FIELD).active_values

    # the refusal: the cached describe lacks the value, so intake answers 422 naming `source`
    refused = apply(NEW_VALUE, email)
    assert refused.status_code == 422, refused.get_data(as_text=True)
    assert refused.mimetype == "application/problem+json"
    named = [e for e in refused.json["errors"] if e["field"] == "source"]
    assert [e["code"] for e in named] == ["not_allowed"], refused.json
    assert "Job Board" in named[0]["message"], named  # says what is allowed
    assert {e["field"] for e in refused.json["errors"]} == {"source"}, refused.json

    # the next check finds the request and revalidates: one Describe Global (changed), then
    # one conditional describe per object of that connection, only the changed one re-sent
    reset_usage(sandbox_org, org_calls)
    result = beat_tick()
    assert result.get(f"{pair[0]}/{APPLICATION}", {}).get("source") == "org", result
    spent = usage(sandbox_org)
    print("revalidation after a refusal:", spent, describe_calls(org_calls))
    assert spent["kinds"] == {
        "GET /sobjects": 1,
        "GET /sobjects/*/describe": len(portal_objects),
    }, spent
    assert spent["logins"] == 0, spent
    expected = Counter({("describe global", "", 200): 1})
    for obj in portal_objects:
        expected[("describe", obj, 200 if obj == APPLICATION else 304)] += 1
    assert describe_calls(org_calls) == expected, org_calls
    for obj in portal_objects:
        entry = cache.peek(pair[0], obj)
        if obj == APPLICATION:
            assert entry.version != before[obj].version
            assert NEW_VALUE in entry.describe.field(FIELD).active_values
        else:
            assert entry.fetched_at == before[obj].fetched_at, obj  # 304: kept as it was

    # the same application is now accepted (each process sees the new version within its
    # local cache time), and the org takes the record with that value
    wait_for(
        lambda: NEW_VALUE in cache.get(*pair).describe.field(FIELD).active_values,
        timeout=10,
        what="the new describe in this process",
    )
    accepted = apply(NEW_VALUE, email)
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    outbox = Outbox.from_settings(stack_redis, "applications", stack_settings)
    application_id = accepted.json["id"]
    final = wait_for(
        lambda: (
            (r := outbox.get(application_id)) and r["status"] not in ("queued", "delivering") and r
        ),
        timeout=30,
        what="the application's delivery",
    )
    assert final["status"] == "delivered", final
    rows = admin.query(f"SELECT {FIELD} FROM {APPLICATION} WHERE bpats__Email__c = '{email}'")
    records = [r for page in rows.pages() for r in page.records]
    assert [r[FIELD] for r in records] == [NEW_VALUE], records

    # and the request is spent: the next check does not revalidate again
    reset_usage(sandbox_org, org_calls)
    assert beat_tick() == {"revalidated": False}
    assert describe_calls(org_calls) == Counter(), org_calls
