"""`ats-gateway keys create|list|revoke` through `ats_gateway.cli.main`, on the test Redis."""

from __future__ import annotations

import json

import pytest

from ats_gateway.cli import main
from ats_gateway.security import KeyStore


@pytest.fixture
def cli_env(monkeypatch, redis_url):
    monkeypatch.setenv("ATS_GATEWAY_REDIS_URL", redis_url)


@pytest.fixture
def store(redis_client):
    return KeyStore(redis_client)


def test_create_shows_the_key_once_and_stores_only_a_hash(cli_env, store, capsys):
    rc = main(
        [
            "keys",
            "create",
            "--kind",
            "publishable",
            "--name",
            "Careers",
            "--scope",
            "jobs:read",
            "--scope",
            "applications:write",
            "--origin",
            "https://careers.cli.example",
            "--rate-limit",
            "50/minute",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    plaintext = next(line.strip() for line in out.splitlines() if line.strip().startswith("pk_"))
    key = store.authenticate(plaintext)
    assert key is not None
    assert key.name == "Careers"
    assert key.scopes == {"jobs:read", "applications:write"}
    assert key.origins == ("https://careers.cli.example",)
    assert key.rate_limit == "50/minute"
    assert "shown only this once" in out

    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert key.prefix in listing
    assert plaintext not in listing
    assert plaintext.rsplit("_", 1)[-1] not in listing


def test_json_create_list_and_revoke(cli_env, store, capsys):
    assert (
        main(
            ["keys", "create", "--kind", "secret", "--name", "Board", "--scope", "admin", "--json"]
        )
        == 0
    )
    created = json.loads(capsys.readouterr().out)
    assert created["kind"] == "secret" and created["key"].startswith("sk_")
    assert store.authenticate(created["key"]) is not None

    assert main(["keys", "list", "--json"]) == 0
    listed = {k["id"]: k for k in json.loads(capsys.readouterr().out)}
    assert listed[created["id"]]["revoked_at"] is None
    assert "key" not in listed[created["id"]]

    assert main(["keys", "revoke", created["prefix"]]) == 0
    assert "revoked" in capsys.readouterr().out
    assert store.authenticate(created["key"]) is None

    assert main(["keys", "list", "--active", "--json"]) == 0
    assert created["id"] not in {k["id"] for k in json.loads(capsys.readouterr().out)}


def test_invalid_requests_fail_with_a_message(cli_env, capsys):
    rc = main(["keys", "create", "--kind", "publishable", "--name", "x", "--scope", "jobs:read"])
    assert rc == 2
    assert "origin" in capsys.readouterr().err
    assert main(["keys", "revoke", "nosuchkey99"]) == 1
    assert "no key" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["keys", "create", "--kind", "secret", "--name", "x", "--scope", "everything"])


def test_a_secret_key_carries_a_default_source(cli_env, store, capsys):
    """[16] `--source`: the default source of the key's applications (source attribution)."""
    argv = ["keys", "create", "--kind", "secret", "--name", "Board", "--scope", "admin"]
    assert main([*argv, "--source", "Job Board", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["source"] == "Job Board"
    assert store.authenticate(created["key"]).source == "Job Board"
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] is None
