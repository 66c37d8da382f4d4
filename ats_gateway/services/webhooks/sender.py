"""Sending one endpoint's queued events: signed POSTs under a wall-clock deadline, no redirects.

:class:`WebhookSender` is the :class:`~ats_gateway.services.delivery.Deliverer` of an
endpoint's queue. Each attempt has one deadline for connect + TLS + send + the whole answer
(:mod:`.transport`), so a receiver that drips its answer costs one deadline, not a thread for
as long as it drips; a run stops starting attempts once its own time budget is spent (the
rest wait for the next run, not an attempt). Per event:

* ``2xx``: delivered.
* ``410 Gone``: the receiver asks to stop: the event is dead-lettered and the endpoint is
  disabled, with the reason recorded (``GET /v1/webhooks`` shows it).
* ``429`` / ``503`` with ``Retry-After`` (seconds or an HTTP date, RFC 9110 10.2.3): retried no
  sooner than it asks, within the backoff bounds (never later than the backoff cap); the rest
  of the batch waits as long, without an attempt.
* anything else (3xx included: redirects are never followed), a deadline passed or a refused
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
from email.utils import parsedate_to_datetime

from ats_gateway.services.delivery import QUEUED, Item, Outbox, Outcome, ProgressRecorder
from ats_gateway.services.webhooks import signing
from ats_gateway.services.webhooks.egress import RefusedURL, resolve
from ats_gateway.services.webhooks.events import iso
from ats_gateway.services.webhooks.registry import Endpoint
from ats_gateway.services.webhooks.transport import Connection, DeadlineExceeded, SendFailed

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
    """The endpoint did not answer in time (connect error, deadline): the rest of the batch
    waits."""


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delay-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(min(int(value), 10**9))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


class WebhookSender:
    """Delivers one endpoint's batches. After a run, ``health`` says what the run learned of
    the receiver for its circuit breaker: ``"ok"`` (it answered 2xx), ``"failing"`` (deadline,
    unreachable or 5xx, and no 2xx), or None (nothing tried)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        env: str,
        applications: Outbox | None,
        attempts_limit: int,
        connect_timeout: float = 3.0,
        deadline_seconds: float = 10.0,
        run_seconds: float | None = None,
        on_gone: Callable[[Endpoint, str], object] | None = None,
        ca_file: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        self.env = env
        self.applications = applications
        self.attempts_limit = attempts_limit
        self.connect_timeout = connect_timeout
        self.deadline_seconds = deadline_seconds
        self.run_seconds = run_seconds
        self.on_gone = on_gone
        self.ca_file = ca_file
        self.clock = clock
        self.sent = 0
        self.failed_attempts = 0
        self.health: str | None = None
        self._run_started = time.monotonic()
        self._attempted = False  # this run has started an attempt

    def deliver(self, items: Sequence[Item], progress: ProgressRecorder) -> list[Outcome]:
        outcomes: list[Outcome] = []
        gates = self._gates(items)
        stop: Outcome | None = None  # what the rest of the batch gets, once decided
        connection: Connection | None = None
        try:
            for item, gate in zip(items, gates, strict=True):
                if gate is not None:
                    outcomes.append(gate)
                    continue
                if stop is not None:
                    outcomes.append(self._again(item, stop))
                    continue
                if self._run_spent():
                    stop = Outcome.defer(0.0, code="RUN_BUDGET_SPENT")
                    outcomes.append(stop)
                    continue
                try:
                    if connection is None:
                        # checked at each run, and the connection goes to the checked address
                        target = resolve(self.endpoint.url, self.env)
                        connection = Connection(
                            target, connect_timeout=self.connect_timeout, ca_file=self.ca_file
                        )
                    outcome, stop = self._attempt(connection, item)
                except RefusedURL as exc:
                    if exc.code == "unresolvable":
                        stop = Outcome.retry(code="UNRESOLVABLE", message=exc.message)
                        outcomes.append(self._failure(item, stop.body))
                    else:
                        outcomes.append(Outcome.failed(code="REFUSED_URL", message=exc.message))
                    continue
                except Unreachable as exc:
                    self._failing()
                    stop = Outcome.retry(code="UNREACHABLE", message=str(exc))
                    outcomes.append(self._failure(item, stop.body))
                    continue
                outcomes.append(outcome)
        finally:
            if connection is not None:
                connection.close()
        return outcomes

    # ------------------------------------------------------------------ one attempt

    def _attempt(self, connection: Connection, item: Item) -> tuple[Outcome, Outcome | None]:
        """One POST; returns its outcome, and what the rest of the batch gets (None: go on)."""
        body = item.payload["body"].encode()
        headers = signing.headers(self.endpoint.secret, item.id, item.payload["body"], self.clock())
        headers.update({"Content-Type": "application/json", "User-Agent": USER_AGENT})
        deadline = time.monotonic() + self.deadline_seconds
        self._attempted = True
        try:
            answer = connection.post(list(headers.items()), body, deadline)
        except DeadlineExceeded:
            raise Unreachable(f"no whole answer within {self.deadline_seconds:g} s") from None
        except SendFailed as exc:
            raise Unreachable(str(exc)) from None
        status = answer.status
        if 200 <= status < 300:
            self.sent += 1
            self.health = "ok"
            return Outcome.delivered(status_code=status, sent_at=self.clock()), None
        if status == 410:
            reason = f"the receiver answered 410 Gone at {iso(self.clock())}"
            if self.on_gone is not None:
                self.on_gone(self.endpoint, reason)
            gone = Outcome.failed(code="GONE", message="The receiver answered 410.")
            return gone, Outcome.failed(code="ENDPOINT_DISABLED", message=reason)
        error = {"code": f"HTTP_{status}", "message": f"The receiver answered {status}."}
        if status >= 500:
            self._failing()
        if status in (429, 503):
            wait = retry_after(answer.headers.get("retry-after"), self.clock())
            if wait is not None:
                error["retry_after_seconds"] = round(wait, 3)
                outcome = self._failure(item, error, delay=wait)
                return outcome, Outcome.defer(wait, code=f"HTTP_{status}", retry_after=wait)
        return self._failure(item, error), None

    def _again(self, item: Item, stop: Outcome) -> Outcome:
        """What an untried item of a stopped batch gets: the same failure (an attempt, so a
        dead receiver costs one deadline per batch, not one per event), or the same wait."""
        if stop.kind == "retry":
            return self._failure(item, stop.body)
        return stop

    def _failure(self, item: Item, error: dict, *, delay: float | None = None) -> Outcome:
        self.failed_attempts += 1
        if item.attempts + 1 >= self.attempts_limit:
            return Outcome.failed(**error, gave_up_after_attempts=item.attempts + 1)
        # ``delay``: the receiver's Retry-After; the outbox keeps it within the backoff bounds
        return Outcome(kind="retry", body=error, delay=delay)

    def _failing(self) -> None:
        if self.health != "ok":
            self.health = "failing"

    def _run_spent(self) -> bool:
        if self.run_seconds is None or not self._attempted:
            # A run's first attempt always starts (the task's Celery limits are run + deadline
            # + 15 s): with a deadline at or above the budget, no run ever sent anything and
            # the endpoint's events were deferred for ever.
            return False
        # an attempt that starts must be able to end inside the run's budget
        return time.monotonic() - self._run_started + self.deadline_seconds > self.run_seconds

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
