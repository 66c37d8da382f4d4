"""[22] `ats-gateway dev` turns the board feeds on with demo tokens (derived from the signing
secret, so stable across restarts); anything set in the environment wins, even empty."""

from __future__ import annotations

from ats_gateway.api.demo import DEMO_LINKEDIN, demo_feed_settings, feed_urls
from ats_gateway.config import Settings


def test_dev_feed_tokens_are_derived_stable_and_yield_to_the_environment():
    settings = Settings.from_env({}, secret_key="s1", public_url="http://127.0.0.1:8000")
    first = demo_feed_settings(settings, {})
    assert first == demo_feed_settings(settings, {})  # same secret, same tokens
    assert first["feed_key_indeed"] != first["feed_key_linkedin"]
    assert "s1" not in first["feed_key_indeed"]
    other = demo_feed_settings(settings.replace(secret_key="s2"), {})
    assert other["feed_key_indeed"] != first["feed_key_indeed"]
    assert {k: first[k] for k in DEMO_LINKEDIN} == DEMO_LINKEDIN

    env = {"ATS_GATEWAY_FEED_KEY_LINKEDIN": "", "ATS_GATEWAY_LINKEDIN_COMPANY_ID": "42"}
    chosen = demo_feed_settings(settings, env)
    assert "feed_key_linkedin" not in chosen and "linkedin_company_id" not in chosen

    urls = feed_urls(settings.replace(**first))
    assert urls["sitemap"] == "http://127.0.0.1:8000/sitemap.xml"
    assert urls["indeed"] == (
        f"http://127.0.0.1:8000/feeds/indeed.xml?token={first['feed_key_indeed']}"
    )
    assert "linkedin" in urls
    assert "indeed" not in feed_urls(settings)  # feed off: no URL printed
