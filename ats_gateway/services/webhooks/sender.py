"""Sending one endpoint's queued events: signed POSTs with short timeouts, no redirects.

:class:`WebhookSender` is the :class:`~ats_gateway.services.delivery.Deliverer` of an
endpoint's queue. Per event:

* ``2xx``: delivered. ``410 Gone``: the receiver asks to stop; dead-lettered at once.
* anything else (3xx included: redirects are never followed), a timeout or a refused
  connection: retried with exponential backoff and jitter (the outbox's), until
  :func:`max_attempts` is reached, which is computed so that the retries cover at least the
  retry window (24 h by default); then dead-lettered (``ats-gateway webhooks dlq``).
* an address refused by the SSRF check (:mod:`.egress`): dead-lettered at once.

When the endpoint cannot be reached at all (connect error, timeout), the rest of the batch is
not tried: each event counts the same failed attempt, so one dead receiver costs one timeout
per batch, not one per event.

An ``application.*`` outcome event is sent only once the application's status record shows
that outcome (see :mod:`.events`): until then it is deferred (not an attempt).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import urllib3

from ats_gateway.services.delivery import QUEUED, Item, Outbox, Outcome, ProgressRecorder
from ats_gateway.services.webhooks import signing
from ats_gateway.services.webhooks.egress import RefusedURL, Target, resolve
from ats_gateway.services.webhooks.registry import Endpoint

log = logging.getLogger(__name__)

USER_AGENT = "ats-gateway-webhooks/1"
PENDING_STATUSES = (QUEUED, "delivering")


def max_attempts(window: float, base: float, cap: float) -> int:
    """Attempts (first try included) whose retry delays add up to at least ``window``, even
    when the jitter draws every delay at its floor (half the nominal delay)."""
    total, retries = 0.0, 0
    while total < window:
        total += 0.5 * min(cap, base * (2 ** min(retries, 30)))
        retries += 1
    return retries + 1


class Unreachable(Exception):
    """The endpoint did not answer (connect error, timeout): the rest of the batch waits."""


class WebhookSender:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        env: str,
        applications: Outbox | None,
        attempts_limit: int,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        self.env = env
        self.applications = applications
        self.attempts_limit = attempts_limit
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.clock = clock
        self.sent = 0

    def deliver(self, items: Sequence[Item], progress: ProgressRecorder) -> list[Outcome]:
        outcomes: list[Outcome] = []
        gates = self._gates(items)
        unreachable: Outcome | None = None
        pool = None
        try:
            for item, gate in zip(items, gates, strict=True):
                if gate is not None:
                    outcomes.append(gate)
                    continue
                if unreachable is not None:
                    outcomes.append(self._failure(item, unreachable.body))
                    continue
                try:
                    if pool is None:
                        target = resolve(self.endpoint.url, self.env)
                        pool = _pool(target, self.timeout)
                    status = self._post(pool, target, item)
                except RefusedURL as exc:
                    if exc.code == "unresolvable":
                        unreachable = Outcome.retry(code="UNRESOLVABLE", message=exc.message)
                        outcomes.append(self._failure(item, unreachable.body))
                    else:
                        outcomes.append(Outcome.failed(code="REFUSED_URL", message=exc.message))
                    continue
                except Unreachable as exc:
                    unreachable = Outcome.retry(code="UNREACHABLE", message=str(exc))
                    outcomes.append(self._failure(item, unreachable.body))
                    continue
                if 200 <= status < 300:
                    self.sent += 1
                    outcomes.append(Outcome.delivered(status_code=status, sent_at=self.clock()))
                elif status == 410:
                    outcomes.append(
                        Outcome.failed(code="GONE", message="The receiver answered 410.")
                    )
                else:
                    body = {"code": f"HTTP_{status}", "message": f"The receiver answered {status}."}
                    outcomes.append(self._failure(item, body))
        finally:
            if pool is not None:
                pool.close()
        return outcomes

    def _failure(self, item: Item, error: dict) -> Outcome:
        if item.attempts + 1 >= self.attempts_limit:
            return Outcome.failed(**error, gave_up_after_attempts=item.attempts + 1)
        return Outcome.retry(**error)

    def _gates(self, items: Sequence[Item]) -> list[Outcome | None]:
        """Hold outcome events until the application's status record agrees (see module)."""
        gated = [i for i in items if i.payload.get("expect_status")]
        gates: dict[str, Outcome] = {}
        if gated and self.applications is not None:
            pipe = self.applications.redis.pipeline(transaction=False)
            for item in gated:
                pipe.hget(self.applications.item_key(item.payload["application_id"]), "status")
            for item, raw in zip(gated, pipe.execute(), strict=True):
                status = raw.decode() if raw else None
                if status in PENDING_STATUSES:
                    gates[item.id] = Outcome.defer(1.0, code="AWAITING_SETTLE")
                elif status != item.payload["expect_status"]:
                    # Re-run settled differently (or the record expired): not what happened.
                    gates[item.id] = Outcome.delivered(skipped="superseded")
        return [gates.get(i.id) for i in items]

    def _post(self, pool: urllib3.HTTPConnectionPool, target: Target, item: Item) -> int:
        body = item.payload["body"]
        headers = signing.headers(self.endpoint.secret, item.id, body, self.clock())
        default_port = 443 if target.scheme == "https" else 80
        host = target.host if target.port == default_port else f"{target.host}:{target.port}"
        headers.update(
            {
                "Host": host,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            }
        )
        try:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body.encode(),
                headers=headers,
                redirect=False,
                retries=False,
                timeout=self.timeout,
                preload_content=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise Unreachable(type(exc).__name__) from None
        status = response.status
        response.release_conn() if status < 300 else response.close()
        return status


def _pool(target: Target, timeout: urllib3.Timeout) -> urllib3.HTTPConnectionPool:
    """A connection pool pinned to the checked address; TLS still verifies the host name."""
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    return urllib3.HTTPConnectionPool(
        target.address, target.port, timeout=timeout, retries=False, maxsize=1
    )
