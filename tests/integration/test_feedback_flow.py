"""Interview feedback end to end: the gateway's HTTP API, a real Redis, a real Celery worker
process and the sandbox org over HTTP. What landed in the org is read back from the org.

The module runs the shared stack (tests/stack.py) on a Redis database of its own, with the
`interview_feedback` connection pointed at the sandbox's External Interview Feedback user (and
no job portal connection at all). A request log on the sandbox records which user asked what,
so the tests can show the feedback user never reads jobs or applications.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from types import SimpleNamespace
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from flask import request as sandbox_request
from stack import running_sandbox, secret_headers, wait_for

from ats_gateway.connections import Connections
from ats_gateway.extensions import services
from ats_gateway.salesforce.errors import OperationNotAllowed
from ats_gateway.salesforce.soql import inspect
from ats_gateway.security import KeyStore
from ats_gateway.services.feedback import Grant

FEEDBACK = "bpats__Interview_Feedback__c"
TOPIC_FEEDBACK = "bpats__Interview_Topic_Feedback__c"
PROBLEM = "application/problem+json"


class RequestLog:
    """Every REST request the sandbox serves: (user key, method, path, SOQL texts, body)."""

    def __init__(self, sandbox_app) -> None:
        self.entries: list[dict] = []
        self._lock = threading.Lock()
        sb = sandbox_app.extensions["sandbox"]

        @sandbox_app.before_request
        def _record() -> None:
            req = sandbox_request
            if not req.path.startswith("/services/data/"):
                return
            header = req.headers.get("Authorization", "")
            session = sb.sessions.lookup(header.partition(" ")[2].strip()) if header else None
            body = req.get_data(cache=True, as_text=True)
            soql = list(req.args.getlist("q"))
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            for sub in (
                (parsed or {}).get("compositeRequest", []) if isinstance(parsed, dict) else []
            ):
                query = parse_qs(urlsplit(sub.get("url", "")).query).get("q")
                soql.extend(unquote(q) for q in query or [])
            with self._lock:
                self.entries.append(
                    {
                        "user": session.user.key if session else None,
                        "method": req.method,
                        "path": req.path,
                        "soql": soql,
                        "body": body,
                    }
                )

    def mark(self) -> int:
        with self._lock:
            return len(self.entries)

    def since(self, mark: int, user: str | None = None) -> list[dict]:
        with self._lock:
            return [e for e in self.entries[mark:] if user is None or e["user"] == user]


# --------------------------------------------------------------------------- the stack


@pytest.fixture(scope="module")
def sandbox_org(sandbox_options):
    """The shared sandbox, with a RequestLog (`.log`) installed before it serves."""
    logs: list[RequestLog] = []
    with running_sandbox(prepare=lambda app: logs.append(RequestLog(app)), **sandbox_options) as sb:
        sb.log = logs[0]
        yield sb


@pytest.fixture(scope="module")
def stack_connections():
    return ("interview_feedback",)


@pytest.fixture(scope="module")
def stack_overrides():
    return {
        "rate_limit_ip_submit": "100000/minute",
        "rate_limit_ip_read": "100000/minute",
        "rate_limit_key_read": "100000/minute",
        "retry_base_delay_seconds": 0.2,
        "retry_max_delay_seconds": 1,
        "delivery_lease_seconds": 10,
        "feedback_context_ttl_seconds": 30,
    }


@pytest.fixture(scope="module")
def stack(stack_settings, gateway_app, stack_redis, worker, admin, sandbox_org):
    interviews = admin.query_many(
        [
            "SELECT Id, bpats__Contact__c, bpats__Interview_Template__c FROM bpats__Interview__c "
            "WHERE bpats__Interview_Template__c != null ORDER BY Name"
        ]
    )[0]
    assert len(interviews) >= 8
    return SimpleNamespace(
        settings=stack_settings,
        app=gateway_app,
        http=gateway_app.test_client(),
        recruiter=secret_headers(stack_redis, ["feedback:issue"], name="recruiter"),
        board=secret_headers(stack_redis, ["applications:write"], name="job board"),
        redis=stack_redis,
        admin=admin,
        sandbox=sandbox_org,
        log=sandbox_org.log,
        interviews=iter(interviews),
        worker=worker,
    )


def _email() -> str:
    return f"interviewer-{uuid.uuid4().hex[:8]}@client.example.com"


def _issue(stack, interview_id: str, email: str, **extra) -> dict:
    response = stack.http.post(
        f"/v1/interviews/{interview_id}/feedback-links",
        json={"interviewer_email": email, **extra},
        headers=stack.recruiter,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _org_topics(stack, interview: dict) -> list[dict]:
    return stack.admin.query_many(
        [
            "SELECT bpats__Interview_Topic__c, bpats__Interview_Topic__r.Name, bpats__Required__c "
            "FROM bpats__Interview_Template_Detail__c WHERE bpats__Interview_Template__c = "
            f"'{interview['bpats__Interview_Template__c']}' ORDER BY bpats__Order__c"
        ]
    )[0]


def _valid_payload(form: dict) -> dict:
    ratings = [o["value"] for o in form["picklists"]["rating"]]
    return {
        "overall_rating": form["picklists"]["overall_rating"][3]["value"],
        "recommendation": "Hire",
        "comments": "Thoughtful and precise.",
        "topics": [
            {"topic_id": t["id"], "rating": ratings[i % len(ratings)], "comments": f"note {i}"}
            for i, t in enumerate(form["topics"])
        ],
    }


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    return response.get_json()


# --------------------------------------------------------------------------- the flow


def test_issue_fetch_submit_and_find_the_tree_in_the_org(stack):
    interview = next(stack.interviews)
    email = _email()
    link = _issue(stack, interview["Id"], email, job_title="Staff Engineer", expires_in="2d")
    token = link["token"]
    assert link["url"].endswith(f"/feedback/{token}")
    assert link["interview_id"] == interview["Id"]

    before = stack.log.mark()
    response = stack.http.get(f"/v1/feedback/{token}")
    assert response.status_code == 200, response.get_json()
    form = response.get_json()
    # The context was cached when the link was issued: reading the form cost no API call.
    assert stack.log.since(before) == []

    org_topics = _org_topics(stack, interview)
    assert [t["id"] for t in form["topics"]] == [r["bpats__Interview_Topic__c"] for r in org_topics]
    assert [t["name"] for t in form["topics"]] == [
        r["bpats__Interview_Topic__r"]["Name"] for r in org_topics
    ]
    assert [t["required"] for t in form["topics"]] == [r["bpats__Required__c"] for r in org_topics]
    describe = stack.admin.describe(FEEDBACK)
    by_name = {f["name"]: f for f in describe["fields"]}
    org_ratings = [v["value"] for v in by_name["bpats__Overall_Rating__c"]["picklistValues"]]
    org_recs = [v["value"] for v in by_name["bpats__Recommendation__c"]["picklistValues"]]
    assert [o["value"] for o in form["picklists"]["overall_rating"]] == org_ratings
    assert [o["value"] for o in form["picklists"]["recommendation"]] == org_recs
    topic_describe = stack.admin.describe(TOPIC_FEEDBACK)
    topic_ratings = next(f for f in topic_describe["fields"] if f["name"] == "bpats__Rating__c")
    assert [o["value"] for o in form["picklists"]["rating"]] == [
        v["value"] for v in topic_ratings["picklistValues"]
    ]
    assert form["job"]["title"] == "Staff Engineer"
    candidate = stack.admin.query_many(
        [f"SELECT FirstName FROM Contact WHERE Id = '{interview['bpats__Contact__c']}'"]
    )[0][0]
    assert form["candidate"] == {"first_name": candidate["FirstName"]}  # nothing more
    schema = form["submission_schema"]
    assert schema["required"] == ["recommendation"]
    assert schema["properties"]["recommendation"]["enum"] == org_recs

    payload = _valid_payload(form)
    usage_before = requests.get(stack.sandbox.url + "/__sandbox__/usage", timeout=5).json()
    mark = stack.log.mark()
    accepted = stack.http.post(f"/v1/feedback/{token}", json=payload)
    assert accepted.status_code == 202, accepted.get_json()
    body = accepted.get_json()
    assert body["status"] == "queued"

    def delivered():
        status = stack.http.get(body["status_url"]).get_json()
        return status if status.get("status") == "delivered" else None

    status = wait_for(delivered, what="feedback delivered")
    feedback_id = status["feedback_id"]
    usage_after = requests.get(stack.sandbox.url + "/__sandbox__/usage", timeout=5).json()
    assert usage_after["used"] - usage_before["used"] == 1  # the org counted one API call

    rows = stack.admin.query_many(
        [
            "SELECT Id, bpats__Interview__c, bpats__Interviewer_Email__c, "
            "bpats__Overall_Rating__c, bpats__Recommendation__c, bpats__Comments__c, "
            f"bpats__Submitted_Date__c FROM {FEEDBACK} WHERE Id = '{feedback_id}'",
            "SELECT bpats__Interview_Topic__c, bpats__Rating__c, bpats__Comments__c "
            f"FROM {TOPIC_FEEDBACK} WHERE bpats__Interview_Feedback__c = '{feedback_id}'",
        ]
    )
    [row] = rows[0]
    assert row["bpats__Interview__c"] == interview["Id"]
    assert row["bpats__Interviewer_Email__c"] == email
    assert row["bpats__Recommendation__c"] == "Hire"
    assert row["bpats__Overall_Rating__c"] == payload["overall_rating"]
    assert row["bpats__Submitted_Date__c"]
    topics = {r["bpats__Interview_Topic__c"]: r for r in rows[1]}
    assert set(topics) == {t["topic_id"] for t in payload["topics"]}
    for item in payload["topics"]:
        assert topics[item["topic_id"]]["bpats__Rating__c"] == item["rating"]
        assert topics[item["topic_id"]]["bpats__Comments__c"] == item["comments"]

    # Delivered by exactly one API call: one sObject Tree request, nothing else.
    calls = stack.log.since(mark, user="interview_feedback")
    assert [(c["method"], c["path"].split("/v62.0")[-1]) for c in calls] == [
        ("POST", f"/composite/tree/{FEEDBACK}")
    ]
    tree = json.loads(calls[0]["body"])
    assert len(tree["records"]) == 1
    children = tree["records"][0]["bpats__Interview_Topic_Feedback__r"]["records"]
    assert len(children) == len(payload["topics"])

    # Reused link: 409, on the API and for the form.
    again = _problem(stack.http.post(f"/v1/feedback/{token}", json=payload), 409)
    assert again["submission"]["status"] == "delivered"
    _problem(stack.http.get(f"/v1/feedback/{token}"), 409)
    # A new link for the same interviewer and interview cannot add a second feedback either.
    second = _issue(stack, interview["Id"], email)
    _problem(stack.http.post(f"/v1/feedback/{second['token']}", json=payload), 409)
    count = stack.admin.query_many(
        [
            f"SELECT Id FROM {FEEDBACK} WHERE bpats__Interview__c = '{interview['Id']}' "
            f"AND bpats__Interviewer_Email__c = '{email}'"
        ]
    )[0]
    assert len(count) == 1


def test_tampered_link_is_401(stack):
    link = _issue(stack, next(stack.interviews)["Id"], _email())
    token = link["token"]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    body = _problem(stack.http.get(f"/v1/feedback/{flipped}"), 401)
    assert body["reason"] == "tampered"
    _problem(stack.http.post(f"/v1/feedback/{flipped}", json={"recommendation": "Hire"}), 401)
    # The payload is signed: pointing the token at another interview breaks it too.
    head, _, sig = token.rpartition(".")
    _problem(stack.http.get(f"/v1/feedback/{head[:-2]}xx.{sig}"), 401)
    _problem(stack.http.get("/v1/feedback/not-a-token-at-all-not-a-token"), 401)


def test_expired_link_is_410(stack):
    interview = next(stack.interviews)
    links = services(stack.app).links
    issued = links.issue(interview["Id"], _email(), ttl=60)
    real_clock = links.clock
    links.clock = lambda: real_clock() + 61
    try:
        body = _problem(stack.http.get(f"/v1/feedback/{issued.token}"), 410)
        assert body["reason"] == "expired"
        _problem(stack.http.post(f"/v1/feedback/{issued.token}", json={}), 410)
    finally:
        links.clock = real_clock


def test_revoked_link_is_410(stack):
    interview = next(stack.interviews)
    link = _issue(stack, interview["Id"], _email())
    assert stack.http.get(f"/v1/feedback/{link['token']}").status_code == 200
    gone = stack.http.delete(
        f"/v1/interviews/{interview['Id']}/feedback-links/{link['link_id']}",
        headers=stack.recruiter,
    )
    assert gone.status_code == 204
    body = _problem(stack.http.get(f"/v1/feedback/{link['token']}"), 410)
    assert body["reason"] == "revoked"
    _problem(stack.http.post(f"/v1/feedback/{link['token']}", json={"recommendation": "Hire"}), 410)


def test_invalid_rating_is_422_naming_the_topic(stack):
    interview = next(stack.interviews)
    link = _issue(stack, interview["Id"], _email())
    form = stack.http.get(f"/v1/feedback/{link['token']}").get_json()
    payload = _valid_payload(form)
    payload["topics"][1]["rating"] = "6 - Superb"
    body = _problem(stack.http.post(f"/v1/feedback/{link['token']}", json=payload), 422)
    [error] = body["errors"]
    topic = form["topics"][1]
    assert error["field"] == "topics[1].rating"
    assert error["code"] == "not_allowed"
    assert error["topic_id"] == topic["id"]
    assert topic["name"] in error["message"]
    # Required recommendation, a required topic left out, a topic not of this template.
    required = next(t for t in form["topics"] if t["required"])
    payload = _valid_payload(form)
    del payload["recommendation"]
    payload["topics"] = [t for t in payload["topics"] if t["topic_id"] != required["id"]]
    payload["topics"].append({"topic_id": "a0P000000000999AAA", "rating": "3 - Good"})
    body = _problem(stack.http.post(f"/v1/feedback/{link['token']}", json=payload), 422)
    fields = {e["field"]: e for e in body["errors"]}
    assert fields["recommendation"]["code"] == "required"
    codes = {(e["code"], e.get("topic_id")) for e in body["errors"]}
    assert ("unknown_topic", "a0P000000000999AAA") in codes
    assert ("required", required["id"]) in codes
    too_long = _valid_payload(form)
    too_long["comments"] = "x" * (form["limits"]["comments"] + 1)
    body = _problem(stack.http.post(f"/v1/feedback/{link['token']}", json=too_long), 422)
    assert [e["field"] for e in body["errors"]] == ["comments"]
    # Nothing was queued: the link still works.
    assert stack.http.get(f"/v1/feedback/{link['token']}").status_code == 200


def test_issuing_needs_the_feedback_scope_and_a_real_interview(stack):
    interview = next(stack.interviews)
    body = {"interviewer_email": _email()}
    url = f"/v1/interviews/{interview['Id']}/feedback-links"
    _problem(stack.http.post(url, json=body), 401)
    _problem(stack.http.post(url, json=body, headers=stack.board), 403)
    missing = stack.http.post(
        "/v1/interviews/a0I000000000999AAA/feedback-links", json=body, headers=stack.recruiter
    )
    _problem(missing, 404)
    bad = stack.http.post(
        url, json={"interviewer_email": "nope", "expires_in": "forever"}, headers=stack.recruiter
    )
    assert {e["field"] for e in _problem(bad, 422)["errors"]} == {
        "interviewer_email",
        "expires_in",
    }


def test_feedback_connection_never_asks_for_jobs_or_applications(stack):
    mark = stack.log.mark()
    interview = next(stack.interviews)
    link = _issue(stack, interview["Id"], _email())
    stack.redis.delete(f"ats-gateway:feedback:context:{interview['Id']}")  # force a read
    form = stack.http.get(f"/v1/feedback/{link['token']}").get_json()
    stack.http.get(f"/feedback/{link['token']}")
    accepted = stack.http.post(f"/v1/feedback/{link['token']}", json=_valid_payload(form))
    assert accepted.status_code == 202
    wait_for(
        lambda: (
            stack.http.get(accepted.get_json()["status_url"]).get_json().get("status")
            == "delivered"
        ),
        what="delivery",
    )
    calls = stack.log.since(mark, user="interview_feedback")
    assert calls, "the feedback connection made no call at all"
    read_objects: set[str] = set()
    relationships: set[str] = set()

    def walk(shape) -> None:
        read_objects.add(shape.sobject.lower())
        relationships.update(p.lower().rsplit(".", 1)[0] for p in shape.paths if "." in p)
        for nested in shape.subqueries + shape.semi_joins:
            walk(nested)

    for query in (q for c in calls for q in c["soql"]):
        walk(inspect(query))
    assert read_objects <= {
        "bpats__interview__c",
        "bpats__interview_template_detail__c",
        "bpats__interview_feedback__c",
        "contact",
    }, read_objects
    assert relationships <= {
        "bpats__contact__r",
        "bpats__interview_template__r",
        "bpats__interview_topic__r",
    }, relationships
    written = [c["path"] for c in calls if c["method"] != "GET" and not c["soql"]]
    assert all(p.endswith(f"/composite/tree/{FEEDBACK}") for p in written), written
    # Reading a form costs one composite call (three queries) on a cache miss.
    reads = [c for c in calls if c["path"].endswith("/composite")]
    assert len(reads) == 2  # link issuing + the forced re-read
    assert all(len(c["soql"]) in (3, 4) for c in reads)

    # And it could not if it tried: the allow-list refuses before anything is sent.
    client = Connections(stack.settings, stack.redis).client("interview_feedback")
    before = stack.log.mark()
    for query in (
        "SELECT Id FROM bpats__Job__c",
        "SELECT Id FROM bpats__Job_Board_Application__c",
        "SELECT Id, bpats__Job__r.bpats__Job_Title__c FROM bpats__Interview__c",
    ):
        with pytest.raises(OperationNotAllowed):
            client.query_many([query])
    assert stack.log.since(before) == []


# --------------------------------------------------------------------------- the page


def _form_fields(form: dict, *, rating_index: int = 2) -> dict[str, str]:
    ratings = [o["value"] for o in form["picklists"]["rating"]]
    fields = {"recommendation": "Strong Hire", "comments": "Would hire again."}
    for topic in form["topics"]:
        fields[f"topic.{topic['id']}.rating"] = ratings[rating_index]
    return fields


def test_page_shows_the_form_with_labels_and_the_org_picklists(stack):
    interview = next(stack.interviews)
    link = _issue(stack, interview["Id"], _email(), job_title="Data Analyst")
    form = stack.http.get(f"/v1/feedback/{link['token']}").get_json()
    page = stack.http.get(f"/feedback/{link['token']}")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<html lang="en">' in html and 'name="viewport"' in html
    assert "Data Analyst" in html and form["candidate"]["first_name"] in html
    positions = [html.index(f"{i}. {t['name']}") for i, t in enumerate(form["topics"], 1)]
    assert positions == sorted(positions)  # topics in template order
    for topic in form["topics"]:
        for n, option in enumerate(form["picklists"]["rating"], 1):
            input_id = f"topic.{topic['id']}.rating-{n}"
            assert f'<label class="option" for="{input_id}">' in html
            assert (
                f'id="{input_id}" name="topic.{topic["id"]}.rating" value="{option["value"]}"'
                in html
            )
        assert f'<label for="topic.{topic["id"]}.comments">' in html
    for option in form["picklists"]["recommendation"]:
        assert f'value="{option["value"]}"' in html
    assert "<script" not in html  # works without JavaScript
    assert page.headers["Cache-Control"] == "no-store"
    css = stack.http.get("/static/feedback.css")
    assert css.status_code == 200 and b"@media" in css.data


def test_page_post_shows_field_errors_then_confirms(stack):
    interview = next(stack.interviews)
    link = _issue(stack, interview["Id"], _email())
    url = f"/feedback/{link['token']}"
    form = stack.http.get(f"/v1/feedback/{link['token']}").get_json()
    fields = _form_fields(form)
    del fields["recommendation"]
    first = form["topics"][0]
    fields[f"topic.{first['id']}.rating"] = "11 - Off the scale"
    page = stack.http.post(url, data=fields)
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert 'class="error-summary" role="alert"' in html
    assert 'href="#recommendation"' in html and "recommendation is required" in html
    assert f'href="#topic.{first["id"]}.rating"' in html and first["name"] in html
    assert 'id="recommendation-error"' in html
    assert "Would hire again." in html  # what was typed is kept

    fields = _form_fields(form)
    done = stack.http.post(url, data=fields)
    assert done.status_code == 303
    assert done.headers["Location"].endswith(url)
    confirmation = stack.http.get(url)
    assert confirmation.status_code == 200
    assert "Thank you, your feedback was received" in confirmation.get_data(as_text=True)
    status = wait_for(
        lambda: (
            (s := stack.http.get(f"/v1/feedback/{link['token']}/status").get_json())
            and s.get("status") == "delivered"
            and s
        ),
        what="page feedback delivered",
    )
    [row] = stack.admin.query_many(
        [f"SELECT bpats__Recommendation__c FROM {FEEDBACK} WHERE Id = '{status['feedback_id']}'"]
    )[0]
    assert row["bpats__Recommendation__c"] == "Strong Hire"
    # Posting again shows the confirmation, never a second feedback.
    again = stack.http.post(url, data=fields)
    assert again.status_code == 200 and "cannot be used to send feedback again" in again.get_data(
        as_text=True
    )


def test_page_refusals_are_friendly(stack):
    interview = next(stack.interviews)
    link = _issue(stack, interview["Id"], _email())
    token = link["token"]
    tampered = stack.http.get(f"/feedback/{token[:-4]}AAAA")
    assert tampered.status_code == 401 and tampered.mimetype == "text/html"
    assert "This link does not work" in tampered.get_data(as_text=True)
    links = services(stack.app).links
    issued = links.issue(interview["Id"], _email(), ttl=30)
    real_clock = links.clock
    links.clock = lambda: real_clock() + 31
    try:
        expired = stack.http.get(f"/feedback/{issued.token}")
    finally:
        links.clock = real_clock
    assert expired.status_code == 410 and "This link has expired" in expired.get_data(as_text=True)
    links.revoke(link["link_id"])
    revoked = stack.http.get(f"/feedback/{token}")
    assert revoked.status_code == 410
    assert "This link was withdrawn" in revoked.get_data(as_text=True)
    posted = stack.http.post(f"/feedback/{token}", data={"recommendation": "Hire"})
    assert posted.status_code == 410 and "Traceback" not in posted.get_data(as_text=True)


# --------------------------------------------------------------------------- delivery


@pytest.fixture
def clean_org(stack):
    """The stack; its faults and validation rules are cleared after the test (tests/stack.py)."""
    return stack


def _status(stack, token: str) -> dict:
    return stack.http.get(f"/v1/feedback/{token}/status").get_json()


def test_org_outage_is_retried_with_backoff_until_delivered(clean_org):
    stack = clean_org
    link = _issue(stack, next(stack.interviews)["Id"], _email())
    form = stack.http.get(f"/v1/feedback/{link['token']}").get_json()
    requests.post(stack.sandbox.url + "/__sandbox__/faults", json={"error_rate": 1.0}, timeout=5)
    accepted = stack.http.post(f"/v1/feedback/{link['token']}", json=_valid_payload(form))
    assert accepted.status_code == 202  # accepted while the org is down
    outbox = services(stack.app).feedback.outbox
    item_id = accepted.get_json()["id"]
    retried = wait_for(
        lambda: (r := outbox.get(item_id)) and r["attempts"] >= 2 and r, what="two failed attempts"
    )
    assert retried["status"] in ("queued", "delivering")
    assert retried["error"]["code"] == "SERVER_UNAVAILABLE"
    requests.delete(stack.sandbox.url + "/__sandbox__/faults", timeout=5)
    wait_for(lambda: _status(stack, link["token"]).get("status") == "delivered", what="recovery")


def test_refused_feedback_goes_to_the_dead_letter_queue_and_replays(clean_org):
    stack = clean_org
    rule = {
        "name": "No_Placeholder_Comments",
        "errorMessage": "Comments may not be a placeholder.",
        "errorDisplayField": "bpats__Comments__c",
        "condition": {"field": "bpats__Comments__c", "op": "contains", "value": "TBD"},
    }
    url = f"{stack.sandbox.url}/__sandbox__/objects/{FEEDBACK}/validation-rules"
    assert requests.post(url, json=rule, timeout=5).status_code == 201
    link = _issue(stack, next(stack.interviews)["Id"], _email())
    form = stack.http.get(f"/v1/feedback/{link['token']}").get_json()
    payload = {**_valid_payload(form), "comments": "TBD"}
    accepted = stack.http.post(f"/v1/feedback/{link['token']}", json=payload)
    assert accepted.status_code == 202
    outbox = services(stack.app).feedback.outbox
    item_id = accepted.get_json()["id"]
    failed = wait_for(
        lambda: (r := outbox.get(item_id)) and r["status"] == "failed" and r, what="dead letter"
    )
    assert failed["error"]["code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert "placeholder" in failed["error"]["reason"]
    assert item_id in [r["id"] for r in outbox.dead_letters()]
    # Not spent: the interviewer may still open the form.
    assert stack.http.get(f"/v1/feedback/{link['token']}").status_code == 200

    # The admin fixes the org; the operator replays the dead letter.
    requests.delete(stack.sandbox.url + "/__sandbox__/validation-rules", timeout=5)
    assert outbox.replay(item_id)
    from ats_gateway.tasks.feedback import schedule_delivery

    with stack.app.app_context():
        stack.redis.delete("ats-gateway:outbox:feedback:scheduled")
        schedule_delivery(stack.settings, stack.redis, 0)
    done = wait_for(lambda: (r := outbox.get(item_id)) and r["status"] == "delivered" and r)
    assert _status(stack, link["token"])["feedback_id"] == done["result"]["feedback_id"]


def test_redelivery_after_a_lost_answer_does_not_create_twice(stack):
    """A worker that sent the tree but died before settling: the next one finds the feedback
    in the org (one query) instead of creating it again."""
    from ats_gateway.services.delivery import Item
    from ats_gateway.services.feedback.runtime import build_deliverer

    interview = next(stack.interviews)
    link = _issue(stack, interview["Id"], _email())
    form = stack.http.get(f"/v1/feedback/{link['token']}").get_json()
    svc = services(stack.app).feedback
    grant = Grant(interview_id=interview["Id"], email=link["interviewer_email"])
    payload = svc._item(grant, svc.validate(svc.context(interview["Id"]), _valid_payload(form)))
    deliverer = build_deliverer(
        Connections(stack.settings, stack.redis).client("interview_feedback"),
        services(stack.app).metadata,
        services(stack.app).feedback_contexts,
    )
    notes: list[dict] = []

    def progress(item, **changes):
        item.progress.update(changes)
        notes.append(changes)
        return True

    item = Item(id="x1", payload=payload, attachments={}, attempts=0, progress={}, created_at=0)
    mark = stack.log.mark()
    [first] = deliverer.deliver([item], progress)
    assert first.kind == "delivered" and notes == [{"sent": True}]
    [again] = deliverer.deliver([item], progress)  # claimed again with progress "sent"
    assert again.kind == "duplicate"
    assert again.body["feedback_id"] == first.body["feedback_id"]
    calls = stack.log.since(mark, user="interview_feedback")
    assert [c["path"].rsplit("/", 1)[-1] for c in calls] == [FEEDBACK, "composite"]
    rows = stack.admin.query_many(
        [
            f"SELECT Id FROM {FEEDBACK} WHERE bpats__Interview__c = '{interview['Id']}' "
            f"AND bpats__Interviewer_Email__c = '{link['interviewer_email']}'"
        ]
    )[0]
    assert len(rows) == 1


# --------------------------------------------------------------------------- CLI and docs


def test_cli_issues_and_revokes_links(stack, monkeypatch, capsys):
    from ats_gateway.cli import main

    for name, value in stack.settings.to_env().items():
        monkeypatch.setenv(name, value)
    interview = next(stack.interviews)
    email = _email()
    rc = main(
        ["feedback-link", interview["Id"], "--interviewer", email, "--expires", "3d", "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["url"].startswith(stack.settings.public_url + "/feedback/")
    token = out["url"].rsplit("/", 1)[-1]
    assert stack.http.get(f"/v1/feedback/{token}").status_code == 200
    left = out["expires_at"]
    assert left > time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2.9 * 86400))

    assert main(["feedback-link", interview["Id"], "--interviewer", email, "--revoke"]) == 0
    assert "revoked 1 link(s)" in capsys.readouterr().out
    assert _problem(stack.http.get(f"/v1/feedback/{token}"), 410)["reason"] == "revoked"
    assert main(["feedback-link", "a0I000000000999AAA", "--interviewer", email]) == 1
    assert "No interview" in capsys.readouterr().err


def test_openapi_documents_the_feedback_endpoints(stack):
    doc = stack.http.get("/v1/openapi.json").get_json()
    paths = doc["paths"]
    assert "post" in paths["/v1/interviews/{interview_id}/feedback-links"]
    assert {"get", "post"} <= set(paths["/v1/feedback/{token}"])
    body = paths["/v1/feedback/{token}"]["post"]["requestBody"]["content"]["application/json"]
    assert "InterviewFeedback" in json.dumps(body)


def test_without_the_feedback_connection_links_are_503(client, redis_client):
    _, key = KeyStore(redis_client).create(kind="secret", name="r", scopes=["feedback:issue"])
    response = client.post(
        "/v1/interviews/a0I5g0000000001EAA/feedback-links",
        json={"interviewer_email": "pat@client.example.com"},
        headers={"Authorization": f"Bearer {key}"},
    )
    body = _problem(response, 503)
    assert "not connected" in body["detail"]


# --------------------------------------------------------------------------- drafts


def test_a_draft_is_saved_resumed_and_dropped_once_submitted(stack):
    interview = next(stack.interviews)
    link = _issue(stack, interview["Id"], _email())
    token = link["token"]
    form = stack.http.get(f"/v1/feedback/{token}").get_json()
    assert form["draft"] is None
    first = form["topics"][0]
    draft = {
        "comments": "Half-way there",
        "topics": [{"topic_id": first["id"], "rating": "2 - Fair"}],
    }
    saved = stack.http.put(f"/v1/feedback/{token}/draft", json=draft)
    assert saved.status_code == 200, saved.get_json()
    resumed = stack.http.get(f"/v1/feedback/{token}").get_json()["draft"]
    assert resumed["draft"] == draft and resumed["saved_at"] == saved.get_json()["saved_at"]
    # A draft is checked like a submission (bad values), but nothing is required.
    bad = {"topics": [{"topic_id": first["id"], "rating": "7 - Wow"}]}
    error = _problem(stack.http.put(f"/v1/feedback/{token}/draft", json=bad), 422)["errors"][0]
    assert error["topic_id"] == first["id"] and first["name"] in error["message"]

    # The page resumes it, and saves a new one from the form.
    html = stack.http.get(f"/feedback/{token}").get_data(as_text=True)
    assert "Half-way there" in html and "Draft saved" in html
    assert f'name="topic.{first["id"]}.rating" value="2 - Fair" checked' in html
    fields = {"comments": "Nearly done", "action": "draft"}
    page = stack.http.post(f"/feedback/{token}", data=fields)
    assert page.status_code == 200 and "Draft saved" in page.get_data(as_text=True)
    assert stack.http.get(f"/v1/feedback/{token}").get_json()["draft"]["draft"]["comments"] == (
        "Nearly done"
    )

    accepted = stack.http.post(f"/v1/feedback/{token}", json=_valid_payload(form))
    assert accepted.status_code == 202
    assert (
        services(stack.app).feedback.draft(
            Grant(interview_id=interview["Id"], email=link["interviewer_email"])
        )
        is None
    )
    _problem(stack.http.put(f"/v1/feedback/{token}/draft", json=draft), 409)
