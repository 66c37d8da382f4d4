"""Shared constants, wire shapes and backends for the Salesforce client's contract tests."""

from __future__ import annotations

import json
from typing import Any

import redis
import requests
import responses
from responses import matchers

from ats_gateway.salesforce import ConnectionSettings, SalesforceClient

API = "62.0"
LOGIN_URL = "https://login.salesforce.com"
INSTANCE = "https://na1.salesforce.com"
BASE = f"{INSTANCE}/services/data/v{API}"
TOKEN_URL = f"{LOGIN_URL}/services/oauth2/token"
ORG_ID = "00D50000000IZ3ZEAW"

CLIENT_SECRET = "client-secret-5f1d"
PASSWORD = "hunter2-password"
SECURITY_TOKEN = "SECTOKEN9000"
ACCESS_TOKEN = "00D50000000IZ3Z!AQgAQH0Yd9M51BU_rayzAdmZ6NmT3pXZBgzkc3JTwDOGBl8BP2AREOiZz"
REFRESH_TOKEN = "5Aep861TaNkRecordedRefreshToken0001"
ACCESS_TOKEN_2 = "00D50000000IZ3Z!AQgAQSecondTokenAfterReauthenticationXXXXXXXXXXXXXXXXX"

# Wire shapes section 1a (password flow success).
TOKEN_BODY = {
    "access_token": ACCESS_TOKEN,
    "instance_url": INSTANCE,
    "id": f"https://login.salesforce.com/id/{ORG_ID}/00550000001fg5OAAQ",
    "token_type": "Bearer",
    "issued_at": "1296509381665",
    "signature": "+Nbl5EOl/DlsvUZ4NbGDno6vn935XsWGVbwoKyXHayo=",
}
LIMIT_HEADERS = {"Sforce-Limit-Info": "api-usage=18/15000"}


def settings(name: str = "job_portal", **overrides: Any) -> ConnectionSettings:
    values: dict[str, Any] = {
        "name": name,
        "login_url": LOGIN_URL,
        "flow": "password",
        "client_id": "3MVG9-consumer-key",
        "client_secret": CLIENT_SECRET,
        "username": "portal@asymbl.example",
        "password": PASSWORD,
        "security_token": SECURITY_TOKEN,
        "api_version": API,
        "key_prefix": "test:sf:",
    }
    values.update(overrides)
    return ConnectionSettings(**values)


# --------------------------------------------------------------------------- backends


def expect_login(
    rsps: responses.RequestsMock, body: dict | None = None, token: str = ACCESS_TOKEN
) -> responses.BaseResponse:
    """The password-flow token request, matched on its exact form body."""
    return rsps.post(
        TOKEN_URL,
        json=body or {**TOKEN_BODY, "access_token": token},
        match=[
            matchers.urlencoded_params_matcher(
                {
                    "grant_type": "password",
                    "client_id": "3MVG9-consumer-key",
                    "client_secret": CLIENT_SECRET,
                    "username": "portal@asymbl.example",
                    "password": PASSWORD + SECURITY_TOKEN,
                }
            )
        ],
    )


def bearer(token: str = ACCESS_TOKEN) -> Any:
    return matchers.header_matcher({"Authorization": f"Bearer {token}"})


class RecordedOrg:
    """Answers from literal wire shapes; counts API calls as requests seen by responses."""

    kind = "recorded"

    def __init__(self, rsps: responses.RequestsMock, redis_client: redis.Redis) -> None:
        self.rsps = rsps
        self.redis = redis_client
        self._logged_in: set[str] = set()

    def client(self, connection: str = "job_portal", flow: str = "password") -> SalesforceClient:
        if flow != "password":
            return self._flow_client(connection, flow)
        if connection not in self._logged_in:
            expect_login(self.rsps)
            self._logged_in.add(connection)
        return SalesforceClient(settings(connection), self.redis)

    def _flow_client(self, connection: str, flow: str) -> SalesforceClient:
        form = {
            "grant_type": flow,
            "client_id": "3MVG9-consumer-key",
            "client_secret": CLIENT_SECRET,
        }
        if flow == "refresh_token":
            form["refresh_token"] = REFRESH_TOKEN
        self.rsps.post(
            TOKEN_URL,
            json={**TOKEN_BODY, "scope": "api refresh_token"},
            match=[matchers.urlencoded_params_matcher(form)],
        )
        conf = settings(connection, flow=flow, refresh_token=REFRESH_TOKEN)
        return SalesforceClient(conf, self.redis)

    def expect(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        body: Any = None,
        match: list | tuple = (),
        times: int = 1,
    ) -> None:
        for _ in range(times):
            self.rsps.add(
                method,
                BASE + path,
                status=status,
                body=b"" if body is None else json.dumps(body),
                content_type="application/json;charset=UTF-8",
                headers=LIMIT_HEADERS,
                match=list(match),
            )

    def api_calls(self) -> int:
        return sum(1 for call in self.rsps.calls if "/services/oauth2/" not in call.request.url)


class SandboxOrg:
    """The sandbox org over HTTP; API calls counted by its own counter."""

    kind = "sandbox"

    def __init__(self, handle: Any, redis_client: redis.Redis, users: dict[str, dict]) -> None:
        self.handle = handle
        self.redis = redis_client
        self.users = users
        self.http = requests.Session()

    def client(self, connection: str = "job_portal", flow: str = "password") -> SalesforceClient:
        user = self.users[connection]
        return SalesforceClient(
            settings(
                connection,
                flow=flow,
                login_url=self.handle.url,
                client_id=user["client_id"],
                client_secret=user["client_secret"],
                username=user["username"],
                password=user["password"],
                security_token=user.get("security_token", ""),
                refresh_token=user.get("refresh_token"),
            ),
            self.redis,
        )

    def expect(self, *args: Any, **kwargs: Any) -> None:
        """The emulator answers for itself."""

    def api_calls(self) -> int:
        usage = self.http.get(self.handle.url + "/__sandbox__/usage", timeout=5).json()
        return int(usage["used"])


def sandbox_users() -> dict[str, dict]:
    """Integration users of the sandbox's demo seed (with refresh tokens), by connection name."""
    from sandbox_org.seed import DEMO_USERS

    return {u["key"]: dict(u) for u in DEMO_USERS}
