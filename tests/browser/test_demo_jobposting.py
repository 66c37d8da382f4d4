"""[16] The demo career site's job page carries the job's schema.org JobPosting JSON-LD, and a
structured-data extractor (extruct, as a crawler would read it) finds exactly one JobPosting.
"""

from __future__ import annotations

import json

import extruct
import pytest
import requests


def _public_job(live_server) -> dict:
    response = requests.get(
        live_server.url + "/v1/jobs",
        params={"limit": 1},
        headers={"Authorization": f"Bearer {live_server.secret_key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["data"][0]


def _jobpostings(html: str, url: str) -> list[dict]:
    found = extruct.extract(html, base_url=url, syntaxes=["json-ld"], uniform=True)["json-ld"]
    return [item for item in found if item.get("@type") == "JobPosting"]


def test_job_page_embeds_one_jobposting(page, live_server):
    job = _public_job(live_server)
    url = f"{live_server.url}/demo/jobs/{job['id']}"

    # What a crawler gets without running the page's script.
    served = requests.get(url, timeout=10)
    assert served.status_code == 200
    assert len(_jobpostings(served.text, url)) == 1

    # The page as a browser renders it: the job is shown, and the markup is still there once.
    page.goto(url)
    page.wait_for_selector("#job-title")
    assert page.locator("#job-title").inner_text() == job["title"]
    scripts = page.locator('script[type="application/ld+json"]')
    assert scripts.count() == 1
    postings = _jobpostings(page.content(), url)
    assert len(postings) == 1
    posting = postings[0]
    assert posting["title"] == job["title"]
    assert posting["identifier"]["value"] == job["id"]
    assert posting["url"] == url
    assert json.loads(scripts.first.inner_text())["@type"] == "JobPosting"


@pytest.mark.parametrize("job_id", ["a0M000000000000AAA"])
def test_unknown_job_page_has_no_jobposting(live_server, job_id):
    url = f"{live_server.url}/demo/jobs/{job_id}"
    served = requests.get(url, timeout=10)
    assert served.status_code == 404
    assert _jobpostings(served.text, url) == []
