"""The gateway's share of the org's daily API limit, and delivery paced by it.

**The ceiling.** The gateway as a whole may spend at most ``ATS_GATEWAY_API_SHARE`` (default
0.2) of the org's daily API limit (read from ``Sforce-Limit-Info`` on every response and from
``/limits``) in any rolling 24 h, or ``ATS_GATEWAY_API_CALLS_PER_DAY`` calls when that is set.
Every call of ours counts, by purpose (``salesforce/budget.py`` counts them: delivery, feedback,
reconciliation, describe, probe, interactive). The org's own reserve
(``ATS_GATEWAY_API_RESERVE_FRACTION``) still pauses background work whatever the share says.

**Pacing.** A batch of applications costs about the same few calls whether it holds 1 or 1,000
items, so under a trickle the question is only *when* to send. :meth:`Pacer.decide` answers,
in this order:

1. nothing due: idle;
2. the org is near its own limit (the reserve): deliver, i.e. let the deliverer defer every
   item without a call; first probe ``/limits`` if the last observation is older than
   ``ATS_GATEWAY_BUDGET_PROBE_SECONDS`` (so delivery resumes without outside traffic);
3. our rolling 24 h spend plus the batch would pass the ceiling less a headroom kept for
   interactive calls (``ATS_GATEWAY_API_INTERACTIVE_HEADROOM``): wait until the window frees;
4. a full batch (``delivery_batch_size``): send; less than ``delivery_window_seconds`` since
   the last send: wait for the window (what arrives meanwhile travels together);
5. the batch's cost fits the allowance accrued since the last send: send. The allowance is a
   token bucket filled at ``ceiling / 86400`` calls a second (less when the org's other users
   leave less than the ceiling above the reserve), holding one batch or a minute of pace,
   whichever is more, and *debited by every call of ours*, so
   interactive reads (a feedback link, a form read) always go first and delivery waits for
   what they leave;
6. the oldest due item has waited ``ATS_GATEWAY_DELIVERY_MAX_WAIT_SECONDS``: send anyway (the
   bucket goes negative and the next sends wait longer; the ceiling itself still holds);
7. otherwise wait until 5. or 6. comes first.

The batch cost is learnt (a moving average of the delivery calls per batch), so a cheaper call
plan makes delivery faster without retuning. Everything lives in Redis (per org), so any worker
process can drain, and :meth:`Pacer.forecast` (``/readyz``, ``/metrics``, ``ats-gateway
budget``) shows the same numbers without an org call.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis

from ats_gateway.salesforce import SalesforceError
from ats_gateway.salesforce.budget import (
    BUCKET_SECONDS,
    PURPOSES,
    WINDOW_SECONDS,
    ApiBudget,
    BudgetSnapshot,
    api_purpose,
)

log = logging.getLogger(__name__)

DEFAULT_BATCH_COST = 3.0  # dedupe query + Contacts + applications (services/applications/org.py)
DELIVERY = "delivery"
BURST_SECONDS = 60.0  # the allowance holds at most a minute of pace (and at least one batch)


@dataclass(frozen=True)
class PaceSettings:
    """What the pacer reads from :class:`~ats_gateway.config.Settings`."""

    share: float = 0.2
    calls_per_day: int = 0  # > 0 replaces the share
    max_wait: float = 900.0
    window: float = 2.0  # the micro-batch window: the bucket holds at least this much pace
    probe_seconds: float = 300.0
    headroom: float = 0.05  # fraction of the ceiling delivery leaves to interactive calls
    batch_size: int = 1000

    @classmethod
    def from_settings(cls, settings: Any) -> PaceSettings:
        return cls(
            share=settings.api_share,
            calls_per_day=settings.api_calls_per_day,
            max_wait=settings.delivery_max_wait_seconds,
            window=settings.delivery_window_seconds,
            probe_seconds=settings.budget_probe_seconds,
            headroom=settings.api_interactive_headroom,
            batch_size=settings.delivery_batch_size,
        )

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError("api_share is a fraction in (0, 1]")
        if self.calls_per_day < 0 or self.max_wait <= 0 or self.probe_seconds <= 0:
            raise ValueError("calls per day, max wait and probe interval must be positive")
        if not 0 <= self.headroom < 1:
            raise ValueError("api_interactive_headroom is a fraction in [0, 1)")


@dataclass(frozen=True)
class Decision:
    """Whether to send a batch now and why; ``wait``: seconds until it is worth asking again."""

    send: bool
    reason: str
    wait: float | None = None
    cost: float = DEFAULT_BATCH_COST
    tokens: float | None = None
    ceiling: int | None = None
    rate: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("wait", "tokens", "rate", "cost"):
            if out[key] is not None:
                out[key] = round(out[key], 4)
        return out


def backlog(outbox: Any, now: float) -> tuple[int, float | None, int]:
    """(items due now, when the oldest of them was accepted, items queued in all).

    Due counts the queued items whose time has come *and* the delivering items whose lease
    ended (a dead worker's batch): the next claim takes those back, so they are work waiting
    like any other, and a pacer that saw only the queue would call it idle and leave them
    stuck for ever."""
    pipe = outbox.redis.pipeline(transaction=False)
    pipe.zcount(outbox.ready_key, "-inf", repr(now))
    pipe.zrangebyscore(outbox.ready_key, "-inf", repr(now), start=0, num=1, withscores=True)
    pipe.zcard(outbox.ready_key)
    pipe.zcount(outbox.inflight_key, "-inf", repr(now))
    pipe.zrangebyscore(outbox.inflight_key, "-inf", repr(now), start=0, num=1, withscores=True)
    due, first, queued, orphaned, first_orphan = pipe.execute()
    due, first = int(due) + int(orphaned), first or first_orphan
    if not due or not first:
        return 0, None, int(queued) + int(orphaned)
    item_id, due_at = first[0]
    created = outbox.redis.hget(outbox.item_key(_text(item_id)), "created_at")
    return due, float(created) if created else float(due_at), int(queued) + int(orphaned)


class Pacer:
    """Holds background delivery to the ceiling; see the module docstring."""

    def __init__(
        self,
        redis_client: redis.Redis,
        settings: PaceSettings,
        budget: Callable[[], ApiBudget | None],
        probe: Callable[[], Any] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis_client
        self.settings = settings
        self._budget = budget
        self._probe = probe
        self.clock = clock

    def __repr__(self) -> str:
        return f"Pacer(share={self.settings.share}, calls_per_day={self.settings.calls_per_day})"

    # ------------------------------------------------------------------ figures

    def ceiling(self, snap: BudgetSnapshot | None) -> tuple[int | None, str]:
        """Calls the gateway may spend in any 24 h, and where the figure comes from."""
        if self.settings.calls_per_day:
            return self.settings.calls_per_day, "ATS_GATEWAY_API_CALLS_PER_DAY"
        if snap is None or not snap.limit:
            return None, "unknown until the org answers a first call"
        share = self.settings.share
        return int(snap.limit * share), f"ATS_GATEWAY_API_SHARE {share:g} x org limit {snap.limit}"

    @staticmethod
    def pace_per_day(ceiling: int, snap: BudgetSnapshot, spent: int) -> float:
        """The calls a day delivery paces itself to: the ceiling, or less when the org's other
        users leave less than that above the reserve (what they use stays used: the org's
        remaining calls plus our own last 24 h, less the reserve)."""
        if snap.remaining is None or snap.reserve is None:
            return float(ceiling)
        return float(max(min(ceiling, snap.remaining + spent - snap.reserve), 0))

    def _state_key(self, budget: ApiBudget) -> str:
        return f"{budget.key_prefix}pace:{budget.org}"

    def _state(self, budget: ApiBudget) -> dict[str, float]:
        raw = self.redis.hgetall(self._state_key(budget))
        return {_text(k): float(v) for k, v in raw.items()}

    def _cost(self, state: dict[str, float]) -> float:
        return max(1.0, state.get("cost", DEFAULT_BATCH_COST))

    def _tokens(
        self,
        state: dict[str, float],
        now: float,
        rate: float,
        cap: float,
        total: int,
        initial: float,
    ) -> float:
        """The bucket now: accrued at ``rate`` since the last look, less every call since."""
        if "at" not in state:
            return initial  # a fresh start: one batch may go at once
        spent = max(0, total - int(state.get("total", total)))
        accrued = max(0.0, now - state["at"]) * rate
        tokens = min(cap, state.get("tokens", cap) - spent + accrued)
        return max(tokens, -rate * 3600)  # owe at most an hour of pace

    # ------------------------------------------------------------------ the decision

    def plan(
        self,
        due: int,
        oldest: float | None,
        *,
        budget: ApiBudget | None,
        state: dict[str, float] | None = None,
        now: float | None = None,
    ) -> Decision:
        """The decision for ``due`` items (oldest accepted at ``oldest``); no writes, no calls."""
        now = self.clock() if now is None else now
        s = self.settings
        if due <= 0:
            return Decision(False, "idle")
        if budget is None:
            return Decision(True, "unknown_org")
        state = self._state(budget) if state is None else state
        cost = self._cost(state)
        snap = budget.snapshot()
        if not budget.may_spend(math.ceil(cost)):
            return Decision(True, "org_reserve", cost=cost)
        ceiling, _ = self.ceiling(snap)
        if ceiling is None:
            return Decision(True, "unknown_limit", cost=cost)
        spent = sum(budget.spent().values())
        rate = self.pace_per_day(ceiling, snap, spent) / WINDOW_SECONDS
        cap = max(cost, rate * max(s.window, BURST_SECONDS))
        tokens = self._tokens(state, now, rate, cap, budget.calls_ever(), initial=cost)
        common = {"cost": cost, "tokens": tokens, "ceiling": ceiling, "rate": rate}
        room = ceiling * (1 - s.headroom) - spent
        if room < cost:
            wait = self._until_frees(budget, cost - room)
            return Decision(False, "ceiling_exhausted", wait, **common)
        if due >= s.batch_size:
            return Decision(True, "full", 0.0, **common)
        since = now - state.get("last_send", -math.inf)
        if since < s.window:  # the micro-batch window: what arrives meanwhile travels together
            return Decision(False, "window", s.window - since, **common)
        if tokens >= cost:
            return Decision(True, "allowance", 0.0, **common)
        age = now - oldest if oldest is not None else 0.0
        if age >= s.max_wait:
            return Decision(True, "max_wait", 0.0, **common)
        wait = min((cost - tokens) / rate if rate > 0 else math.inf, s.max_wait - age)
        return Decision(False, "pacing", max(wait, 0.0), **common)

    def decide(self, outbox: Any) -> Decision:
        """The decision for ``outbox`` now; updates the bucket and may probe ``/limits``."""
        now = self.clock()
        due, oldest, _ = backlog(outbox, now)
        budget = self._budget()
        if due <= 0 or budget is None:
            return self.plan(due, oldest, budget=budget, now=now)
        state = self._state(budget)
        decision = self.plan(due, oldest, budget=budget, state=state, now=now)
        paused_or_waiting = decision.reason == "org_reserve" or (
            decision.reason == "pacing" and (decision.wait or 0) > self.settings.window
        )
        # Paused by the org, or waiting: is what we know of the org still true?
        if paused_or_waiting and self._maybe_probe(budget, now):
            state = self._state(budget)
            decision = self.plan(due, oldest, budget=budget, state=state, now=self.clock())
        self._save_bucket(budget, state, decision, now)
        if decision.reason == "pacing" and decision.wait is not None:
            # Look again in time to notice a raised limit (the probe above).
            decision = _replace(decision, wait=min(decision.wait, self.settings.probe_seconds))
        return decision

    def _save_bucket(
        self, budget: ApiBudget, state: dict[str, float], decision: Decision, now: float
    ) -> None:
        if decision.tokens is None:
            return
        total = budget.calls_ever()
        self.redis.hset(
            self._state_key(budget),
            mapping={"tokens": repr(decision.tokens), "at": repr(now), "total": total},
        )

    def sent(self, calls: int, bound: int | None = None) -> None:
        """A batch went out and cost ``calls``: learn the cost (a batch the deliverer deferred
        without a call teaches nothing). ``bound``: the most a batch of its size can cost by
        the deliverer's call plan; a count above it is an outlier and is learnt as the bound."""
        budget = self._budget()
        if budget is None or calls <= 0:
            return
        if bound is not None and calls > bound:
            log.warning("a batch counted %d org calls; its plan allows %d", calls, bound)
            calls = bound
        key = self._state_key(budget)
        state = self._state(budget)
        cost = 0.5 * state.get("cost", DEFAULT_BATCH_COST) + 0.5 * calls
        self.redis.hset(key, mapping={"cost": repr(cost), "last_send": repr(self.clock())})

    def _until_frees(self, budget: ApiBudget, need: float) -> float:
        """Seconds until ``need`` calls of the rolling window have aged out of it."""
        now, freed = self.clock(), 0
        for start, calls in budget.spend_buckets():
            freed += calls
            if freed >= need:
                return min(max(start + BUCKET_SECONDS + WINDOW_SECONDS - now, 1.0), 3600.0)
        return 3600.0

    def _maybe_probe(self, budget: ApiBudget, now: float) -> bool:
        """Ask ``/limits`` when the last word from the org is older than the probe interval."""
        if self._probe is None:
            return False
        snap = budget.snapshot()
        if snap.updated_at is not None and now - snap.updated_at < self.settings.probe_seconds:
            return False
        # One prober per org per interval, whichever process looks.
        marker = f"{budget.key_prefix}pace-probe:{budget.org}"
        if not self.redis.set(marker, "1", nx=True, px=int(self.settings.probe_seconds * 1000)):
            return False
        try:
            with api_purpose("probe"):
                body = self._probe()
            budget.record_limits(body)
        except SalesforceError as exc:  # the next look tries again
            log.info("budget probe failed: %s", type(exc).__name__)
        return True

    # ------------------------------------------------------------------ the forecast

    def forecast(self, outbox: Any) -> dict[str, Any]:
        """What ``/readyz``, ``/metrics`` and ``ats-gateway budget`` show; no org call, no write."""
        now = self.clock()
        budget = self._budget()
        due, oldest, queued = backlog(outbox, now)
        snap = budget.snapshot() if budget is not None else None
        ceiling, source = self.ceiling(snap)
        spent = {p: 0 for p in PURPOSES}
        if budget is not None:
            spent.update(budget.spent())
        total = sum(spent.values())
        state = self._state(budget) if budget is not None else {}
        decision = self.plan(due, oldest, budget=budget, state=state, now=now)
        wait = 0.0 if decision.send else decision.wait
        if decision.reason == "org_reserve":
            wait = None  # until the org has calls again: the probe will tell
        eta = None
        if due == 0 and queued == 0:
            eta = now
        elif wait is not None:
            eta = now + wait
            batches = math.ceil(max(due, 1) / self.settings.batch_size)
            if ceiling and decision.rate:
                room = ceiling * (1 - self.settings.headroom) - total
                short = batches * decision.cost - max(room, 0.0)
                if short > 0:  # the rest waits for the rolling window to free
                    eta += short / decision.rate
        return {
            "org": budget.org if budget is not None else None,
            "org_used": snap.used if snap else None,
            "org_limit": snap.limit if snap else None,
            "org_reserve": snap.reserve if snap else None,
            "paused_by_org": bool(budget is not None and not budget.may_spend(1)),
            "ceiling": ceiling,
            "ceiling_source": source,
            "spent_24h": {**spent, "all": total},
            "ceiling_left": None if ceiling is None else ceiling - total,
            "pace_calls_per_second": decision.rate,
            "pace_calls_per_day": None if decision.rate is None else round(decision.rate * 86400),
            "batch_cost": round(self._cost(state), 2),
            "delivery": {
                "queued": queued,
                "due": due,
                "oldest_wait_seconds": round(now - oldest, 1) if oldest is not None else None,
                "decision": decision.reason,
                "wait_seconds": None if wait is None else round(wait, 1),
                "eta": _iso(eta),
                "eta_seconds": None if eta is None else round(max(eta - now, 0.0), 1),
                "max_wait_seconds": self.settings.max_wait,
            },
        }


def build_pacer(settings: Any, redis_client: redis.Redis, client: Any) -> Pacer:
    """The pacer of the applications delivery on ``client`` (the job_portal connection)."""
    return Pacer(
        redis_client, PaceSettings.from_settings(settings), client.budget, probe=client.limits
    )


def forecast_collector(forecast: Callable[[], dict[str, Any]]) -> Any:
    """A Prometheus collector that reads the forecast at scrape time."""
    from prometheus_client.core import GaugeMetricFamily

    class ForecastCollector:
        def collect(self):
            try:
                f = forecast()
            except redis.RedisError:
                return
            spent = GaugeMetricFamily(
                "ats_gateway_api_calls_24h",
                "Org API calls of the gateway in the last 24 h, by purpose.",
                labels=["purpose"],
            )
            for purpose, calls in f["spent_24h"].items():
                if purpose != "all":
                    spent.add_metric([purpose], calls)
            yield spent
            figures = {
                "ats_gateway_api_ceiling_calls": (
                    "Calls the gateway may spend in any 24 h (-1: unknown).",
                    f["ceiling"],
                ),
                "ats_gateway_delivery_wait_seconds": (
                    "Until the next delivery batch at the current pace (-1: nothing to send).",
                    f["delivery"]["wait_seconds"],
                ),
                "ats_gateway_delivery_eta_seconds": (
                    "Until the queue is delivered at the current pace (-1: unknown).",
                    f["delivery"]["eta_seconds"],
                ),
                "ats_gateway_delivery_queued": (
                    "Applications waiting for delivery.",
                    f["delivery"]["queued"],
                ),
            }
            for name, (text, value) in figures.items():
                yield GaugeMetricFamily(name, text, value=-1 if value is None else value)

        def describe(self):
            return []

    return ForecastCollector()


def _replace(decision: Decision, **changes: Any) -> Decision:
    return Decision(**{**asdict(decision), **changes})


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
