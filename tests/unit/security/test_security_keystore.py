"""The key store on the session's real Redis: hashes only, lookup, revoke, demo keys."""

from __future__ import annotations

import pytest

from ats_gateway.security.keys import (
    PUBLISHABLE,
    SECRET,
    InvalidKeySpec,
    KeyStore,
    ensure_demo_keys,
    normalize_origin,
    parse_plaintext,
)


@pytest.fixture
def store(redis_client):
    return KeyStore(redis_client)


def test_created_key_authenticates_and_only_its_hash_is_stored(store, redis_client):
    key, plaintext = store.create(
        kind=SECRET, name="Job board", scopes=["applications:write"], rate_limit="5/minute"
    )
    assert plaintext.startswith(f"sk_{key.id}_")
    assert store.authenticate(plaintext) == key
    raw = redis_client.hgetall(f"ats:keys:{key.id}")
    stored = b" ".join(raw.values())
    assert plaintext.encode() not in stored
    assert plaintext.removeprefix(f"sk_{key.id}_").encode() not in stored  # (it may hold "_")
    assert key.rate_limit == "5/minute"


def test_wrong_secret_unknown_id_and_garbage_do_not_authenticate(store):
    key, plaintext = store.create(kind=SECRET, name="x", scopes=["jobs:read"])
    tampered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    assert store.authenticate(tampered) is None
    assert store.authenticate(plaintext.replace(key.id, "ffffffffffff")) is None
    assert store.authenticate("pk" + plaintext[2:]) is None  # same id, other kind
    assert store.authenticate("") is None
    assert store.authenticate("Bearer nonsense") is None


def test_revoked_key_stops_authenticating_and_stays_listed(store):
    key, plaintext = store.create(kind=SECRET, name="x", scopes=["jobs:read"])
    before = store.generation()
    revoked = store.revoke(key.id)
    assert revoked is not None and revoked.revoked_at > 0
    assert store.generation() > before
    assert store.authenticate(plaintext) is None
    listed = {k.id: k for k in store.list()}
    assert not listed[key.id].active
    assert key.id not in {k.id for k in store.list(include_revoked=False)}
    assert store.revoke("nosuchkey1") is None


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"kind": PUBLISHABLE, "scopes": ["jobs:read"]}, "at least one origin"),
        (
            {"kind": PUBLISHABLE, "scopes": ["admin"], "origins": ["https://a.example"]},
            "may only hold",
        ),
        ({"kind": SECRET, "scopes": ["jobs:read"], "origins": ["https://a.example"]}, "only"),
        ({"kind": SECRET, "scopes": ["jobs:write"]}, "unknown scope"),
        ({"kind": SECRET, "scopes": []}, "at least one scope"),
        ({"kind": SECRET, "scopes": ["jobs:read"], "rate_limit": "lots"}, "rate limit"),
        ({"kind": "other", "scopes": ["jobs:read"]}, "kind"),
        (
            {"kind": PUBLISHABLE, "scopes": ["jobs:read"], "origins": ["https://a.example/x"]},
            "path",
        ),
    ],
)
def test_invalid_key_specs_are_refused(store, kwargs, message):
    with pytest.raises(InvalidKeySpec, match=message):
        store.create(name="x", **kwargs)


def test_origins_are_normalized():
    assert normalize_origin("HTTPS://Careers.Example.com:443/") == "https://careers.example.com"
    assert normalize_origin("http://localhost:8000") == "http://localhost:8000"
    with pytest.raises(InvalidKeySpec):
        normalize_origin("careers.example.com")


def test_plaintext_shape():
    assert parse_plaintext("pk_abcd1234_" + "x" * 43) == (PUBLISHABLE, "abcd1234")
    assert parse_plaintext("sk_abcd1234_" + "x" * 43) == (SECRET, "abcd1234")
    assert parse_plaintext("xk_abcd1234_" + "x" * 43) is None
    assert parse_plaintext("sk_ABCD_" + "x" * 43) is None


def test_demo_keys_are_idempotent_and_authenticate(store):
    first = ensure_demo_keys(store, signing_secret="s1", origins=["http://127.0.0.1:8000"])
    second = ensure_demo_keys(store, signing_secret="s1", origins=["http://127.0.0.1:8000"])
    assert first == second
    pk = store.authenticate(first[PUBLISHABLE])
    sk = store.authenticate(first[SECRET])
    assert pk is not None and pk.publishable and pk.origins == ("http://127.0.0.1:8000",)
    assert sk is not None and not sk.publishable and "applications:write" in sk.scopes
    # a revoked demo key is re-issued, and a new signing secret yields new keys
    store.revoke(pk.id)
    third = ensure_demo_keys(store, signing_secret="s1", origins=["http://127.0.0.1:8000"])
    assert store.authenticate(third[PUBLISHABLE]) is not None
    other = ensure_demo_keys(store, signing_secret="s2", origins=["http://127.0.0.1:8000"])
    assert other[SECRET] != first[SECRET]
    assert store.authenticate(first[SECRET]) is None
    with pytest.raises(InvalidKeySpec):
        ensure_demo_keys(store, signing_secret="", origins=[])
