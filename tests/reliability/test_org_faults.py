"""The org misbehaves while applications are delivered; afterwards each is in the org once.

Complements tests/integration/test_applications_flow.py (org fully down then up, 30% row locks
on plain applications, a permanent error through the DLQ): here the faults come and go while
batches are in flight, hit resumes and Contacts as well, sessions are revoked mid-batch, and
the org's daily API budget runs out and comes back.
"""

from __future__ import annotations

import base64
import threading
import time

from faultkit import (
    assert_exactly_once,
    new_tag,
    scale,
    wait_for,
)

RESUME = {"filename": "cv.txt", "content_base64": base64.b64encode(b"Plain text CV\n").decode()}


def _flap(stack, stop: threading.Event, on: dict, off: dict, on_s: float, off_s: float) -> None:
    """Switch a fault on and off until told to stop (a burst pattern, not a steady rate)."""
    while not stop.is_set():
        stack.faults(**on)
        if stop.wait(on_s):
            break
        stack.faults(**off)
        stop.wait(off_s)


def test_503_bursts_while_batches_arrive(stack):
    """Bursts of 503 (80% of calls for 0.7 s, then clear for 0.4 s) while four batches arrive
    one after the other: each is delivered exactly once, none ends failed or dead-lettered."""
    tag = new_tag("s")
    batches, size = scale(3, 10), scale(100, 300)
    stop = threading.Event()
    flapper = threading.Thread(
        target=_flap,
        args=(stack, stop, {"error_rate": 0.8, "seed": 3}, {"error_rate": 0.0}, 0.7, 0.4),
        daemon=True,
    )
    accepted: dict[str, str] = {}
    flapper.start()
    try:
        for b in range(batches):
            items = [stack.candidate(tag, b * size + i, job=b) for i in range(size)]
            accepted.update(stack.submit_batch(items))
            time.sleep(0.5)
        # The bursts go on while the queue drains, until the last batch has been tried once.
        wait_for(
            lambda: (
                all((stack.outbox.get(i) or {}).get("status") != "queued" for i in accepted)
                or any((stack.outbox.get(i) or {}).get("attempts", 0) for i in accepted)
            ),
            30,
            "a delivery attempt under the bursts",
        )
        time.sleep(scale(2, 20))
    finally:
        stop.set()
        flapper.join(5)
        stack.faults(error_rate=0.0)
    final = assert_exactly_once(stack, accepted, tag, timeout=scale(60, 180))
    # The bursts did bite: some attempts were answered 503 and retried.
    assert any(r["attempts"] > 0 for r in final.values())


def test_row_locks_on_contacts_applications_and_resumes(stack):
    """`UNABLE_TO_LOCK_ROW` on half of all record writes, for new and known candidates with
    resumes: one application, one Contact and one resume file per candidate."""
    tag = new_tag("l")
    n = scale(60, 400)
    known = [
        {"FirstName": "Ada", "LastName": f"Known {i}", "Email": f"ada.{i}@{tag}.example.com"}
        for i in range(0, n, 3)
    ]
    assert all(o.success for o in stack.admin.bulk_create("Contact", known))
    stack.faults(lock_rate=0.5, seed=11)
    accepted = stack.submit_batch([stack.candidate(tag, i, job=i, resume=RESUME) for i in range(n)])
    final = assert_exactly_once(stack, accepted, tag, timeout=scale(60, 240))
    assert any(r["attempts"] > 0 for r in final.values())  # the locks did bite
    assert all(r["result"].get("resume_id") for r in final.values())
    app_ids = [r["result"]["salesforce_id"] for r in final.values()]
    files = []
    for start in range(0, len(app_ids), 200):
        ids = ",".join(f"'{a}'" for a in app_ids[start : start + 200])
        files += stack.org_rows(
            f"SELECT Id, FirstPublishLocationId FROM ContentVersion "
            f"WHERE FirstPublishLocationId IN ({ids})"
        )
    per_app: dict[str, int] = {}
    for f in files:
        per_app[f["FirstPublishLocationId"]] = per_app.get(f["FirstPublishLocationId"], 0) + 1
    assert per_app == dict.fromkeys(app_ids, 1), "a resume is missing or was uploaded twice"


