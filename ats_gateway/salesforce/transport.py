"""Transport: how one request reaches the org, and how its failure comes back.

* One pooled ``requests.Session`` per client, never retrying on its own (``max_retries=0``),
  with the connection's (connect, read) timeouts on every request.
* A token from the shared Redis cache; a 401 ``INVALID_SESSION_ID`` re-authenticates once
  (single-flight across processes, see ``auth.py``) and replays the request once - a loop,
  not recursion. Only paths under ``/services/`` ever carry the session.
* ``Sforce-Limit-Info`` of every answer is recorded in the org's
  :class:`~ats_gateway.salesforce.budget.ApiBudget`.
* A status outside ``ok`` becomes a typed :class:`~ats_gateway.salesforce.errors.SalesforceError`
  (``errors.from_response``); a timeout or connection failure is ``Unavailable``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import redis
import requests
from requests.adapters import HTTPAdapter

from ats_gateway.salesforce.auth import Token, TokenManager
from ats_gateway.salesforce.budget import ApiBudget, note_call
from ats_gateway.salesforce.connections import ConnectionSettings
from ats_gateway.salesforce.errors import RequestLimitExceeded, Unavailable, from_response

log = logging.getLogger(__name__)


def new_session(pool_size: int, verify: bool | str = True) -> requests.Session:
    """A pooled session that leaves retries to the caller (retries belong to the tasks)."""
    session = requests.Session()
    session.verify = verify
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def response_body(response: requests.Response) -> Any:
    """The JSON body of ``response``, or ``None`` when it is empty or not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def query_options(batch_size: int | None) -> dict[str, str] | None:
    """The ``Sforce-Query-Options`` header asking for pages of ``batch_size`` records."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not 200 <= batch_size <= 2000:
        raise ValueError("batch_size must be within 200..2000")
    return {"Sforce-Query-Options": f"batchSize={batch_size}"}


def _invalid_session(response: requests.Response) -> bool:
    body = response_body(response)
    if isinstance(body, list):
        return any(
            isinstance(i, Mapping) and i.get("errorCode") == "INVALID_SESSION_ID" for i in body
        )
    return isinstance(body, Mapping) and body.get("errorCode") == "INVALID_SESSION_ID"


class Transport:
    """Sends API requests for one connection; counts them in ``api_calls``."""

    def __init__(
        self,
        settings: ConnectionSettings,
        redis_client: redis.Redis,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.redis = redis_client
        self.session = session or new_session(settings.pool_size, settings.verify_tls)
        self.auth = TokenManager(settings, redis_client, self.session, clock=clock)
        self.clock = clock
        self.api_calls = 0  # REST requests sent (token requests excluded)
        self._budgets: dict[str, ApiBudget] = {}

    @property
    def base(self) -> str:
        return f"/services/data/v{self.settings.api_version}"

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------ budget / status

    def budget_for(self, token: Token) -> ApiBudget:
        key = token.org_key
        budget = self._budgets.get(key)
        if budget is None:
            budget = ApiBudget(
                self.redis,
                key,
                reserve_fraction=self.settings.budget_reserve,
                key_prefix=self.settings.key_prefix,
                clock=self.clock,
            )
            self._budgets[key] = budget
        return budget

    def budget(self) -> ApiBudget | None:
        """The org's budget, once any process has logged in for this connection."""
        token = self.auth.cached()
        return None if token is None else self.budget_for(token)

    def status(self) -> dict[str, Any]:
        """Auth state and the org's API usage, from Redis only (no API call)."""
        try:
            token = self.auth.cached()
            snapshot = self.budget_for(token).snapshot() if token is not None else None
            auth_error = self.auth.last_error()
        except redis.RedisError as exc:
            return {
                "connection": self.settings.name,
                "authenticated": None,
                "instance_url": None,
                "auth_error": None,
                "api_usage": None,
                "error": f"redis unavailable ({type(exc).__name__})",
            }
        return {
            "connection": self.settings.name,
            "authenticated": token is not None,
            "instance_url": token.instance_url if token else None,
            "auth_error": auth_error,
            "api_usage": snapshot.as_dict() if snapshot else None,
        }

    # ------------------------------------------------------------------ requests

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        query: bool = False,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> requests.Response:
        """One API request with one transparent re-authentication on INVALID_SESSION_ID.

        ``query`` reads a 400 as a query error (``MalformedQuery``); a status outside ``ok``
        raises its typed error."""
        token = self.auth.token()  # Unavailable when neither cache nor login works
        for attempt in (1, 2):
            response = self._http(method, self._url(token, path), token, params, json, headers)
            if response.status_code == 401 and attempt == 1 and _invalid_session(response):
                log.info("session expired for %s; re-authenticating", self.settings.name)
                token = self.auth.refresh(stale=token)
                continue
            break
        if response.status_code in ok:
            return response
        error = from_response(response.status_code, response_body(response), query=query)
        if isinstance(error, RequestLimitExceeded):
            self.budget_for(token).record_exhausted()
        raise error

    def _url(self, token: Token, path: str) -> str:
        if not path.startswith("/services/"):
            raise ValueError(f"refusing to send the session to {path!r}")
        return token.instance_url + path

    def _http(
        self,
        method: str,
        url: str,
        token: Token,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
    ) -> requests.Response:
        request_headers = {
            "Authorization": f"Bearer {token.access_token}",
            "Accept": "application/json",
        }
        if headers:
            request_headers.update(headers)
        self.api_calls += 1
        note_call()
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json,
                headers=request_headers,
                timeout=self.settings.timeout,
            )
        except requests.Timeout as exc:
            raise Unavailable(
                f"{method} {urlsplit(url).path} timed out ({type(exc).__name__})"
            ) from None
        except requests.RequestException as exc:
            raise Unavailable(
                f"{method} {urlsplit(url).path} failed to connect ({type(exc).__name__})"
            ) from None
        log.debug("%s %s -> %s", method, urlsplit(url).path, response.status_code)
        try:
            self.budget_for(token).record(response.headers.get("Sforce-Limit-Info"))
        except redis.RedisError as exc:  # the call succeeded; losing one sample is harmless
            log.warning("could not record API usage: %s", type(exc).__name__)
        return response
