"""The demo career site in headless Chromium, against the live gateway (sandbox org, real
worker). The page is loaded from `http://localhost:<port>` and calls the API at
`http://127.0.0.1:<port>`, so every API call is cross-origin with the publishable key, as on a
customer's site; the expected numbers come from the API itself. The apply tests load the page
from the API's own origin for as long as `GET /v1/schemas/application` sends no CORS headers
(see `schema_cors_gap`; `test_apply_form_loads_cross_origin` is skipped until then)."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid

import pytest
import requests

from ats_gateway.api.demo import announce_demo, demo_origins, enabled
from ats_gateway.config import PROJECT_ROOT
from ats_gateway.security import KeyStore

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def api(live_server, path: str, key: str | None = None, **params) -> dict:
    key = key or live_server.publishable_key
    response = requests.get(
        live_server.url + path,
        params=params,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def schema_cors_gap(live_server) -> str | None:
    """Why the form cannot be loaded cross-origin yet (None once it can)."""
    response = requests.get(
        live_server.url + "/v1/schemas/application",
        headers={"Origin": live_server.other_origin_url},
        timeout=10,
    )
    if response.headers.get("Access-Control-Allow-Origin") in ("*", live_server.other_origin_url):
        return None
    return (
        "GET /v1/schemas/application sends no Access-Control-Allow-Origin, so a career site on "
        "another origin cannot read the form's JSON Schema (ats_gateway/api/schemas.py, "
        "ats_gateway/security/cors.py)"
    )


def open_demo(page, live_server, fragment: str = "", *, cross_origin: bool = True):
    """Open the demo from `localhost` (API calls cross-origin), or from the API's own origin
    where a test is about something else than CORS (see schema_cors_gap)."""
    base = live_server.other_origin_url if cross_origin else live_server.url
    page.goto(f"{base}/demo/{fragment}")


def card_texts(page, selector: str) -> list[str]:
    return page.locator(f"#job-list .job-card {selector}").all_inner_texts()


def wait_for_count(page, total: int) -> None:
    page.wait_for_selector(f"#result-count[data-total='{total}']")


def first_open_job(live_server) -> dict:
    return api(live_server, "/v1/jobs", limit=1, sort="-posted_at")["data"][0]


# --------------------------------------------------------------------------- served when


def test_demo_is_not_served_outside_dev(client):
    """The session's app runs with env=test and the demo disabled: /demo does not exist."""
    assert client.get("/demo/").status_code == 404
    assert client.get("/demo/config.json").status_code == 404


def test_demo_switch_and_key_origins(base_settings):
    assert enabled(base_settings.replace(env="dev"))
    assert enabled(base_settings.replace(demo_enabled=True))
    assert not enabled(base_settings.replace(env="production"))
    assert demo_origins("http://127.0.0.1:8000") == [
        "http://127.0.0.1:8000",
        "http://localhost:8000",
    ]
    assert demo_origins("https://careers.example.com") == ["https://careers.example.com"]


def test_demo_config_and_page_headers(live_server):
    page = requests.get(live_server.url + "/demo/", timeout=5)
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and live_server.url in csp
    config = requests.get(live_server.url + "/demo/config.json", timeout=5).json()
    assert config["api_base"] == live_server.url
    assert config["publishable_key"] == live_server.publishable_key
    assert config["publishable_key"].startswith("pk_")
    assert api(live_server, "/v1/jobs", limit=1)["meta"]["total"] > 0
    redirect = requests.get(live_server.url + "/demo", allow_redirects=False, timeout=5)
    assert redirect.status_code == 302 and redirect.headers["Location"].endswith("/demo/")
    assert requests.get(live_server.url + "/demo/index.html", timeout=5).status_code == 404
    assert requests.get(live_server.url + "/demo/missing.js", timeout=5).status_code == 404
    # no status relay any more: the page uses the candidate's receipt URL
    assert requests.get(live_server.url + "/demo/status/0123abcd", timeout=5).status_code == 404
    forged = requests.get(live_server.url + "/v1/receipts/not-a-token", timeout=5)
    assert forged.status_code == 404
    assert forged.headers["Content-Type"] == "application/problem+json"