def test_sessions_expire_mid_batch(stack):
    """Every session of the org is revoked while a slow batch is in flight, twice: the gateway
    re-authenticates (one login for all processes) and replays, no application is lost or
    doubled, and none is failed for an authentication error."""
    tag = new_tag("x")
    n = scale(200, 1000)
    stack.faults(latency_ms=300)
    accepted = stack.submit_batch([stack.candidate(tag, i, job=i) for i in range(n)])
    first = next(iter(accepted))
    wait_for(lambda: (stack.outbox.get(first) or {}).get("status") == "delivering", 20, "a claim")
    expired = []
    for _ in range(scale(2, 6)):
        time.sleep(0.4)  # a call is on the wire with the old session
        expired.append(stack.faults(expire_sessions=True)["sessions_expired"])
    assert expired[0] >= 1, "no session to revoke: the batch was not in flight"
    stack.faults(latency_ms=0)
    final = assert_exactly_once(stack, accepted, tag, timeout=scale(60, 180))
    errors = [r.get("error", {}).get("code") for r in final.values() if r.get("error")]
    assert "INVALID_SESSION_ID" not in errors


def test_api_budget_exhausted_then_restored(stack):
    """The org's daily API limit is reached: applications stay queued (deferred, not failed,
    not dead-lettered, no attempt spent, no call made); once the org has budget again they are
    delivered exactly once without anyone touching the queue.

    The gateway learns that the budget is back from the next response of the org: in a
    deployment that is the jobs snapshot refresh (beat, every 30 s), sent here as beat sends it.
    Deferred applications look again after 60 s (``BUDGET_DEFER_SECONDS``)."""
    tag = new_tag("b")
    n = scale(50, 500)
    dead_before = stack.outbox.counts()["dead_letter"]  # the package's stack is shared
    usage = stack.faults(api_limit=100_000, api_used=100_000)["usage"]
    assert usage["remaining"] == 0
    accepted = stack.submit_batch([stack.candidate(tag, i, job=i) for i in range(n)])

    def deferred():
        records = [stack.outbox.get(i) for i in accepted]
        return all(r and r["status"] == "queued" and r.get("deferred") for r in records)

    wait_for(deferred, 30, "the batch to be deferred for the budget")
    records = [stack.outbox.get(i) for i in accepted]
    assert {r["deferred"]["code"] for r in records} == {"API_BUDGET_RESERVE"}
    assert {r["attempts"] for r in records} <= {0, 1}  # at most the call that hit the limit
    assert stack.outbox.counts()["dead_letter"] == dead_before
    calls = stack.api_calls()
    time.sleep(2)
    assert stack.api_calls() == calls, "delivery kept calling an org with no budget left"
    # The rolling 24 h window moves on: the org has calls again; beat's refresh tells us.
    stack.faults(api_used=1_000)
    stack.app.extensions["celery"].send_task(
        "ats_gateway.jobs.refresh_snapshot", kwargs={"force": True}
    )
    assert_exactly_once(stack, accepted, tag, timeout=scale(100, 300))


def test_long_outage_keeps_everything_queued(stack):
    """The org is down for a long time (short form 8 s, soak 5 min) while submissions go on:
    nothing fails, nothing is dead-lettered, nothing queued has an expiry (an outage of a day
    or a week loses nothing; retries back off to `retry_max_delay_seconds`), and the duplicate
    guard outlives the outage. When the org is back everything is delivered exactly once."""
    tag = new_tag("o")
    outage = scale(8, 300)
    dead_before = stack.outbox.counts()["dead_letter"]  # the package's stack is shared
    stack.faults(error_rate=1.0)
    accepted: dict[str, str] = {}
    started = time.monotonic()
    batch = 0
    while time.monotonic() - started < outage:
        items = [stack.candidate(tag, batch * 20 + i, job=batch) for i in range(20)]
        accepted.update(stack.submit_batch(items))
        batch += 1
        time.sleep(outage / 4)
    records = [stack.outbox.get(i) for i in accepted]
    assert all(r["status"] in ("queued", "delivering") for r in records)
    first = stack.outbox.get(next(iter(accepted)))
    assert first["attempts"] >= 2, first
    assert first["error"]["code"] == "SERVER_UNAVAILABLE"
    assert all(stack.redis.ttl(stack.outbox.item_key(i)) == -1 for i in accepted)
    assert stack.outbox.counts()["dead_letter"] == dead_before
    unique_ttls = [
        stack.redis.ttl(k) for k in stack.redis.scan_iter(stack.outbox.unique_key("*"), count=1000)
    ]
    assert unique_ttls and min(t for t in unique_ttls if t > 0) > 29 * 86400
    stack.faults(error_rate=0.0)
    assert_exactly_once(stack, accepted, tag, timeout=scale(60, 300))
