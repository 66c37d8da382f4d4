"""Connection settings, secrets and grants."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import pytest

from ats_gateway.salesforce.budget import parse_limit_info
from ats_gateway.salesforce.connections import (
    DEFAULT_GRANTS,
    ConnectionSettings,
    Grants,
    Secret,
)
from ats_gateway.salesforce.errors import OperationNotAllowed


def test_secrets_hide_in_repr_str_and_refuse_pickling():
    s = Secret("hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"
    assert s.reveal() == "hunter2"
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_settings_wrap_plain_secrets_and_keep_them_out_of_repr():
    conf = ConnectionSettings(
        "job_portal",
        client_secret="cs-1",
        password="pw-2",
        security_token="st-3",
        private_key="-----BEGIN PRIVATE KEY-----pk-4",
        refresh_token="rt-5",
    )
    text = repr(conf)
    for secret in ("cs-1", "pw-2", "st-3", "pk-4", "rt-5"):
        assert secret not in text
    assert isinstance(conf.password, Secret) and conf.password.reveal() == "pw-2"
    assert conf.timeout == (5.0, 30.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"flow": "saml"}, {"api_version": "v62"}, {"budget_reserve": 1.5}],
)
def test_settings_are_validated(kwargs):
    with pytest.raises(ValueError):
        ConnectionSettings("job_portal", **kwargs)


@dataclass(frozen=True)
class _GatewayConnectionConfig:  # the shape of ats_gateway.config.ConnectionConfig
    name: str
    login_url: str = "https://test.salesforce.com"
    auth_flow: str = "jwt_bearer"
    client_id: str = "cid"
    client_secret: str = ""
    username: str = "u@example.com"
    password: str = ""
    security_token: str = ""
    private_key: str = "/run/secrets/sf.key"
    refresh_token: str = ""
    api_version: str = "61.0"
    verify_tls: bool = True


def test_from_config_reads_the_gateway_connection_shape():
    conf = ConnectionSettings.from_config(
        _GatewayConnectionConfig("interview_feedback"), read_timeout=12.0
    )
    assert conf.flow == "jwt"
    assert conf.private_key is None and conf.private_key_file == "/run/secrets/sf.key"
    assert conf.client_secret is None
    assert (conf.api_version, conf.read_timeout, conf.login_url) == (
        "61.0",
        12.0,
        "https://test.salesforce.com",
    )
    assert conf.effective_grants == DEFAULT_GRANTS["interview_feedback"]


def test_default_grants_follow_the_permission_sets():
    portal = DEFAULT_GRANTS["job_portal"]
    assert portal.allows("bpats__Job__c", "read")
    assert not portal.allows("bpats__Job__c", "edit")
    assert portal.allows("bpats__job_board_application__c", "create")  # case-insensitive
    assert portal.allows("ContentVersion", "create")
    assert portal.allows("ContentVersion", "read")  # a redelivery looks for its resume
    assert not portal.allows("ContentVersion", "edit")
    feedback = DEFAULT_GRANTS["interview_feedback"]
    assert feedback.allows("bpats__Interview_Topic_Feedback__c", "edit")
    assert not feedback.allows("Contact", "create")
    with pytest.raises(OperationNotAllowed, match="interview_feedback"):
        feedback.check("interview_feedback", "Contact", "create")


def test_grants_from_other_document_shapes():
    grants = Grants.from_permission_sets(
        {"objects": {"Contact": {"read": True, "create": False, "update": True}}},
        {"object_permissions": [{"object": "Account", "read": True}]},
    )
    assert grants.allows("Contact", "read") and grants.allows("Contact", "edit")
    assert not grants.allows("Contact", "create")
    assert grants.allows("Account", "read")
    with pytest.raises(ValueError):
        Grants.of({"Contact": ["destroy"]})
    assert Grants.everything().allows("Anything__c", "delete")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("api-usage=10018/100000", (10018, 100000)),
        ("api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)", (25, 5000)),
        ("per-app-api-usage=17/250(appName=x)", None),
        ("", None),
        (None, None),
    ],
)
def test_limit_info_header(header, expected):
    assert parse_limit_info(header) == expected


@pytest.mark.parametrize(
    ("login_url", "audience", "expected"),
    [
        ("https://login.salesforce.com", None, "https://login.salesforce.com"),
        ("https://test.salesforce.com/", None, "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", None, "https://login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", None, "https://test.salesforce.com"),
        ("http://127.0.0.1:8787", None, "http://127.0.0.1:8787"),
        ("https://acme.my.salesforce.com", "https://acme.my.site.com", "https://acme.my.site.com"),
    ],
)
def test_jwt_audience(login_url, audience, expected):
    from ats_gateway.salesforce.auth import jwt_audience

    conf = ConnectionSettings("x", login_url=login_url, flow="jwt", audience=audience)
    assert jwt_audience(conf) == expected