def test_dev_command_announces_the_keys_the_page_serves(live_server, tmp_path):
    """What `ats-gateway dev` prints and writes: the same keys the page serves, in a file the
    README's tour sources."""
    feedback_url = live_server.url + "/feedback/abc?x=1&y=2"
    lines = announce_demo(live_server.settings, tmp_path, feedback_url=feedback_url)
    text = "\n".join(lines)
    assert live_server.publishable_key in text and live_server.secret_key in text
    assert f"{live_server.url}/demo/" in text and f"{live_server.url}/docs" in text
    assert f"{live_server.url}/feeds/indeed.xml?token=demo-feed-indeed" in text
    assert f"{live_server.url}/sitemap.xml" in text
    env_file = tmp_path / "demo.env"
    assert f"source {env_file}" in text
    assert env_file.stat().st_mode & 0o077 == 0
    shell = subprocess.run(
        ["bash", "-c", f'source "{env_file}" && echo "$ATS_URL $ATS_PK $ATS_SK $ATS_FEEDBACK_URL"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout.split() == [
        live_server.url,
        live_server.publishable_key,
        live_server.secret_key,
        feedback_url,
    ]


def readme_tour() -> str:
    """The shell blocks of the README's tour, in order."""
    text = (PROJECT_ROOT / "README.md").read_text()
    tour = text.split("## A 60-second tour", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```sh\n(.*?)```", tour, re.S))


def test_readme_tour_works_as_printed(live_server, tmp_path):
    """The README's curl tour, run by bash against the live gateway. Only the paths differ:
    the env file is this stack's, the sandbox port is this sandbox's, files go to tmp_path."""
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    announce_demo(live_server.settings, tmp_path)
    script = (
        readme_tour()
        .replace("/tmp/", f"{tmp_path}/")
        .replace(".ats-gateway/demo.env", str(tmp_path / "demo.env"))
        .replace("http://127.0.0.1:8900", live_server.sandbox.url)
    )
    assert "source" in script and "curl" in script
    run = subprocess.run(
        ["bash", "-c", "set -e\n" + script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert '"status": "ok"' in out  # readyz
    assert '"next_cursor"' in out and '"department"' in out  # jobs, facets
    assert '"status": "delivered"' in out and '"salesforce_id"' in out
    assert '"status": 409' in out and '"existing_application"' in out
    assert '"field": "email", "code": "invalid_email"' in out
    assert '"used"' in out  # the sandbox's API counter
    assert "<source>" in out and "<referencenumber><![CDATA[" in out  # the Indeed feed
    assert f"Sitemap: {live_server.url}/sitemap.xml" in out and "<urlset" in out


# --------------------------------------------------------------------------- in the browser


def test_search_filter_sort_and_page(page, live_server):
    cors_origins: set[str] = set()

    def on_response(response):
        if response.url.startswith(live_server.url + "/v1/jobs"):
            cors_origins.add(response.headers.get("access-control-allow-origin", ""))

    page.on("response", on_response)
    everything = api(live_server, "/v1/jobs", limit=100)
    total = everything["meta"]["total"]
    assert total > 20, "the demo seed should list more than two pages of jobs"

    open_demo(page, live_server)
    wait_for_count(page, total)
    assert page.locator("#result-count").inner_text() == f"{total} open jobs"
    first_page = card_texts(page, ".job-title")
    assert len(first_page) == 10
    assert page.locator("#page-number").inner_text() == f"Page 1 of {-(-total // 10)}"
    # every API call was cross-origin and allowed for exactly the page's origin
    assert cors_origins == {live_server.other_origin_url}

    # paging: the next page holds other jobs, and Previous comes back to the first
    page.click("#next-page")
    page.wait_for_selector("#page-number:has-text('Page 2')")
    second_page = card_texts(page, ".job-title")
    assert len(second_page) == 10 and not set(second_page) & set(first_page)
    page.click("#prev-page")
    page.wait_for_selector("#page-number:has-text('Page 1')")
    assert card_texts(page, ".job-title") == first_page

    # a facet filter: the count shown next to the value is the number of jobs listed
    facets = api(live_server, "/v1/jobs/facets")["data"]
    department = facets["department"][0]
    page.check(f"#facet-department-{re.sub(r'[^A-Za-z0-9]+', '-', department['value'])}")
    wait_for_count(page, department["count"])
    tags = page.locator("#job-list .tag[data-tag='department']").all_inner_texts()
    assert tags and set(tags) == {department["value"]}

    # full-text search combined with the filter, against the API's own answer
    in_department = api(live_server, "/v1/jobs", department=department["value"], limit=1)
    word = in_department["data"][0]["title"].split()[-1]
    expected = api(
        live_server, "/v1/jobs", q=word, department=department["value"], sort="-posted_at"
    )
    page.fill("#search-q", word)
    page.click("#search-form button[type=submit]")
    assert expected["meta"]["total"] >= 1
    wait_for_count(page, expected["meta"]["total"])
    titles = card_texts(page, ".job-title")
    assert titles == [job["title"] for job in expected["data"]][:10]

    # sort by title: the page shows what the API sorts, A to Z
    page.fill("#search-q", "")
    page.click("#search-form button[type=submit]")
    wait_for_count(page, department["count"])
    page.select_option("#sort", "title")
    page.wait_for_function("location.hash.includes('sort=title')")
    by_title = api(live_server, "/v1/jobs", department=department["value"], sort="title")
    page.wait_for_function(
        "t => (document.querySelector('#job-list .job-title') || {}).textContent === t",
        arg=by_title["data"][0]["title"],
    )
    shown = card_texts(page, ".job-title")
    assert shown == [job["title"] for job in by_title["data"]][:10]
    assert shown == sorted(shown, key=str.casefold)


def fill_application(page, *, email: str, first_name: str = "Ada") -> None:
    page.fill("#f-first_name", first_name)
    page.fill("#f-last_name", "Lovelace")
    page.fill("#f-email", email)
    page.fill("#f-phone", "+44 20 7946 0958")
    page.fill("#f-linkedin_url", "https://www.linkedin.com/in/ada-lovelace")
    page.fill("#f-cover_letter", "I wrote the first program; I would like to write yours.")
    page.check("#f-consent")


def test_apply_with_resume_until_delivered(page, live_server):
    job = first_open_job(live_server)
    open_demo(page, live_server, cross_origin=schema_cors_gap(live_server) is None)
    page.click(f"#job-list .job-card[data-job-id='{job['id']}'] a.job-title")
    page.wait_for_selector("#job-title")
    assert page.locator("#job-title").inner_text() == job["title"]
    page.click("#apply-link")
    page.wait_for_selector("#apply-form")
    assert page.locator("#apply-job-title").inner_text() == job["title"]
    # the honeypot is in the form, but off-screen and hidden from assistive technology
    box = page.locator("#f-hp").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 0
    assert page.locator(".hp").get_attribute("aria-hidden") == "true"

    receipt_reads: list[str] = []
    page.on(
        "response",
        lambda r: (
            receipt_reads.append(r.json()["status"])
            if "/v1/receipts/" in r.url and r.status == 200
            else None
        ),
    )
    email = f"ada.{uuid.uuid4().hex[:10]}@browser.example.com"
    fill_application(page, email=email)
    page.set_input_files(
        "#f-resume", {"name": "ada-lovelace.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    with page.expect_response(
        lambda r: r.url == live_server.url + "/v1/applications" and r.request.method == "POST"
    ) as submitted:
        page.click("#submit-application")
    accepted = submitted.value
    assert accepted.status == 202, accepted.text()
    body = accepted.json()
    assert body["status"] == "queued"

    page.wait_for_selector("#application-status[data-status='delivered']", timeout=45_000)
    assert page.locator("#application-status").inner_text() == "Delivered"

    # the gateway's own record agrees (read as the operator: since [15] a job board's key
    # reads only the applications it submitted itself)
    _, operator = KeyStore(live_server.redis).create(
        kind="secret", name="browser test operator", scopes=["admin"]
    )
    record = api(live_server, body["status_url"], key=operator)
    assert record["status"] == "delivered"
    # the page read the candidate's receipt (no key, no relay) and saw it move on
    assert body["receipt_url"].startswith(live_server.url + "/v1/receipts/")
    assert receipt_reads[0] in ("queued", "delivering") and receipt_reads[-1] == "delivered"
    assert page.locator("#receipt-link").get_attribute("href") == body["receipt_url"]
    # the receipt itself, as the candidate's bookmarked page: first name, title, status only
    page.goto(body["receipt_url"])
    status = page.locator("#receipt-status")
    assert status.get_attribute("data-status") == "delivered"
    assert status.get_attribute("role") == "status"
    text = page.locator("main").inner_text()
    assert "Ada" in text and job["title"] in text and email not in text
    assert "Lovelace" not in text


def test_validation_errors_shown_next_to_their_fields(page, live_server):
    job = first_open_job(live_server)
    posts: list[str] = []
    page.on(
        "request",
        lambda r: posts.append(r.url) if r.method == "POST" and "/v1/applications" in r.url else 0,
    )

    # 1. pre-validation in the page, from the JSON Schema: nothing is sent
    cross_origin = schema_cors_gap(live_server) is None
    open_demo(page, live_server, f"#/jobs/{job['id']}/apply", cross_origin=cross_origin)
    page.wait_for_selector("#apply-form")
    fill_application(page, email="ada@lovelace")
    page.fill("#f-last_name", "")
    page.click("#submit-application")
    email_error = page.locator(".field[data-field='email'] .field-error")
    email_error.wait_for(state="visible")
    assert "email address" in email_error.inner_text()
    assert page.get_attribute("#f-email", "aria-invalid") == "true"
    assert page.locator(".field[data-field='last_name'] .field-error").inner_text() == (
        "This field is required."
    )
    assert page.locator(".field[data-field='first_name'] .field-error").is_hidden()
    assert posts == []

    # 2. the gateway's own 422, shown next to the field it names (pre-validation off)
    open_demo(
        page, live_server, f"#/jobs/{job['id']}/apply?prevalidate=0", cross_origin=cross_origin
    )
    page.wait_for_selector("#apply-form")
    fill_application(
        page, email=f"ada.{uuid.uuid4().hex[:8]}@browser.example.com", first_name="A" * 41
    )
    with page.expect_response(lambda r: r.url == live_server.url + "/v1/applications") as answer:
        page.click("#submit-application")
    assert answer.value.status == 422
    problem = answer.value.json()
    assert [e["field"] for e in problem["errors"]] == ["first_name"]
    first_name_error = page.locator(".field[data-field='first_name'] .field-error")
    first_name_error.wait_for(state="visible")
    assert first_name_error.inner_text() == problem["errors"][0]["message"]
    assert page.locator(".field[data-field='email'] .field-error").is_hidden()
    assert len(posts) == 1


def test_apply_form_loads_cross_origin(page, live_server):
    gap = schema_cors_gap(live_server)
    if gap:
        pytest.skip(gap)
    job = first_open_job(live_server)
    open_demo(page, live_server, f"#/jobs/{job['id']}/apply")
    page.wait_for_selector("#apply-form #f-email")


def test_closed_or_unknown_job_page_says_so(page, live_server):
    open_demo(page, live_server, "#/jobs/a0M5g0000000ZZZZZZ")
    page.wait_for_selector("h1:has-text('This job is no longer open')")
