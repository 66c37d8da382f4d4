"""The interviewer's feedback page in headless Chromium: fill it in, submit, see the errors,
fix them, see the confirmation, and find the feedback in the sandbox org.

Uses the browser fixtures of `tests/browser/conftest.py`: `live_server` (the gateway over real
HTTP on 127.0.0.1 with the sandbox org, a real Celery worker and its own Redis database),
`browser` (system Chromium driven by Playwright; skipped with the reason when there is none)
and `page` (saves a screenshot and the HTML when a test fails).
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

from ats_gateway.security import KeyStore


@pytest.fixture(scope="module")
def live(live_server, admin):
    _, recruiter = KeyStore(live_server.redis).create(
        kind="secret", name="recruiter", scopes=["feedback:issue"]
    )
    return {
        "url": live_server.url,
        "http": live_server.app.test_client(),
        "recruiter": {"Authorization": f"Bearer {recruiter}"},
        "admin": admin,
    }


def _issue(live) -> tuple[str, dict, str]:
    interview = live["admin"].query_many(
        [
            "SELECT Id FROM bpats__Interview__c WHERE bpats__Interview_Template__c != null "
            "ORDER BY Name LIMIT 1"
        ]
    )[0][0]
    email = f"browser-{uuid.uuid4().hex[:8]}@client.example.com"
    response = live["http"].post(
        f"/v1/interviews/{interview['Id']}/feedback-links",
        json={
            "interviewer_email": email,
            "job_title": "Platform Engineer",
        },
        headers=live["recruiter"],
    )
    assert response.status_code == 201, response.get_json()
    link = response.get_json()
    form = live["http"].get(f"/v1/feedback/{link['token']}").get_json()
    return link["token"], form, email


def test_interviewer_fills_in_and_submits_the_page(live, page):
    token, form, email = _issue(live)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(f"{live['url']}/feedback/{token}")
    page.get_by_role("heading", level=1).wait_for()
    assert form["candidate"]["first_name"] in page.get_by_role("heading", level=1).inner_text()
    assert "Platform Engineer" in page.locator(".summary").inner_text()
    # Mobile friendly: nothing wider than a phone's screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    ratings = [o["label"] for o in form["picklists"]["rating"]]
    for n, topic in enumerate(form["topics"]):
        group = page.get_by_role(
            "group", name=re.compile(rf"^Rating for {re.escape(topic['name'])}")
        )
        group.get_by_label(ratings[(n + 2) % len(ratings)], exact=True).check()
        page.get_by_label(f"Notes on {topic['name']}").fill(f"Browser note {n}")
    page.get_by_label("Comments").fill("Submitted from a real browser.")
    # First without the required recommendation: the page says what is missing.
    page.get_by_role("button", name="Send feedback").click()
    summary = page.get_by_role("alert")
    summary.wait_for()
    assert "recommendation is required" in summary.inner_text()
    assert page.get_by_label("Comments").input_value() == "Submitted from a real browser."

    page.get_by_role("group", name=re.compile("^Your recommendation")).get_by_label(
        "Hire", exact=True
    ).check()
    page.get_by_role("button", name="Send feedback").click()
    page.get_by_role("heading", name="Thank you, your feedback was received").wait_for()

    deadline = time.monotonic() + 30
    rows: list = []
    while time.monotonic() < deadline and not rows:
        rows = live["admin"].query_many(
            [
                "SELECT Id, bpats__Recommendation__c, bpats__Comments__c, "
                "(SELECT bpats__Interview_Topic__c, bpats__Rating__c, bpats__Comments__c FROM "
                "bpats__Interview_Topic_Feedback__r) FROM bpats__Interview_Feedback__c "
                f"WHERE bpats__Interviewer_Email__c = '{email}'"
            ]
        )[0]
        time.sleep(0.2)
    assert len(rows) == 1, "the feedback did not reach the org"
    row = rows[0]
    assert row["bpats__Recommendation__c"] == "Hire"
    assert row["bpats__Comments__c"] == "Submitted from a real browser."
    children = row["bpats__Interview_Topic_Feedback__r"]["records"]
    assert sorted(c["bpats__Comments__c"] for c in children) == sorted(
        f"Browser note {n}" for n in range(len(form["topics"]))
    )

    # The link is spent: opening it again shows the confirmation, not the form.
    page.goto(f"{live['url']}/feedback/{token}")
    assert page.get_by_role("button", name="Send feedback").count() == 0
    assert "Thank you" in page.get_by_role("heading", level=1).inner_text()


def test_a_broken_link_gets_a_friendly_page(live, page):
    token, _, _ = _issue(live)
    response = page.goto(f"{live['url']}/feedback/{token[:-5]}XXXXX")
    assert response is not None and response.status == 401
    assert page.get_by_role("heading", level=1).inner_text() == "This link does not work"
